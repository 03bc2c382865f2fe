//! The audit trail: who read which fields of which instruments, when, and what came of it. One
//! record per GraphQL operation: each operation of an HTTP request (a batch of N has N), each
//! WebSocket query or mutation, and each subscription twice (when it starts, and when it ends
//! with its totals). Compliance reads it per tenant (`tenant { auditLog }`, `finql audit`);
//! operators find a request by its trace id.
//!
//! How a record travels, never slowing or failing the request it describes:
//! - the edge (`http::graphql` for HTTP, `http::ws` per operation) computes the record: the
//!   operation's shape from the parsed document (`audit::document`: field paths with fragments
//!   expanded and aliases resolved, symbols with variables resolved, the document's SHA-256)
//!   before it runs, and its outcome, error codes, duration and response bytes after;
//! - it hands the record to [`AuditLog::record`](crate::audit::AuditLog::record), a `try_send`
//!   into a bounded channel: when the channel is full (the database is slow or down) the record
//!   is dropped, counted in `finql_audit_dropped_total{reason="buffer_full"}` and logged (at
//!   most one warning per interval), and the request goes on;
//! - one writer task appends what the channel holds in batches (`audit::append`), retries a
//!   failed batch a few times, and drains the channel at shutdown after requests in flight have
//!   finished (`AuditLog::close`, as usage does);
//! - a retention task deletes records older than `FINQL_AUDIT_RETENTION_DAYS`, in batches;
//! - with `FINQL_AUDIT_LOG=json` the writer also logs every record as one JSON line (target
//!   `finql::audit`), for a log pipeline that archives elsewhere.
//!
//! Anonymous callers (and refused credentials) are audited too, with no tenant: their records
//! are visible to operators (the table, the JSON log) but to no tenant admin. What is not
//! audited: a request whose credentials could not be checked at all (the database failed; the
//! client got a 503 and no operation ran), and WebSocket protocol messages that are not
//! operations (`connection_init`, pings).

/// The writer's bulk insert, in each database's own form (the writer's CPU is the requests').
pub mod append;
/// Field paths, symbols and the document hash, from a parsed GraphQL document.
pub mod document;
/// The HTTP edge's records: one per operation of a request, shaped before, completed after.
pub mod edge;
/// `tenant { auditLog(first, after, filter) }`: the resolver logic and its output types.
pub mod graphql;
/// `AuditLog`: the bounded channel, the batch writer, retention, the shutdown drain, reads.
pub mod service;
/// Shapes of documents already seen (the walk is the audit's main cost on the request path).
pub mod shapes;
/// The `audit_log` table: batch insert, a tenant's pages and ranges, retention deletes.
pub mod store;

use std::{sync::Arc, time::Duration};

use async_graphql::{ServerError, Value};
use chrono::{DateTime, Utc};

pub use document::Operation;
pub use service::{AuditLog, OperationAudit};

use crate::identity::{Principal, TenantRef};

/// What the record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A query or mutation (over HTTP or WebSocket), or an operation refused before it ran.
    Request,
    /// A subscription began (its outcome is `ok`; its totals come with its end).
    SubscriptionStart,
    /// A subscription ended (completed, stopped by the client, or its connection closed).
    SubscriptionEnd,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::SubscriptionStart => "subscription_start",
            Self::SubscriptionEnd => "subscription_end",
        }
    }
}

/// How the operation came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    WebSocket,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WebSocket => "ws",
        }
    }
}

/// What came of the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered without errors.
    Ok,
    /// Ran, and answered with at least one error (partial data included).
    Error,
    /// Refused before it ran: plan limits, edge guards, a malformed request.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
        }
    }
}

/// One audit record, as the edge computed it.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// When the operation started (the request arrived; the subscription started).
    pub at: DateTime<Utc>,
    /// The request's trace id (`x-request-id`), when the edge has one.
    pub trace_id: Option<String>,
    /// `None` for anonymous callers and refused credentials.
    pub tenant: Option<TenantRef>,
    /// `user:<id>`, `key:<prefix>` or `anonymous`.
    pub principal: String,
    pub event: Event,
    pub transport: Transport,
    /// The operation's shape; empty when the request could not be parsed.
    pub operation: Arc<Operation>,
    pub outcome: Outcome,
    /// The distinct `extensions.code`s of the errors sent, in order of first appearance.
    pub error_codes: Vec<String>,
    /// From `at` until the answer was built (a subscription's end: its whole life).
    pub duration: Duration,
    /// Bytes of the answer sent (a subscription's end: every message it sent).
    pub response_bytes: u64,
}

impl AuditRecord {
    /// A record of `principal`'s operation, outcome `Ok` with nothing sent yet.
    pub fn new(
        principal: &Principal,
        trace_id: Option<String>,
        event: Event,
        transport: Transport,
        operation: Arc<Operation>,
    ) -> Self {
        Self {
            at: Utc::now(),
            trace_id,
            tenant: principal.tenant.clone(),
            principal: principal.actor(),
            event,
            transport,
            operation,
            outcome: Outcome::Ok,
            error_codes: Vec::new(),
            duration: Duration::ZERO,
            response_bytes: 0,
        }
    }

    /// Notes errors sent: the outcome becomes `Error` (unless already `Refused`), and their
    /// codes are added.
    pub fn errors(&mut self, errors: &[ServerError]) {
        if errors.is_empty() {
            return;
        }
        if self.outcome == Outcome::Ok {
            self.outcome = Outcome::Error;
        }
        add_codes(&mut self.error_codes, errors);
    }

    /// Marks the operation refused before it ran, with the refusal's error.
    pub fn refused(&mut self, error: &ServerError) {
        self.outcome = Outcome::Refused;
        add_codes(&mut self.error_codes, std::slice::from_ref(error));
    }
}

/// Error codes kept per record at most: a response with hundreds of errors (one per symbol)
/// carries a handful of distinct codes; the cap only bounds a pathological one.
const MAX_CODES: usize = 16;

fn add_codes(codes: &mut Vec<String>, errors: &[ServerError]) {
    for error in errors {
        let code = match error.extensions.as_ref().and_then(|ext| ext.get("code")) {
            Some(Value::String(code)) => code.as_str(),
            _ => "INTERNAL",
        };
        if codes.len() < MAX_CODES && !codes.iter().any(|known| known == code) {
            codes.push(code.to_owned());
        }
    }
}

impl AuditRecord {
    /// The record as one JSON object (`FINQL_AUDIT_LOG=json`, and the shape `finql audit
    /// --format json` prints), with the id it is stored under.
    pub fn to_json(&self, id: uuid::Uuid) -> serde_json::Value {
        let op = &self.operation;
        serde_json::json!({
            "id": id,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "traceId": self.trace_id,
            "tenantId": self.tenant.as_ref().map(|t| t.id),
            "tenant": self.tenant.as_ref().map(|t| t.slug.as_ref()),
            "principal": self.principal,
            "event": self.event.as_str(),
            "transport": self.transport.as_str(),
            "operationType": op.type_name(),
            "operationName": op.operation_name,
            "documentHash": op.document_hash,
            "fields": op.fields,
            "symbols": op.symbols,
            "outcome": self.outcome.as_str(),
            "errorCodes": self.error_codes,
            "durationMs": self.duration.as_secs_f64() * 1000.0,
            "responseBytes": self.response_bytes,
        })
    }
}
