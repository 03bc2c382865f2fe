//! Traces (`finql::telemetry`): every request's W3C trace id — from a valid `traceparent`, else
//! new — on `x-request-id` over HTTP, and on `extensions.traceId` of each WebSocket
//! operation's first result; the `traceparent` sent to iTick; and (`otlp`) the spans a collector receives.

mod otlp;

use serde_json::{Value, json};

use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

/// W3C Trace Context's own example: trace id, parent span id, sampled.
pub(crate) const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub(crate) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(crate) const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// POSTs `query` with `headers`; the response's `x-request-id` and body.
async fn post(app: &TestApp, headers: &[(&str, &str)], query: &str) -> (Option<String>, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({ "query": query }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (request_id, response.json().await.expect("a JSON body"))
}

fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) && id != "0".repeat(32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_traceparent_names_the_request() {
    let app = app_with(&[]).await;
    let (request_id, body) = post(&app, &[("traceparent", TRACEPARENT)], "{ __typename }").await;
    assert_eq!(request_id.as_deref(), Some(TRACE_ID), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_each_request_gets_a_new_trace_id() {
    let app = app_with(&[]).await;
    let mut seen = Vec::new();
    for headers in [
        vec![],
        vec![],
        // Malformed: too few parts, an all-zero trace id, upper-case hex, an unknown version form.
        vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")],
        vec![("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")],
        vec![("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")],
        vec![("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        // A client's own request id does not replace the trace id.
        vec![("x-request-id", "my-own-id")],
    ] {
        let (request_id, _) = post(&app, &headers, "{ __typename }").await;
        let request_id = request_id.expect("every response has an x-request-id");
        assert!(is_trace_id(&request_id), "{request_id} for {headers:?}");
        assert_ne!(request_id, TRACE_ID, "a malformed traceparent was honoured: {headers:?}");
        seen.push(request_id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "trace ids repeat: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_graphql_carry_their_trace_id_too() {
    let app = app_with(&[]).await;
    for path in ["/health", "/no-such-route"] {
        let response =
            app.client.get(app.url(path)).header("traceparent", TRACEPARENT).send().await.expect("an answer");
        assert_eq!(response.headers()["x-request-id"], TRACE_ID, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_websocket_operation_has_a_trace_of_its_own() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    // The client's trace, in the operation's extensions.
    let payload = json!({ "query": "{ __typename }", "extensions": { "traceparent": TRACEPARENT } });
    ws.send_json(json!({ "type": "subscribe", "id": "1", "payload": payload })).await;
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["extensions"]["traceId"], TRACE_ID, "{next}");
    assert_eq!(ws.next_json().await["type"], "complete");
    // None given: each operation a new one.
    let mut ids = Vec::new();
    for id in ["2", "3"] {
        ws.subscribe(id, "{ __typename }").await;
        let next = ws.next_json().await;
        let trace_id = next["payload"]["extensions"]["traceId"].as_str().expect("a traceId").to_owned();
        assert!(is_trace_id(&trace_id) && trace_id != TRACE_ID, "{next}");
        assert_eq!(ws.next_json().await["type"], "complete");
        ids.push(trace_id);
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itick_calls_carry_the_requests_traceparent() {
    let fake = FakeItick::start().await;
    let base = fake.base_url();
    let app = app_with(&[("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", &base), ("ITICK_TOKEN", TOKEN)]).await;
    let query = r#"{ quotes(symbols: ["AAPL.US", "700.HK"]) { symbol last } }"#;
    let (_, body) = post(&app, &[("traceparent", TRACEPARENT)], query).await;
    assert!(body.get("errors").is_none(), "{body}");
    let sent = fake.traceparents();
    assert_eq!(sent.len(), 2, "one call per region: {sent:?}");
    for traceparent in &sent {
        let traceparent = traceparent.as_deref().expect("every iTick call carries a traceparent");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE_ID, "01"), "{traceparent}");
        // The parent iTick sees is finql's own span, not the caller's.
        assert_ne!(parts[2], PARENT_SPAN_ID);
        assert!(parts[2].len() == 16 && parts[2] != "0".repeat(16), "{traceparent}");
    }

    // Without a traceparent, the request's own trace id (its x-request-id) goes upstream.
    let query = r#"{ quotes(symbols: ["MSFT.US"]) { symbol last } }"#;
    let (request_id, body) = post(&app, &[], query).await;
    assert!(body.get("errors").is_none(), "{body}");
    let request_id = request_id.unwrap();
    let sent = fake.traceparents();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let last = sent[2].as_deref().expect("a traceparent");
    assert_eq!(last.split('-').nth(1), Some(request_id.as_str()), "{last}");
}
