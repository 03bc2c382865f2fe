//! `GET /metrics`: the exposition parses (`exposition`), lists the issue's families, and they
//! move with traffic. The recorder is process-wide and tests run concurrently, so each test
//! compares before and after, on series of its own where it can (a tenant slug of its own),
//! and otherwise asserts only growth.

mod deploy;
pub(crate) mod exposition;

use std::net::SocketAddr;

use finql::metrics::Kind;
use serde_json::json;
use uuid::Uuid;

use self::exposition::Exposition;
use crate::{
    helpers::{Backend, PATIENCE, TestApp, plans_file, spawn_app, within},
    http::ws::{TRANSPORT_WS, Ws},
};

const ONE_QUOTE: &str = r#"{ quotes(symbols: ["AAPL.US"]) { symbol last } }"#;

/// `developer` for everyone (the harness' anonymous plan), and `trickle`: one request, then
/// one a second.
const PLANS: &str = r#"
[plans.developer]
rate_per_second = 1000
burst = 2000
cost_per_minute = 10000000
max_connections = 1000
max_live_symbols = 10000
history_days = 36500
fundamentals = true
delay_minutes = 15
[plans.developer.markets]
"*" = "realtime"

[plans.trickle]
rate_per_second = 1
burst = 1
cost_per_minute = 100000
max_connections = 5
max_live_symbols = 50
history_days = 30
fundamentals = true
delay_minutes = 15
[plans.trickle.markets]
"*" = "realtime"
"#;

/// A tenant slug no other test uses, so its series are this test's alone.
fn unique_slug(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// Scrapes `addr`'s `/metrics`, checks the media type, and parses the body.
async fn scrape_at(app: &TestApp, addr: SocketAddr) -> Exposition {
    let response = app.client.get(format!("http://{addr}/metrics")).send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let media = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(media.starts_with("text/plain; version=0.0.4"), "Prometheus text format, not {media}");
    Exposition::parse(&response.text().await.unwrap())
}

async fn scrape(app: &TestApp) -> Exposition {
    scrape_at(app, app.addr).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_families_move_with_traffic() {
    let (_plans, path) = plans_file(PLANS);
    let app = spawn_app(Backend::Sqlite, &[("FINQL_PLANS_FILE", path.as_str())]).await.unwrap();
    let slug = unique_slug("obs");
    let key = app.tenant_key(&slug, "developer", "market").await;
    let before = scrape(&app).await;

    // Twice the same query (a cache miss, then a hit), one the validator refuses, one unknown route.
    for _ in 0..2 {
        let (status, _, body) = app.gql_key(&key, ONE_QUOTE, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let (_, _, refused) = app.gql_key(&key, "{ quotes(symbols: [\"AAPL.US\"]) { nosuchfield } }", json!({})).await;
    let refused_code = refused["errors"][0]["extensions"]["code"].as_str().expect("an error code").to_owned();
    let lost_path = format!("/no-such-page-{}", Uuid::new_v4().simple());
    assert_eq!(app.client.get(app.url(&lost_path)).send().await.unwrap().status(), 404);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let mine = [("tenant", slug.as_str()), ("operation_type", "query")];

    // GraphQL: per tenant, type and code; the duration histogram counts the same operations.
    assert_eq!(after.kind("finql_graphql_requests_total"), Some("counter"));
    assert_eq!(delta("finql_graphql_requests_total", &[mine[0], mine[1], ("code", "OK")]), 2.0);
    assert_eq!(delta("finql_graphql_requests_total", &[mine[0], ("code", refused_code.as_str())]), 1.0);
    assert_eq!(after.kind("finql_graphql_request_duration_seconds"), Some("histogram"));
    assert_eq!(delta("finql_graphql_request_duration_seconds_count", &[mine[0]]), 3.0);
    assert!(after.sum("finql_graphql_request_duration_seconds_sum", &[mine[0]]) > 0.0);

    // HTTP: by route template and status; a path that matched nothing is `unmatched`, never itself.
    assert!(delta("finql_http_requests_total", &[("route", "/graphql"), ("status", "200")]) >= 2.0);
    assert!(delta("finql_http_requests_total", &[("route", "unmatched"), ("status", "404")]) >= 1.0);
    assert!(after.matching("finql_http_requests_total", &[("route", lost_path.as_str())]).next().is_none());
    assert_eq!(after.kind("finql_http_request_duration_seconds"), Some("histogram"));
    assert!(delta("finql_http_request_duration_seconds_count", &[("route", "/graphql")]) >= 3.0);

    // Caches: the second quote came from the process cache; the parsed document was reused.
    assert!(delta("finql_cache_requests_total", &[("cache", "quotes"), ("result", "miss")]) >= 1.0);
    assert!(delta("finql_cache_requests_total", &[("cache", "quotes"), ("result", "hit")]) >= 1.0);
    assert!(delta("finql_cache_requests_total", &[("cache", "documents"), ("result", "hit")]) >= 1.0);

    // The miss went upstream (the simulated source), and was timed.
    let upstream = [("source", "simulated"), ("endpoint", "quotes")];
    assert!(delta("finql_upstream_requests_total", &[upstream[0], upstream[1], ("outcome", "ok")]) >= 1.0);
    assert!(delta("finql_upstream_request_duration_seconds_count", &upstream) >= 1.0);

    // Read at each scrape: the database pool and the process.
    assert_eq!(after.kind("finql_db_pool_connections"), Some("gauge"));
    assert!(after.sum("finql_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(after.matching("finql_db_pool_connections", &[("state", "idle")]).next().is_some());
    assert!(after.sum("process_resident_memory_bytes", &[]) > 0.0);
    assert!(after.sum("process_open_fds", &[]) > 0.0);
    assert_eq!(after.kind("process_cpu_seconds_total"), Some("counter"));
    // Each family is exposed as the type finql declares for it.
    for (name, kind, _) in finql::metrics::FAMILIES {
        let expected = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        assert!(after.kind(name).is_none_or(|found| found == expected), "{name} is not a {expected}");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted_by_tenant_and_policy() {
    let (_plans, path) = plans_file(PLANS);
    let app = spawn_app(Backend::Sqlite, &[("FINQL_PLANS_FILE", path.as_str())]).await.unwrap();
    let slug = unique_slug("trickle");
    let key = app.tenant_key(&slug, "trickle", "market").await;
    let before = scrape(&app).await;
    // A burst of one: the first passes, the rest (sent at once) are refused.
    let mut refused = 0.0;
    for _ in 0..4 {
        let (status, _, _) = app.gql_key(&key, ONE_QUOTE, json!({})).await;
        if status == 429 {
            refused += 1.0;
        }
    }
    assert!(refused >= 1.0, "the trickle plan refuses a burst");
    let after = scrape(&app).await;
    let labels = [("tenant", slug.as_str()), ("policy", "requests")];
    assert_eq!(
        after.sum("finql_rate_limited_total", &labels) - before.sum("finql_rate_limited_total", &labels),
        refused
    );
    let limited = [("tenant", slug.as_str()), ("code", "RATE_LIMITED")];
    assert_eq!(after.sum("finql_graphql_requests_total", &limited), refused, "a 429 is an outcome too");
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_live_families_move_with_a_subscription() {
    let (_plans, path) = plans_file(PLANS);
    let vars = [("FINQL_PLANS_FILE", path.as_str()), ("FINQL_SIM_TICKS_PER_SEC", "20"), ("FINQL_LIVE_GRACE_MS", "100")];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let slug = unique_slug("live");
    let key = app.tenant_key(&slug, "developer", "market,live").await;
    let before = scrape(&app).await;

    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&key)).await;
    let query = "subscription { quotes(symbols: [\"CRYPTO:BTCUSDT\"]) { symbol last } }";
    ws.subscribe("q", query).await;
    for _ in 0..2 {
        let message = ws.next_json().await;
        assert_eq!(message["type"], "next", "{message}");
    }
    let during = scrape(&app).await;
    assert!(during.sum("finql_ws_connections", &[]) >= 1.0);
    assert!(during.sum("finql_subscriptions_active", &[("kind", "quote")]) >= 1.0);
    let events = |e: &Exposition| e.sum("finql_live_events_total", &[("kind", "quote")]);
    assert!(events(&during) > events(&before), "quote events were received");
    let started = [("tenant", slug.as_str()), ("operation_type", "subscription"), ("code", "OK")];
    assert_eq!(
        during.sum("finql_graphql_requests_total", &started),
        1.0,
        "a subscription counts once, at its first event"
    );

    // The subscription and the connection end: the gauges give back what they took.
    drop(ws);
    within(PATIENCE, "the connection gauge falls back", async || {
        let now = scrape(&app).await;
        now.sum("finql_ws_connections", &[]) < during.sum("finql_ws_connections", &[])
            && now.sum("finql_subscriptions_active", &[("kind", "quote")])
                < during.sum("finql_subscriptions_active", &[("kind", "quote")])
    })
    .await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_serves_them_on_their_own_port() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_METRICS_ADDR", "127.0.0.1:0")]).await.unwrap();
    let metrics_addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr, app.addr);
    // Not on the API's port any more.
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    let (status, _) = app.gql_status(None, ONE_QUOTE, json!({})).await;
    assert_eq!(status, 200);
    let exposition = scrape_at(&app, metrics_addr).await;
    assert!(exposition.sum("finql_graphql_requests_total", &[("tenant", "-")]) >= 1.0, "anonymous callers share `-`");
    // Nothing but /metrics there.
    let other = app.client.get(format!("http://{metrics_addr}/graphql")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    app.shutdown().await.unwrap();
}

/// `FINQL_METRICS=off`: no `/metrics` (and no listener of its own), requests answered as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_serves_no_exposition() {
    let app =
        spawn_app(Backend::Sqlite, &[("FINQL_METRICS", "off"), ("FINQL_METRICS_ADDR", "127.0.0.1:0")]).await.unwrap();
    assert_eq!(app.metrics_addr, None, "no metrics listener");
    let (status, body) = app.gql_status(None, ONE_QUOTE, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    app.shutdown().await.unwrap();
}
