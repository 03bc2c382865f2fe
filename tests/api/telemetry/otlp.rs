//! OTLP export: finql, as its own process with `OTEL_EXPORTER_OTLP_ENDPOINT` set (the exporter
//! is the process's, installed once at start), sends its spans over HTTP/protobuf to a fake
//! collector here, which decodes them with the OpenTelemetry protocol's own types.

use std::sync::Arc;

use axum::{Router, body::Bytes, extract::State, http::header, response::IntoResponse, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;
use serde_json::json;

use super::{PARENT_SPAN_ID, TRACE_ID, TRACEPARENT};
use crate::helpers::{
    PATIENCE,
    fake_server::{Controls, FakeServer},
    process::FinqlProcess,
    within,
};

/// A collector's OTLP/HTTP traces endpoint (`POST /v1/traces`, protobuf), keeping every span.
struct FakeCollector {
    addr: std::net::SocketAddr,
    spans: Arc<Controls<Vec<Span>>>,
    _server: FakeServer,
}

impl FakeCollector {
    async fn start() -> Self {
        let spans: Arc<Controls<Vec<Span>>> = Arc::default();
        let app = Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
        let server = FakeServer::serve(app, "fake OTLP collector").await;
        Self { addr: server.addr, spans, _server: server }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().clone()
    }
}

async fn receive(State(spans): State<Arc<Controls<Vec<Span>>>>, body: Bytes) -> impl IntoResponse {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let received = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
    spans.lock().extend(received);
    ([(header::CONTENT_TYPE, "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn string(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_owned())
}

fn mentions(kv: &KeyValue, needle: &str) -> bool {
    let text = |v: &AnyValue| match &v.value {
        Some(any_value::Value::StringValue(s)) => s.contains(needle),
        _ => false,
    };
    kv.key.contains(needle) || kv.value.as_ref().is_some_and(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_receives_the_requests_spans_in_the_callers_trace() {
    finql::sources::http::install_crypto_provider();
    let collector = FakeCollector::start().await;
    let endpoint = format!("http://{}", collector.addr);
    // Batches every 50 ms rather than the default 5 s: the test waits for them.
    let finql =
        FinqlProcess::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "50")])
            .await;
    let query = "mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let response = reqwest::Client::new()
        .post(format!("http://{}/graphql", finql.addr))
        .header("traceparent", TRACEPARENT)
        .json(&json!({ "query": query, "variables": { "e": "nobody@example.com", "p": "hunter2-secret" } }))
        .send()
        .await
        .expect("finql answers");
    assert_eq!(response.headers()["x-request-id"], TRACE_ID);

    let in_trace = || -> Vec<Span> { collector.spans().into_iter().filter(|s| hex(&s.trace_id) == TRACE_ID).collect() };
    within(PATIENCE, "the request's spans at the collector", async || {
        let spans = in_trace();
        ["POST /graphql", "mutation Login", "accounts.login"].iter().all(|name| spans.iter().any(|s| s.name == *name))
    })
    .await;
    let spans = in_trace();
    let named = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} span"));

    // The HTTP server span continues the caller's span.
    let request = named("POST /graphql");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(hex(&request.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(attribute(request, "http.request.method"), Some(&string("POST")));
    assert_eq!(attribute(request, "http.response.status_code"), Some(&any_value::Value::IntValue(200)));

    // The GraphQL operation, with the OpenTelemetry GraphQL attributes, inside it.
    let operation = named("mutation Login");
    assert_eq!(operation.parent_span_id, request.span_id);
    assert_eq!(attribute(operation, "graphql.operation.type"), Some(&string("mutation")));
    assert_eq!(attribute(operation, "graphql.operation.name"), Some(&string("Login")));

    // The service's span below it.
    let login = named("accounts.login");
    assert!(spans.iter().any(|s| s.span_id == login.parent_span_id), "accounts.login has its parent in the trace");

    // Never the variables: no span holds the password (nor the e-mail), under any key.
    for span in &spans {
        for kv in &span.attributes {
            assert!(!mentions(kv, "hunter2") && !mentions(kv, "nobody@"), "{} leaks a variable: {kv:?}", span.name);
            assert!(!kv.key.contains("variables"), "{}: {kv:?}", span.name);
        }
    }
}
