//! The request's trace, decided in one place:
//! [`http_span`](crate::telemetry::trace::http_span) at the HTTP edge (and
//! [`ws_operation_span`](crate::telemetry::trace::ws_operation_span) for each WebSocket
//! operation). Its id is the W3C trace id of the
//! request's span: the incoming `traceparent`'s when that header is well-formed (a malformed
//! one is ignored, as W3C Trace Context asks), a new one otherwise. The HTTP edge puts it on
//! the request's `x-request-id` (so everything after it — GraphQL `extensions.traceId`, the
//! logged cause of an internal error, the audit record — reads one value) and on the response.
//!
//! Spans follow the OpenTelemetry conventions: HTTP server spans (`http.request.method`,
//! `url.path`, `http.response.status_code`) and GraphQL spans (`graphql.operation.type`,
//! `graphql.operation.name`). Never the variables, nor the document: both can hold passwords
//! and tokens.
//!
//! Upstream HTTP calls carry the current span's context as `traceparent`
//! ([`inject`](crate::telemetry::trace::inject)), so a provider's logs can be joined to ours.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use opentelemetry::trace::TraceId;

/// The span of one HTTP request, and its trace id (32 lowercase hex digits when displayed).
pub fn http_span(method: &Method, path: &str, headers: &HeaderMap) -> (Span, TraceId) {
    // The span's name is low-cardinality: the route for finql's own routes, the method alone
    // for anything else (a scanner's paths would otherwise name a span each).
    let name = match path {
        "/graphql" | "/health" | "/ready" | "/metrics" | "/graphiql" | "/" => format!("{method} {path}"),
        _ => method.to_string(),
    };
    let span = tracing::info_span!(
        target: "finql::http",
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = path,
        http.response.status_code = Empty,
        trace_id = Empty,
    );
    let trace_id = adopt(&span, &Headers(headers));
    (span, trace_id)
}

/// Records the response's status on the request's span (5xx marks it failed).
pub fn record_status(span: &Span, status: StatusCode) {
    // As i64: OpenTelemetry has no unsigned integers (a u64 would become a string).
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// A span for one GraphQL operation of an HTTP request (a batch has one per operation),
/// inside the request's span.
pub fn operation_span(operation_type: Option<&str>, operation_name: Option<&str>) -> Span {
    tracing::info_span!(
        target: "finql::graphql",
        "graphql",
        otel.name = operation_span_name(operation_type, operation_name),
        graphql.operation.r#type = operation_type,
        graphql.operation.name = operation_name,
    )
}

/// The span of one WebSocket operation: a trace of its own (a connection lives for hours; its
/// operations are what a trace should show), continuing the `traceparent` the client put in
/// the operation's `extensions`, if any (`{"extensions": {"traceparent": "00-…"}}`).
pub fn ws_operation_span(
    operation_type: Option<&str>,
    operation_name: Option<&str>,
    traceparent: Option<&str>,
) -> (Span, TraceId) {
    let span = tracing::info_span!(
        target: "finql::graphql",
        parent: None,
        "graphql",
        otel.name = operation_span_name(operation_type, operation_name),
        otel.kind = "server",
        graphql.operation.r#type = operation_type,
        graphql.operation.name = operation_name,
        network.protocol.name = "websocket",
        trace_id = Empty,
    );
    let trace_id = adopt(&span, &Traceparent(traceparent));
    (span, trace_id)
}

/// Adds the current span's context to an outgoing request's headers (`traceparent`, and
/// `tracestate` when the caller sent one). Nothing when there is no current trace.
pub fn inject(headers: &mut HeaderMap) {
    let context = Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
}

/// `operation_type operation_name`, or as much of it as is known (`GraphQL Operation` when
/// nothing is, as the conventions say).
fn operation_span_name(operation_type: Option<&str>, operation_name: Option<&str>) -> String {
    match (operation_type, operation_name) {
        (Some(ty), Some(name)) => format!("{ty} {name}"),
        (Some(ty), None) => ty.to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => "GraphQL Operation".to_owned(),
    }
}

/// Makes `span` continue the carrier's trace when it has a valid `traceparent`, and returns
/// the span's trace id, which it records as the span's `trace_id` field (logs show it).
fn adopt(span: &Span, carrier: &dyn Extractor) -> TraceId {
    let parent = TraceContextPropagator::new().extract(carrier);
    let incoming = parent.span().span_context().clone();
    if incoming.is_valid() {
        let _ = span.set_parent(parent);
    }
    let own = span.context().span().span_context().trace_id();
    // Without the OpenTelemetry layer (a process that installed no subscriber), the span has
    // no context: the id is decided here the same way.
    let trace_id = if own != TraceId::INVALID {
        own
    } else if incoming.is_valid() {
        incoming.trace_id()
    } else {
        TraceId::from_bytes(rand::random())
    };
    span.record("trace_id", tracing::field::display(trace_id));
    trace_id
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// A WebSocket operation's `traceparent` (from its `extensions`) as a carrier.
struct Traceparent<'a>(Option<&'a str>);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key == "traceparent" { self.0 } else { None }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_str(traceparent).unwrap());
        headers
    }

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let (_, trace_id) = http_span(&Method::POST, "/graphql", &headers(TRACEPARENT));
        assert_eq!(trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn malformed_traceparents_are_ignored_for_a_new_id() {
        for malformed in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            let (_, trace_id) = http_span(&Method::POST, "/graphql", &headers(malformed));
            assert_ne!(trace_id, TraceId::INVALID, "{malformed}");
            assert_ne!(trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736", "{malformed} was honoured");
        }
    }

    #[test]
    fn requests_without_traceparent_get_distinct_ids() {
        let (_, a) = http_span(&Method::GET, "/health", &HeaderMap::new());
        let (_, b) = http_span(&Method::GET, "/health", &HeaderMap::new());
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 32);
    }

    #[test]
    fn a_websocket_operation_continues_its_extensions_traceparent() {
        let (_, trace_id) = ws_operation_span(Some("subscription"), None, Some(TRACEPARENT));
        assert_eq!(trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let (_, fresh) = ws_operation_span(Some("subscription"), None, None);
        assert_ne!(fresh.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn span_names_are_bounded() {
        assert_eq!(operation_span_name(Some("query"), Some("Quotes")), "query Quotes");
        assert_eq!(operation_span_name(None, None), "GraphQL Operation");
    }
}
