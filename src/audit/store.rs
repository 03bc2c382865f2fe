//! The `audit_log` table: the batch insert, a tenant's records newest first (pages for the
//! admin API, ranges for the CLI), and retention's deletes.

use chrono::{DateTime, Utc};
use entity::audit_log::{self, Column, Entity};
use futures::TryStreamExt;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, TransactionTrait,
};
use uuid::Uuid;

use super::AuditRecord;
use crate::error::AppResult;

/// Rows per INSERT: 16 values per row keeps a statement at 800 bind parameters, under
/// SQLite's historical limit of 999 (PostgreSQL allows 65,535).
const ROWS_PER_STATEMENT: usize = 50;

/// Rows one retention statement deletes: small enough that a delete never holds the table
/// long (SQLite locks the whole database for a write), large enough that a day of a busy
/// deployment goes in seconds.
pub const DELETE_BATCH: u64 = 5_000;

/// What a tenant admin (or the CLI) narrows the records to. Every bound is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// `at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `at < to`.
    pub to: Option<DateTime<Utc>>,
    /// Exactly this principal (`key:<prefix>`, `user:<id>`).
    pub principal: Option<String>,
    pub operation_name: Option<String>,
    /// A canonical symbol the operation named.
    pub symbol: Option<String>,
}

/// Where a page starts: strictly older than this record (`at`, then `id`, descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    db: DatabaseConnection,
}

impl AuditStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Appends `records`, in statements of `ROWS_PER_STATEMENT`, in one transaction: one
    /// commit per batch (on SQLite, whose WAL commits are fsynced, one sync instead of one per
    /// statement: the audit writer's cost fell from a fifth of the request path's throughput
    /// with a commit per statement; see README, Benchmarks). Each record carries its id from
    /// the writer, so retrying a batch skips rows already written (`ON CONFLICT (id) DO
    /// NOTHING`) rather than duplicating them.
    pub async fn append(&self, records: &[(Uuid, AuditRecord)]) -> AppResult<()> {
        let txn = self.db.begin().await?;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let models: Vec<audit_log::ActiveModel> = chunk.iter().map(|(id, record)| active(*id, record)).collect();
            let on_conflict = sea_orm::sea_query::OnConflict::column(Column::Id).do_nothing().to_owned();
            Entity::insert_many(models).on_conflict(on_conflict).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Up to `limit` of the tenant's records matching `filter`, newest first, strictly after
    /// `after` in that order.
    pub async fn page(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        after: Option<Position>,
        limit: u64,
    ) -> AppResult<Vec<audit_log::Model>> {
        let mut query = Entity::find().filter(Column::TenantId.eq(tenant)).filter(conditions(filter));
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(Column::At.lt(after.at))
                    .add(Condition::all().add(Column::At.eq(after.at)).add(Column::Id.lt(after.id))),
            );
        }
        Ok(query.order_by_desc(Column::At).order_by_desc(Column::Id).limit(limit).all(&self.db).await?)
    }

    /// Every record of the tenant matching `filter`, oldest first, streamed to `each` (an
    /// export of months is never held in memory whole).
    pub async fn each(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        mut each: impl FnMut(audit_log::Model) -> AppResult<()>,
    ) -> AppResult<()> {
        let mut rows = Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(conditions(filter))
            .order_by_asc(Column::At)
            .order_by_asc(Column::Id)
            .stream(&self.db)
            .await?;
        while let Some(row) = rows.try_next().await? {
            each(row)?;
        }
        Ok(())
    }

    /// Deletes up to [`DELETE_BATCH`] records older than `before` (oldest first); how many.
    pub async fn delete_older_than(&self, before: DateTime<Utc>) -> AppResult<u64> {
        // `DELETE … WHERE id IN (SELECT id … LIMIT n)`: both databases bound a delete this way
        // (PostgreSQL has no `DELETE … LIMIT`).
        let oldest = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::At.lt(before))
            .order_by_asc(Column::At)
            .limit(DELETE_BATCH)
            .into_query();
        let deleted = Entity::delete_many().filter(Column::Id.in_subquery(oldest)).exec(&self.db).await?;
        Ok(deleted.rows_affected)
    }
}

fn conditions(filter: &AuditFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(from) = filter.from {
        condition = condition.add(Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(Column::At.lt(to));
    }
    if let Some(principal) = &filter.principal {
        condition = condition.add(Column::Principal.eq(principal.as_str()));
    }
    if let Some(name) = &filter.operation_name {
        condition = condition.add(Column::OperationName.eq(name.as_str()));
    }
    if let Some(symbol) = &filter.symbol {
        // Canonical symbols hold no `%` or `_` (letters, digits, `.`, `:`): no escaping needed.
        condition = condition.add(Column::Symbols.like(format!("%,{symbol},%")));
    }
    condition
}

fn active(id: Uuid, record: &AuditRecord) -> audit_log::ActiveModel {
    let op = &record.operation;
    let n = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    audit_log::ActiveModel {
        id: Set(id),
        at: Set(record.at),
        trace_id: Set(record.trace_id.as_ref().map(|t| t.chars().take(64).collect())),
        tenant_id: Set(record.tenant.as_ref().map(|t| t.id)),
        principal: Set(record.principal.chars().take(64).collect()),
        event: Set(record.event.as_str().to_owned()),
        transport: Set(record.transport.as_str().to_owned()),
        operation_type: Set(op.type_name().map(str::to_owned)),
        operation_name: Set(op.operation_name.clone()),
        document_hash: Set(op.document_hash.clone()),
        fields: Set(op.fields.join(",")),
        symbols: Set(if op.symbols.is_empty() { String::new() } else { format!(",{},", op.symbols.join(",")) }),
        outcome: Set(record.outcome.as_str().to_owned()),
        error_codes: Set(record.error_codes.join(",")),
        duration_us: Set(n(u64::try_from(record.duration.as_micros()).unwrap_or(u64::MAX))),
        response_bytes: Set(n(record.response_bytes)),
    }
}

/// The list a comma-separated column holds (`fields`, `error_codes`, or `symbols`, wrapped in
/// commas).
pub fn split_list(column: &str) -> Vec<String> {
    column.split(',').filter(|item| !item.is_empty()).map(str::to_owned).collect()
}
