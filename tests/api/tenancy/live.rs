//! Plans over WebSocket: entitlements of subscriptions (a market outside the plan refused,
//! naming it; order books refused for delayed markets; delayed symbols held back), and the live
//! quotas (`max_connections` at `connection_init`, `max_live_symbols` per subscription), in one
//! process and across replicas on one Redis, including a replica killed outright.
//!
//! The transport does not depend on the database, so these run on SQLite. They need markets
//! that move now, so real-time data is asserted on crypto pairs (the simulated market keeps
//! exchange hours). That a delayed event leaves exactly a delay late, conflated and within its
//! memory bound, is proven on tokio's paused clock in `live::delay` and `live::graphql`; here,
//! on the real server, that a delayed subscriber receives nothing while a real-time one of the
//! same symbol receives its quotes, and that the hub's meter shows the delay line holding them.

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{process::FinqlProcess, *},
    http::ws::{TRANSPORT_WS, Ws},
};

/// `narrow`: crypto real-time, HK delayed, the rest none, 2 connections and 3 symbols per
/// tenant. `lagged`: crypto delayed. `wide`: everything real-time.
const PLANS: &str = r#"
[plans.narrow]
rate_per_second = 1000
burst = 1000
cost_per_minute = 1000000
max_connections = 2
max_live_symbols = 3
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.narrow.markets]
CRYPTO = "realtime"
HK = "delayed"

[plans.lagged]
rate_per_second = 1000
burst = 1000
cost_per_minute = 1000000
max_connections = 10
max_live_symbols = 100
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.lagged.markets]
CRYPTO = "delayed"

[plans.wide]
rate_per_second = 1000
burst = 1000
cost_per_minute = 1000000
max_connections = 10
max_live_symbols = 100
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.wide.markets]
"*" = "realtime"
"#;

/// The plans file has no `developer` plan (the suite's default): sign-ups and anonymous
/// callers get `wide`.
const DEFAULT_PLAN: (&str, &str) = ("FINQL_DEFAULT_PLAN", "wide");
const ANONYMOUS_PLAN: (&str, &str) = ("FINQL_ANONYMOUS_PLAN", "wide");

const QUOTES: &str = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last timestamp } }";
const BOOK: &str = "subscription($s: String!) { orderBook(symbol: $s, levels: 1) { symbol } }";

/// The plans file (kept alive by the returned folder).
fn plans() -> (TempDir, String) {
    plans_file(PLANS)
}

/// A server on these plans (default and anonymous plan `wide`), with `extra` settings; the
/// folder keeps the plans file alive.
async fn plans_app(extra: &[(&str, &str)]) -> (TestApp, TempDir) {
    let (dir, file) = plans();
    let mut vars = vec![("FINQL_PLANS_FILE", file.as_str()), DEFAULT_PLAN, ANONYMOUS_PLAN];
    vars.extend_from_slice(extra);
    (spawn_app(Backend::Sqlite, &vars).await.unwrap(), dir)
}

async fn connect(url: &str, key: &str) -> Ws {
    let mut ws = Ws::connect_url(url, TRANSPORT_WS).await;
    ws.init(Some(key)).await;
    ws
}

/// `connection_init` with `key`: the close frame the server answers with, if it refuses.
async fn refused_init(url: &str, key: &str) -> Option<(u16, String)> {
    let mut ws = Ws::connect_url(url, TRANSPORT_WS).await;
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } })).await;
    match ws.next_frame().await {
        Some(Message::Close(Some(frame))) => Some((u16::from(frame.code), frame.reason.to_string())),
        Some(Message::Text(text)) if text.as_str().contains("connection_ack") => None,
        other => panic!("expected an ack or a close, got {other:?}"),
    }
}

async fn subscribe(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    ws.send_json(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } })).await;
}

/// The next message that is not a keep-alive.
async fn next_message(ws: &mut Ws) -> Value {
    loop {
        let message = ws.next_json().await;
        if !matches!(message["type"].as_str(), Some("ping" | "pong" | "ka")) {
            return message;
        }
    }
}

/// The next message for `id` (other operations' data is skipped).
async fn next_for(ws: &mut Ws, id: &str) -> Value {
    loop {
        let message = next_message(ws).await;
        if message["id"] == id {
            return message;
        }
    }
}

/// The first error of the next message for `id`: a field error (a `next` carrying errors, then
/// `complete`: how a refused subscription ends) or an `error`.
async fn expect_error(ws: &mut Ws, id: &str) -> Value {
    let message = next_for(ws, id).await;
    assert_eq!(message["id"], id, "{message}");
    match message["type"].as_str() {
        Some("error") => message["payload"][0].clone(),
        Some("next") => {
            let complete = next_for(ws, id).await;
            assert_eq!(complete, json!({ "type": "complete", "id": id }));
            message["payload"]["errors"][0].clone()
        }
        _ => panic!("expected an error, got {message}"),
    }
}

/// The next message for `id` must be data.
async fn expect_data(ws: &mut Ws, id: &str) -> Value {
    let message = next_for(ws, id).await;
    assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some("next"), Some(id)), "{message}");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"].clone()
}

fn assert_entitlement(error: &Value, market: &str) {
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{error}");
    assert_eq!(error["extensions"]["reason"], "ENTITLEMENT_REQUIRED", "{error}");
    assert_eq!(error["extensions"]["market"], market, "{error}");
    assert!(error["message"].as_str().unwrap().contains(market), "{error}");
}

fn assert_symbol_quota(error: &Value) {
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{error}");
    assert_eq!(error["extensions"]["reason"], "QUOTA_EXCEEDED", "{error}");
    assert_eq!(error["extensions"]["limit"], "max_live_symbols", "{error}");
    assert_eq!(error["extensions"]["max"], 3, "{error}");
    assert!(error["message"].as_str().unwrap().contains("max_live_symbols"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_see_what_the_plan_allows_tenant_by_tenant() {
    let (app, _plans) = plans_app(&[("FINQL_SIM_TICKS_PER_SEC", "10")]).await;
    let narrow = app.tenant_key("narrow-desk", "narrow", "market,live").await;
    let wide = app.tenant_key("wide-desk", "wide", "market,live").await;
    let mut n = connect(&app.ws_url(), &narrow).await;
    let mut w = connect(&app.ws_url(), &wide).await;

    // A market outside the plan: refused, naming it; the wide tenant's same request is not.
    subscribe(&mut n, "sh", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT", "600519.SH"] })).await;
    assert_entitlement(&expect_error(&mut n, "sh").await, "SH");
    // Order books are real-time only: refused for the delayed HK market, served for crypto.
    subscribe(&mut n, "hk-book", BOOK, json!({ "s": "700.HK" })).await;
    let error = expect_error(&mut n, "hk-book").await;
    assert_entitlement(&error, "HK");
    assert!(error["message"].as_str().unwrap().contains("real-time only"), "{error}");
    subscribe(&mut n, "book", BOOK, json!({ "s": "CRYPTO:BTCUSDT" })).await;
    assert_eq!(expect_data(&mut n, "book").await["orderBook"]["symbol"], "CRYPTO:BTCUSDT");
    // A key without the `live` scope is refused whatever the plan.
    let market_only = app.tenant_key("wide-desk", "wide", "market").await;
    let mut m = connect(&app.ws_url(), &market_only).await;
    subscribe(&mut m, "q", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT"] })).await;
    let error = expect_error(&mut m, "q").await;
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{error}");
    assert!(error["message"].as_str().unwrap().contains("`live` scope"), "{error}");
    // Anonymous connections are accepted but may not subscribe (live data is licensed).
    let mut anonymous = Ws::connect(&app, TRANSPORT_WS).await;
    anonymous.init(None).await;
    subscribe(&mut anonymous, "q", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT"] })).await;
    assert_eq!(expect_error(&mut anonymous, "q").await["extensions"]["code"], "UNAUTHENTICATED");
    // The wide tenant gets the HK book (the subscription starts; HK may be closed now, so no
    // data is awaited) and SH quotes without an error.
    subscribe(&mut w, "sh", QUOTES, json!({ "s": ["600519.SH"] })).await;
    subscribe(&mut w, "hk-book", BOOK, json!({ "s": "700.HK" })).await;
    subscribe(&mut w, "btc", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT"] })).await;
    for _ in 0..2 {
        let message = next_message(&mut w).await;
        assert_eq!(message["type"], "next", "only data for the wide tenant: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_market_holds_its_events_back_while_real_time_flows() {
    let (app, _plans) = plans_app(&[("FINQL_SIM_TICKS_PER_SEC", "10")]).await;
    let lagged = app.tenant_key("lagged-desk", "lagged", "live").await;
    let wide = app.tenant_key("wide-desk", "wide", "live").await;
    let mut late = connect(&app.ws_url(), &lagged).await;
    let mut now = connect(&app.ws_url(), &wide).await;
    let symbols = json!({ "s": ["CRYPTO:BTCUSDT"] });
    subscribe(&mut late, "q", QUOTES, symbols.clone()).await;
    subscribe(&mut now, "q", QUOTES, symbols).await;
    // Three real-time quotes (the current one, then two moves: about 200 ms at 10 a second).
    for _ in 0..3 {
        assert_eq!(expect_data(&mut now, "q").await["quotes"]["symbol"], "CRYPTO:BTCUSDT");
    }
    // Meanwhile the delayed subscriber received nothing: its quotes are in its delay line.
    let pending = tokio::time::timeout(Duration::from_millis(300), next_message(&mut late)).await;
    assert!(pending.is_err(), "a delayed subscriber got data before its delay: {pending:?}");
    let meter = app.state.live.delays();
    assert_eq!(meter.lines(), 1, "one delayed topic of one subscription");
    assert!(meter.entries() >= 1, "the quotes wait in the line: {meter:?}");
    // Completing the subscription gives the line's memory back.
    late.send_json(json!({ "type": "complete", "id": "q" })).await;
    for _ in 0..50 {
        if meter.lines() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((meter.lines(), meter.entries()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_symbols_are_limited_per_tenant_in_process() {
    let (app, _plans) = plans_app(&[]).await;
    let key = app.tenant_key("narrow-desk", "narrow", "live").await;
    let other = app.tenant_key("other-desk", "narrow", "live").await;
    let url = app.ws_url();
    let mut first = connect(&url, &key).await;
    let mut second = connect(&url, &key).await;
    let (code, reason) = refused_init(&url, &key).await.expect("the third connection is refused");
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("max_connections") && reason.contains("narrow-desk"), "{reason}");
    // Another tenant on the same plan has its own count.
    let _elsewhere = connect(&url, &other).await;
    assert!(refused_init(&url, &other).await.is_none());

    // Three distinct symbols at most, counted across the tenant's connections.
    subscribe(&mut first, "a", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"] })).await;
    expect_data(&mut first, "a").await;
    subscribe(&mut second, "b", QUOTES, json!({ "s": ["CRYPTO:BNBUSDT", "CRYPTO:XRPUSDT"] })).await;
    assert_symbol_quota(&expect_error(&mut second, "b").await);
    // Symbols already followed cost nothing more.
    subscribe(&mut second, "c", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT", "CRYPTO:BNBUSDT"] })).await;
    expect_data(&mut second, "c").await;
    // Ending a subscription frees what nothing else follows: ETH, not BTC.
    first.send_json(json!({ "type": "complete", "id": "a" })).await;
    let mut admitted = false;
    for attempt in 0..50 {
        subscribe(&mut second, &format!("d{attempt}"), QUOTES, json!({ "s": ["CRYPTO:XRPUSDT"] })).await;
        let id = format!("d{attempt}");
        let message = next_for(&mut second, &id).await;
        if message["type"] == "next" && message["payload"].get("errors").is_none() {
            admitted = true;
            break;
        }
        if message["type"] == "next" {
            // The refusal's `complete`.
            next_for(&mut second, &id).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "XRP fits once ETH is released");
    let tenant = app.state.tenancy.tenant_by_slug("narrow-desk").await.unwrap().unwrap();
    let (connections, symbols) = app.state.live_quotas.held(tenant.id);
    assert_eq!(connections, 2);
    assert_eq!(symbols, 3, "BTC, BNB and XRP");
    // A closed connection gives its place back.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if refused_init(&url, &key).await.is_none() {
            reopened = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a place was given back when the first connection closed");
}

/// Two replicas on one Redis (and one database): one quota for the tenant, wherever its
/// connections land; a replica killed outright stops counting one lease later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_across_replicas_and_a_dead_replica_leaks_nothing() {
    let Some(redis) = test_redis_url() else { return };
    let (plans_dir, file) = plans();
    let database = format!("sqlite://{}/shared.db?mode=rwc", plans_dir.path().display());
    let namespace = format!("test-live-quota-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("FINQL_PLANS_FILE", file.as_str()),
        DEFAULT_PLAN,
        ANONYMOUS_PLAN,
        ("DATABASE_URL", database.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        // A short lease: the dead replica's holdings stop counting within 300 ms.
        ("FINQL_LIVE_LEASE_MS", "300"),
    ];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let key = app.tenant_key("narrow-desk", "narrow", "live").await;
    let replica = FinqlProcess::start(&vars).await;

    // One connection there, one here: the third is refused, wherever it lands.
    let mut far = connect(&replica.ws_url(), &key).await;
    let mut here = connect(&app.ws_url(), &key).await;
    let (code, reason) = refused_init(&app.ws_url(), &key).await.expect("the third connection is refused here");
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("max_connections"), "{reason}");
    assert!(refused_init(&replica.ws_url(), &key).await.is_some(), "and there");
    // Symbols count across replicas too: two there, two more here is one too many; one more
    // (and one already followed there) fits.
    subscribe(&mut far, "a", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"] })).await;
    expect_data(&mut far, "a").await;
    subscribe(&mut here, "b", QUOTES, json!({ "s": ["CRYPTO:BNBUSDT", "CRYPTO:XRPUSDT"] })).await;
    assert_symbol_quota(&expect_error(&mut here, "b").await);
    subscribe(&mut here, "c", QUOTES, json!({ "s": ["CRYPTO:BTCUSDT", "CRYPTO:BNBUSDT"] })).await;
    expect_data(&mut here, "c").await;

    // The other replica dies without a word: its connection and its symbols (ETH) stop
    // counting one lease later, with nobody cleaning up.
    replica.kill().await;
    let mut second = None;
    for _ in 0..100 {
        if refused_init(&app.ws_url(), &key).await.is_none() {
            second = Some(connect(&app.ws_url(), &key).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _second = second.expect("the dead replica's connection expired with its lease");
    assert!(refused_init(&app.ws_url(), &key).await.is_some(), "two connections are still the limit");
    // BTC and BNB are followed here; ETH was only followed there, so XRP now fits, then
    // nothing more does.
    subscribe(&mut here, "d", QUOTES, json!({ "s": ["CRYPTO:XRPUSDT"] })).await;
    expect_data(&mut here, "d").await;
    subscribe(&mut here, "e", QUOTES, json!({ "s": ["CRYPTO:ETHUSDT"] })).await;
    assert_symbol_quota(&expect_error(&mut here, "e").await);
}
