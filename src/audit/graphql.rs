//! `tenant { auditLog(first, after, filter) }`: the resolver's logic and its output types.
//!
//! The `Tenant` object belongs to the tenant admin API; its `auditLog` field is a one-line
//! delegation to [`tenant_audit_log`](crate::audit::graphql::tenant_audit_log), which owns the
//! rule (tenant admins only, their own tenant only: records without a tenant, the anonymous
//! callers', are nobody's to read here) and the paging.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::DateTime;
use entity::audit_log;
use uuid::Uuid;

use super::{
    AuditLog,
    store::{AuditFilter, Position, split_list},
};
use crate::{
    error::AppError,
    graphql::{PageInfo, RequestContext, bounded, scalars::Timestamp, service},
    reference::Symbol,
    usage::graphql::BigInt,
};

/// Records per page at most: a page is read in one query; an export of more is `finql audit`'s.
pub const MAX_PAGE: i32 = 500;

/// Narrows the audit log; every field is optional, all given ones apply.
#[derive(InputObject, Clone, Debug, Default)]
pub struct AuditLogFilter {
    /// Records at or after this instant.
    pub from: Option<Timestamp>,
    /// Records before this instant.
    pub to: Option<Timestamp>,
    /// Exactly this principal: `key:<prefix>` for an API key, `user:<id>` for a user.
    pub principal: Option<String>,
    /// Operations of this name.
    pub operation_name: Option<String>,
    /// Operations that named this symbol (any case; canonicalised, `0700.HK` is `700.HK`).
    pub symbol: Option<String>,
}

impl AuditLogFilter {
    fn into_filter(self) -> Result<AuditFilter, AppError> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && to <= from
        {
            return Err(AppError::bad_field("to", "`to` must be after `from`"));
        }
        Ok(AuditFilter {
            from: self.from.map(Into::into),
            to: self.to.map(Into::into),
            principal: self.principal,
            operation_name: self.operation_name,
            symbol: self.symbol.as_deref().map(Symbol::parse).transpose()?.map(|s| s.as_str().to_owned()),
        })
    }
}

/// One GraphQL operation as the audit saw it. A subscription has two: its start, and its end
/// with its totals.
pub struct AuditRecordObject(audit_log::Model);

/// One GraphQL operation as the audit saw it. A subscription has two: its start, and its end
/// with its totals.
#[Object(name = "AuditRecord")]
impl AuditRecordObject {
    /// The record's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When the operation started (for a subscription's end too: add `durationMs`).
    async fn at(&self) -> Timestamp {
        Timestamp(self.0.at)
    }
    /// The request's trace id (its `x-request-id`), to find it in logs and traces.
    async fn trace_id(&self) -> Option<&str> {
        self.0.trace_id.as_deref()
    }
    /// `key:<prefix>` for an API key, `user:<id>` for a user.
    async fn principal(&self) -> &str {
        &self.0.principal
    }
    /// `request` (a query or mutation, or an operation refused before it ran),
    /// `subscription_start` or `subscription_end`.
    async fn event(&self) -> &str {
        &self.0.event
    }
    /// `http` or `ws`.
    async fn transport(&self) -> &str {
        &self.0.transport
    }
    /// `query`, `mutation` or `subscription`; null when the request named no operation that
    /// could run.
    async fn operation_type(&self) -> Option<&str> {
        self.0.operation_type.as_deref()
    }
    /// The operation's name as the document gave it; null for an anonymous operation.
    async fn operation_name(&self) -> Option<&str> {
        self.0.operation_name.as_deref()
    }
    /// SHA-256 of the query text (lower-case hex): the same document has the same hash.
    async fn document_hash(&self) -> Option<&str> {
        self.0.document_hash.as_deref()
    }
    /// The leaf fields selected, from the root by field name (`quotes.last`,
    /// `security.fundamentals.pe`): aliases resolved, fragments expanded, sorted.
    async fn fields(&self) -> Vec<String> {
        split_list(&self.0.fields)
    }
    /// The symbols named by `symbol`/`symbols` arguments (variables resolved), canonical.
    async fn symbols(&self) -> Vec<String> {
        split_list(&self.0.symbols)
    }
    /// `ok`, `error` (answered with errors) or `refused` (did not run: limits, guards).
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// The distinct `extensions.code`s of the errors sent.
    async fn error_codes(&self) -> Vec<String> {
        split_list(&self.0.error_codes)
    }
    /// How long it took (a subscription's end: how long it lived), in milliseconds.
    async fn duration_ms(&self) -> f64 {
        // Microseconds as stored; f64 is exact far beyond any duration here.
        self.0.duration_us as f64 / 1000.0
    }
    /// Bytes of the answer (a subscription's end: of every message it sent).
    async fn response_bytes(&self) -> BigInt {
        BigInt(u64::try_from(self.0.response_bytes).unwrap_or(0))
    }
}

/// One audit record and its place in the log (Relay edge).
#[derive(SimpleObject)]
#[graphql(name = "AuditRecordEdge")]
pub struct AuditRecordEdge {
    /// Opaque; pass as `after`.
    cursor: String,
    /// The record.
    node: AuditRecordObject,
}

/// A page of audit records, newest first (Relay connection).
#[derive(SimpleObject)]
#[graphql(name = "AuditRecordConnection")]
pub struct AuditRecordConnection {
    /// The page's records with their cursors, newest first.
    edges: Vec<AuditRecordEdge>,
    /// Whether more records follow (`hasNextPage`) and the cursor to continue from.
    page_info: PageInfo,
}

/// `Tenant.auditLog(first: Int = 50, after: String, filter: AuditLogFilter)`: the tenant's
/// audit records, newest first. Tenant admins only (an `ADMIN` user, or a key with the `admin`
/// scope), and only for their own tenant. Records appear a fraction of a second after their
/// operation (the writer batches them).
pub async fn tenant_audit_log(
    ctx: &Context<'_>,
    tenant: Uuid,
    first: i32,
    after: Option<String>,
    filter: Option<AuditLogFilter>,
) -> async_graphql::Result<AuditRecordConnection> {
    let admin_of = RequestContext::of(ctx)?.principal.require_admin()?;
    if admin_of.id != tenant {
        return Err(AppError::Forbidden("the audit log of another tenant".into()).into());
    }
    let first = bounded(first, 1, MAX_PAGE, "first")?;
    let after = after.as_deref().map(parse_cursor).transpose()?;
    let filter = filter.unwrap_or_default().into_filter()?;
    let audit = service::<AuditLog>(ctx)?;
    // One more than asked: whether there is a next page.
    let mut rows = audit.page(tenant, &filter, after, u64::try_from(first).unwrap_or(0) + 1).await?;
    let has_next_page = rows.len() > first;
    rows.truncate(first);
    let edges: Vec<AuditRecordEdge> =
        rows.into_iter().map(|row| AuditRecordEdge { cursor: cursor(&row), node: AuditRecordObject(row) }).collect();
    let page_info = PageInfo {
        has_next_page,
        has_previous_page: after.is_some(),
        start_cursor: edges.first().map(|e| e.cursor.clone()),
        end_cursor: edges.last().map(|e| e.cursor.clone()),
    };
    Ok(AuditRecordConnection { edges, page_info })
}

/// `<microseconds since the epoch>:<id>`, base64url: the record's place in the order.
fn cursor(row: &audit_log::Model) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", row.at.timestamp_micros(), row.id))
}

fn parse_cursor(raw: &str) -> Result<Position, AppError> {
    let invalid = || AppError::bad_field("after", "`after` is not a cursor of this connection");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Position { at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_796_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let row = audit_log::Model {
            id,
            at,
            trace_id: None,
            tenant_id: None,
            principal: "anonymous".into(),
            event: "request".into(),
            transport: "http".into(),
            operation_type: None,
            operation_name: None,
            document_hash: None,
            fields: String::new(),
            symbols: String::new(),
            outcome: "ok".into(),
            error_codes: String::new(),
            duration_us: 0,
            response_bytes: 0,
        };
        assert_eq!(parse_cursor(&cursor(&row)).unwrap(), Position { at, id });
        for garbage in ["", "not base64!", &URL_SAFE_NO_PAD.encode("12:nope"), &URL_SAFE_NO_PAD.encode("x:y")] {
            assert!(parse_cursor(garbage).is_err(), "{garbage}");
        }
    }
}
