//! `finql_graphql_requests_total{operation_type, tenant, code}` and
//! `finql_graphql_request_duration_seconds{operation_type, tenant}`, recorded by the transports
//! (`http::graphql`, `http::ws`) once per operation, refused ones included: a 429 or a document
//! the edge guards refused is an outcome operators watch (its code says which).
//!
//! `code` is `OK` or the first error's `extensions.code` (a bounded set: `error::ErrorCode` and
//! the engine's own); an operation the edge refused before its type was known is `unknown`.

use std::time::Duration;

use async_graphql::{ServerError, Value, parser::types::OperationType};
use metrics::SharedString;

/// The `code` of an operation without errors.
pub const OK: &str = "OK";

/// `query`, `mutation`, `subscription`, or `unknown` (refused before it was parsed).
pub fn operation_type(operation: Option<OperationType>) -> &'static str {
    match operation {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// `OK`, or the first error's code (`INTERNAL` for an error that has none, which `finish`
/// would not let out).
pub fn code_of(errors: &[ServerError]) -> SharedString {
    let Some(first) = errors.first() else { return OK.into() };
    match first.extensions.as_ref().and_then(|ext| ext.get("code")) {
        Some(Value::String(code)) => code.clone().into(),
        _ => "INTERNAL".into(),
    }
}

/// Counts one operation and its duration.
pub fn record(operation_type: &'static str, tenant: SharedString, code: SharedString, elapsed: Duration) {
    metrics::counter!(
        "finql_graphql_requests_total",
        "operation_type" => operation_type,
        "tenant" => tenant.clone(),
        "code" => code
    )
    .increment(1);
    metrics::histogram!(
        "finql_graphql_request_duration_seconds",
        "operation_type" => operation_type,
        "tenant" => tenant
    )
    .record(elapsed.as_secs_f64());
}
