//! The data freshness alarm (`finql::live::freshness`) end to end: the fake iTick WebSocket
//! goes silent while a market it streams is in session, and a fake webhook receiver in the test
//! gets exactly one alert and, once pushes resume, exactly one resolve; silent outside a
//! session, nothing; `/ready` shows each dependency's state throughout; across two replicas
//! sharing Redis, still one alert and one resolve.
//!
//! The server runs on the wall clock over real sockets (a paused clock would fire its timeouts
//! while the test waits for I/O), so the threshold is short (1 s) and the waits poll for what
//! can be observed. Saying "no second alert" needs a stretch of time without one: those
//! stretches are several thresholds long, so a repeat would have had several chances to
//! appear. The state machine itself is unit-tested on a paused clock
//! (`src/live/freshness/tests.rs`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use chrono::Utc;
use finql::market::calendar::{self, MarketState, Region};
use serde_json::{Value, json};

use crate::{
    helpers::{fake_server::FakeServer, *},
    http::ws::{TRANSPORT_WS, Ws},
    sources::itick::{fake_rest::TOKEN, fake_ws::FakeItickWs},
};

/// The stale threshold of these tests, as `FINQL_SOURCE_STALE_SECS`.
const STALE_SECS: &str = "1";
const STALE: Duration = Duration::from_secs(1);

/// A webhook receiver: records every JSON body; answers 503 to the first `failures` POSTs
/// (so delivery must retry) and 200 after.
struct FakeWebhook {
    received: Arc<Mutex<Received>>,
    server: FakeServer,
}

#[derive(Default)]
struct Received {
    failures: usize,
    /// Bodies answered 200.
    accepted: Vec<Value>,
    /// POSTs answered 503.
    refused: usize,
}

impl FakeWebhook {
    async fn start(failures: usize) -> Self {
        let received = Arc::new(Mutex::new(Received { failures, ..Received::default() }));
        let app = Router::new()
            .route(
                "/hook",
                post(|State(received): State<Arc<Mutex<Received>>>, Json(body): Json<Value>| async move {
                    let mut received = received.lock().unwrap();
                    if received.refused < received.failures {
                        received.refused += 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    received.accepted.push(body);
                    StatusCode::OK
                }),
            )
            .with_state(received.clone());
        Self { received, server: FakeServer::serve(app, "fake webhook").await }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.server.addr)
    }

    /// The alerts accepted so far, in order.
    fn alerts(&self) -> Vec<Value> {
        self.received.lock().unwrap().accepted.clone()
    }

    fn statuses(&self) -> Vec<String> {
        self.alerts().iter().map(|a| a["status"].as_str().unwrap_or("?").to_owned()).collect()
    }

    fn refused(&self) -> usize {
        self.received.lock().unwrap().refused
    }
}

async fn itick_app(fake: &FakeItickWs, hook: &FakeWebhook, extra: &[(&str, &str)]) -> TestApp {
    let (ws_url, hook_url) = (fake.url(), hook.url());
    let mut vars = vec![
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_TOKEN", TOKEN),
        // REST is not used by subscriptions; point it somewhere closed.
        ("ITICK_BASE_URL", "http://127.0.0.1:9"),
        ("ITICK_WS_URL", ws_url.as_str()),
        ("FINQL_LIVE_GRACE_MS", "100"),
        ("FINQL_SOURCE_STALE_SECS", STALE_SECS),
        ("FINQL_ALERT_WEBHOOK_URL", hook_url.as_str()),
    ];
    vars.extend_from_slice(extra);
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

/// A user's WebSocket following `symbol`'s quotes.
async fn follow(app: &TestApp, symbol: &str) -> Ws {
    let user = app.new_user().await;
    let mut ws = Ws::connect(app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    let query = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last } }";
    ws.send_json(
        json!({ "type": "subscribe", "id": "q", "payload": { "query": query, "variables": { "s": [symbol] } } }),
    )
    .await;
    ws
}

/// Pushes quotes of `code$region` every 50 ms for `how_long` (the first once someone is
/// subscribed).
async fn stream_for(fake: &FakeItickWs, code: &str, region: &str, how_long: Duration) {
    eventually(&format!("someone subscribes to {code}${region}"), || fake.push_quote(code, region, "100.5") > 0).await;
    let end = std::time::Instant::now() + how_long;
    while std::time::Instant::now() < end {
        fake.push_quote(code, region, "100.5");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn itick_state(app: &TestApp) -> String {
    ready(app).await.1["sources"]["itick"].as_str().unwrap_or("missing").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_silent_in_session_alerts_once_and_resolves_once() {
    let fake = FakeItickWs::start().await;
    // The first POST fails: the alert arrives through a retry, still once.
    let hook = FakeWebhook::start(1).await;
    let app = itick_app(&fake, &hook, &[]).await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["database"].as_str()), (Some("ready"), Some("ok")), "{body}");
    assert_eq!(body["redis"], "off", "{body}");
    assert_eq!(body["sources"]["itick"], "ok", "nothing streamed, nothing expected: {body}");

    // Crypto trades around the clock: always in session.
    let _ws = follow(&app, "CRYPTO:BTCUSDT").await;
    stream_for(&fake, "BTCUSDT", "BA", STALE * 3).await;
    assert!(hook.alerts().is_empty(), "a source pushing every 50 ms is fresh: {:?}", hook.alerts());
    let (_, body) = ready(&app).await;
    assert_eq!(body["sources"]["itick"], "ok", "{body}");
    assert_eq!(body["detail"]["sources"]["itick"]["inSession"], json!(["GLOBAL"]), "{body}");
    assert!(body["detail"]["sources"]["itick"]["lastEventAgeSeconds"].as_f64().unwrap() < 1.0, "{body}");

    // The upstream goes silent: one alert (after one refused POST), /ready says stale, still 200.
    fake.silence_current();
    within(PATIENCE, "the alert", async || hook.alerts().len() == 1).await;
    assert_eq!(hook.refused(), 1, "the first POST was refused and retried");
    let alert = &hook.alerts()[0];
    assert_eq!((alert["alert"].as_str(), alert["status"].as_str()), (Some("source_stale"), Some("firing")), "{alert}");
    assert_eq!((alert["source"].as_str(), alert["markets"].clone()), (Some("itick"), json!(["GLOBAL"])), "{alert}");
    assert!(alert["silentSeconds"].as_f64().unwrap() >= 1.0, "{alert}");
    let (status, body) = ready(&app).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "a stale source keeps the replica in rotation");
    assert_eq!(body["sources"]["itick"], "stale", "{body}");
    assert!(body["detail"]["sources"]["itick"]["lastEventAgeSeconds"].as_f64().unwrap() >= 1.0, "{body}");

    // Silent for several thresholds more: still one alert.
    tokio::time::sleep(STALE * 4).await;
    assert_eq!(hook.statuses(), ["firing"]);

    // The stream reconnects (the fake drops the silent socket) and pushes again: one resolve,
    // naming the alert's incident.
    fake.drop_all();
    stream_for(&fake, "BTCUSDT", "BA", STALE).await;
    within(PATIENCE, "the resolve", async || hook.alerts().len() == 2).await;
    let alerts = hook.alerts();
    assert_eq!(alerts[1]["status"], "resolved", "{alerts:?}");
    assert_eq!(alerts[1]["reason"], "events resumed", "{alerts:?}");
    assert_eq!(alerts[1]["incident"], alerts[0]["incident"], "the resolve names its alert");
    assert_eq!(itick_state(&app).await, "ok");
    // Fresh for several thresholds more: nothing else.
    stream_for(&fake, "BTCUSDT", "BA", STALE * 4).await;
    assert_eq!(hook.statuses(), ["firing", "resolved"]);
}

/// A stock market (of two that are never open together) closed now and for the next minutes.
fn closed_stock_market() -> (&'static str, &'static str, &'static str) {
    let candidates = [("AAPL.US", "AAPL", "US", Region::Us), ("700.HK", "700", "HK", Region::Hk)];
    let now = Utc::now();
    candidates
        .into_iter()
        .find(|(.., region)| {
            (0..=5).all(|minute| {
                calendar::status(*region, now + chrono::Duration::minutes(minute)).state != MarketState::Open
            })
        })
        .map(|(symbol, code, region, _)| (symbol, code, region))
        .expect("New York and Hong Kong are never in session together")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_silent_outside_a_session_raises_nothing() {
    let fake = FakeItickWs::start().await;
    let hook = FakeWebhook::start(0).await;
    let app = itick_app(&fake, &hook, &[]).await;
    let (symbol, code, region) = closed_stock_market();
    let _ws = follow(&app, symbol).await;
    stream_for(&fake, code, region, STALE).await;

    // Silent for many thresholds: the market is closed, so nothing is expected.
    fake.silence_current();
    tokio::time::sleep(STALE * 6).await;
    assert!(hook.alerts().is_empty(), "{symbol}: {:?}", hook.alerts());
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"]["itick"], "ok", "{body}");
    let detail = &body["detail"]["sources"]["itick"];
    assert_eq!(detail["inSession"], json!([]), "{body}");
    assert!(
        detail["lastEventAgeSeconds"].as_f64().unwrap() >= 3.0 * STALE.as_secs_f64(),
        "silence is still measured: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_send_one_alert_and_one_resolve() {
    let Some(redis) = test_redis_url() else { return };
    let fake = FakeItickWs::start().await;
    let hook = FakeWebhook::start(0).await;
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut replicas = Vec::new();
    let mut clients = Vec::new();
    for id in ["replica-a", "replica-b"] {
        let vars =
            [("REDIS_URL", redis.as_str()), ("FINQL_CACHE_NAMESPACE", namespace.as_str()), ("FINQL_REPLICA_ID", id)];
        let app = itick_app(&fake, &hook, &vars).await;
        // Each replica follows the pair, so each expects it and each sees it go silent.
        clients.push(follow(&app, "CRYPTO:BTCUSDT").await);
        replicas.push(app);
    }
    stream_for(&fake, "BTCUSDT", "BA", STALE * 2).await;
    for app in &replicas {
        assert_eq!(ready(app).await.1["redis"], "ok");
    }

    fake.silence_current();
    within(PATIENCE, "both replicas see the source stale", async || {
        itick_state(&replicas[0]).await == "stale" && itick_state(&replicas[1]).await == "stale"
    })
    .await;
    within(PATIENCE, "the alert", async || !hook.alerts().is_empty()).await;
    tokio::time::sleep(STALE * 4).await;
    assert_eq!(hook.statuses(), ["firing"], "one alert from two replicas");

    fake.drop_all();
    stream_for(&fake, "BTCUSDT", "BA", STALE).await;
    within(PATIENCE, "both replicas see it recover", async || {
        itick_state(&replicas[0]).await == "ok" && itick_state(&replicas[1]).await == "ok"
    })
    .await;
    within(PATIENCE, "the resolve", async || hook.alerts().len() == 2).await;
    stream_for(&fake, "BTCUSDT", "BA", STALE * 4).await;
    let alerts = hook.alerts();
    assert_eq!(hook.statuses(), ["firing", "resolved"], "one resolve from two replicas: {alerts:?}");
    assert_eq!(alerts[1]["incident"], alerts[0]["incident"], "{alerts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_refusing_requests_is_down_and_the_replica_stays_ready() {
    let fake = FakeItickWs::start().await;
    let hook = FakeWebhook::start(0).await;
    // iTick REST points at a closed port: one failed request opens its breaker.
    let app = itick_app(&fake, &hook, &[("FINQL_BREAKER_FAILURES", "1"), ("ITICK_MAX_RETRIES", "0")]).await;
    assert_eq!(itick_state(&app).await, "ok");
    let body = app.gql(None, "{ quotes(symbols: [\"AAPL.US\"]) { symbol } }", json!({})).await;
    assert!(body["errors"].is_array(), "the upstream is unreachable: {body}");
    let (status, body) = ready(&app).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");
    assert_eq!(body["sources"]["itick"], "down", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    assert!(hook.alerts().is_empty(), "down is reported, not alerted: nothing streams");
}

/// The gauges Prometheus' backstop rule reads (`deploy/prometheus/alerts.yml`), from a finql
/// process of its own (the recorder is process-wide, and this binary's other servers stream
/// from sources of the same name): nothing followed, nothing expected (`in_session` 0); a crypto
/// symbol followed (always trading) and pushed, expected and fresh; the source silent, the age
/// grows past the threshold while it is still expected: what pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_gauges_say_what_the_alarm_sees() {
    let fake = FakeItickWs::start().await;
    let ws_url = fake.url();
    let server = crate::helpers::process::FinqlProcess::start(&[
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_TOKEN", TOKEN),
        ("ITICK_BASE_URL", "http://127.0.0.1:9"),
        ("ITICK_WS_URL", ws_url.as_str()),
        ("FINQL_SOURCE_STALE_SECS", STALE_SECS),
    ])
    .await;
    // No app in this test process has installed rustls' provider (finql's choice: ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let gauge = async |name: &str| {
        let text = client.get(format!("http://{}/metrics", server.addr)).send().await.unwrap().text().await.unwrap();
        let exposition = crate::metrics::exposition::Exposition::parse(&text);
        exposition.matching(name, &[("source", "itick")]).next().map(|sample| sample.value)
    };
    within(PATIENCE, "the first check", async || gauge("finql_source_in_session").await.is_some()).await;
    assert_eq!(gauge("finql_source_in_session").await, Some(0.0), "nothing followed, nothing expected");

    let mut ws = Ws::connect_url(&server.ws_url(), TRANSPORT_WS).await;
    ws.init(Some(&server.access_token().await)).await;
    ws.subscribe("q", r#"subscription { quotes(symbols: ["CRYPTO:BTCUSDT"]) { last } }"#).await;
    let pushing = stream_for(&fake, "BTCUSDT", "BA", STALE * 3);
    let watching = within(PATIENCE, "expected and fresh", async || {
        gauge("finql_source_in_session").await == Some(1.0)
            && gauge("finql_source_last_event_age_seconds").await.is_some_and(|age| age < STALE.as_secs_f64())
            && gauge("finql_source_lag_seconds").await.is_some()
    });
    tokio::join!(pushing, watching);

    fake.silence_current();
    within(PATIENCE, "silent past the threshold while expected", async || {
        gauge("finql_source_last_event_age_seconds").await.is_some_and(|age| age > STALE.as_secs_f64())
            && gauge("finql_source_in_session").await == Some(1.0)
    })
    .await;
}
