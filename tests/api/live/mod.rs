//! Live market data (`finql::live`) over WebSocket: `quotes`, `klines`, `orderBook` and `ticks`
//! subscriptions on the simulated stream, their validation and limits, throttling, conflation, slow
//! consumers, and topics released upstream when subscriptions end. The transport does not depend on
//! the database, so these run on SQLite only. `e2e` feeds them from the fake iTick stream, across
//! replicas and processes; `replicas` drives `live::replicas::RedisFeed` directly. These run on
//! the wall clock and need markets that move now, so they use crypto pairs (the simulated market
//! keeps exchange hours: stocks and FX are quiet outside their sessions).

mod e2e;
mod freshness;
mod projection;
pub(crate) mod replicas;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::*,
    http::ws::{LEGACY_WS, TRANSPORT_WS, Ws},
};

/// A server with a short grace period and a fast simulated stream, plus `overrides`.
async fn live_app(overrides: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("FINQL_LIVE_GRACE_MS", "100"), ("FINQL_SIM_TICKS_PER_SEC", "10")];
    vars.extend_from_slice(overrides);
    spawn_app(Backend::Sqlite, &vars).await.expect("SQLite is always available")
}

/// A `graphql-transport-ws` connection of a signed-up user.
async fn user_connection(app: &TestApp) -> Ws {
    let user = app.new_user().await;
    let mut ws = Ws::connect(app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    ws
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

/// The data of the next message, which must be a `next` (or legacy `data`) for `id`.
async fn next_data(ws: &mut Ws, id: &str) -> Value {
    let message = next_message(ws).await;
    assert!(matches!(message["type"].as_str(), Some("next" | "data")), "expected data, got {message}");
    assert_eq!(message["id"], id, "{message}");
    assert!(message["payload"].get("errors").is_none(), "unexpected errors: {message}");
    message["payload"]["data"].clone()
}

/// The first error of the next message (an `error`, or a `next` carrying errors), for `id`.
async fn next_error(ws: &mut Ws, id: &str) -> Value {
    let message = next_message(ws).await;
    assert_eq!(message["id"], id, "{message}");
    match message["type"].as_str() {
        Some("error") => message["payload"][0].clone(),
        Some("next" | "data") => {
            // A field error is a result: the operation then completes.
            let complete = next_message(ws).await;
            assert_eq!(complete["id"], id, "{complete}");
            assert!(matches!(complete["type"].as_str(), Some("complete")), "{complete}");
            message["payload"]["errors"][0].clone()
        }
        _ => panic!("expected an error, got {message}"),
    }
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a time: {value}"))
}

fn decimal(value: &Value) -> f64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal string: {value}"))
}

const QUOTES: &str = "subscription($symbols: [String!]!, $throttleMs: Int) { \
    quotes(symbols: $symbols, throttleMs: $throttleMs) { symbol last high low timestamp source } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_of_several_symbols_arrive_and_keep_coming() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let symbols = ["CRYPTO:BTCUSDT", "CRYPTO:BNBUSDT", "CRYPTO:XRPUSDT"];
    subscribe(&mut ws, "q", QUOTES, json!({ "symbols": symbols })).await;
    let mut seen: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    // Every symbol at least twice: its current quote, then a change.
    while seen.len() < symbols.len() || seen.values().any(|times| times.len() < 2) {
        let quote = next_data(&mut ws, "q").await["quotes"].clone();
        let symbol = quote["symbol"].as_str().unwrap().to_owned();
        assert!(symbols.contains(&symbol.as_str()), "{quote}");
        assert_eq!(quote["source"], "SIMULATED");
        assert!(
            decimal(&quote["low"]) <= decimal(&quote["last"]) && decimal(&quote["last"]) <= decimal(&quote["high"])
        );
        let times = seen.entry(symbol).or_default();
        let at = time(&quote["timestamp"]);
        assert!(times.last().is_none_or(|before| *before < at), "each push is newer than the last: {quote}");
        times.push(at);
    }
    let lag = app.state.live.lag();
    assert_eq!(lag.stream, "simulated");
    assert!(lag.events >= 6, "the hub measured the events' lag: {lag:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_quotes_come_at_most_once_per_interval_and_end_on_the_newest() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let symbols = ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"];
    subscribe(&mut ws, "all", QUOTES, json!({ "symbols": symbols })).await;
    subscribe(&mut ws, "throttled", QUOTES, json!({ "symbols": symbols, "throttleMs": 2500 })).await;
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut newest: HashMap<String, DateTime<Utc>> = HashMap::new();
    // The simulated market changes once a second: in 3.3 s, every symbol changes at least three
    // times, and a 2.5 s throttle lets at most two values through (now, and 2.5 s later).
    let window = Instant::now() + Duration::from_millis(3300);
    while Instant::now() < window {
        let Ok(message) = tokio::time::timeout_at(window.into(), next_message(&mut ws)).await else { break };
        let id = message["id"].as_str().unwrap().to_owned();
        let quote = &message["payload"]["data"]["quotes"];
        let symbol = quote["symbol"].as_str().unwrap().to_owned();
        if id == "all" {
            newest.insert(symbol.clone(), time(&quote["timestamp"]));
        }
        *counts.entry((id, symbol)).or_default() += 1;
    }
    for symbol in symbols {
        let all = counts.get(&("all".into(), symbol.into())).copied().unwrap_or(0);
        let throttled = counts.get(&("throttled".into(), symbol.into())).copied().unwrap_or(0);
        assert!(all >= 3, "{symbol}: {counts:?}");
        assert!((1..=2).contains(&throttled), "{symbol}: at most one per 2.5 s: {counts:?}");
    }
    // Trailing edge: the newest value the unthrottled subscription saw also reaches the
    // throttled one, within the interval.
    ws.send_json(json!({ "type": "complete", "id": "all" })).await;
    let mut caught_up: HashMap<String, bool> = HashMap::new();
    while caught_up.len() < symbols.len() {
        let message = next_message(&mut ws).await;
        if message["id"] != "throttled" {
            continue;
        }
        let quote = &message["payload"]["data"]["quotes"];
        let symbol = quote["symbol"].as_str().unwrap();
        if time(&quote["timestamp"]) >= newest[symbol] {
            caught_up.insert(symbol.to_owned(), true);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_releases_the_topic_upstream() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    subscribe(&mut ws, "1", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT"] })).await;
    next_data(&mut ws, "1").await;
    subscribe(&mut ws, "2", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"] })).await;
    // Subscription 1 keeps streaming meanwhile: its updates may come first.
    loop {
        let message = next_message(&mut ws).await;
        assert_eq!(message["type"], "next", "{message}");
        if message["id"] == "2" {
            break;
        }
        assert_eq!(message["id"], "1", "{message}");
    }
    let stats = app.state.live.stats();
    assert_eq!((stats.topics, stats.subscribers, stats.releases), (2, 3, 0));

    ws.send_json(json!({ "type": "complete", "id": "2" })).await;
    eventually("CRYPTO:ETHUSDT is released", || app.state.live.stats().releases == 1).await;
    let stats = app.state.live.stats();
    assert_eq!((stats.topics, stats.subscribers), (1, 1), "CRYPTO:BTCUSDT is still wanted by subscription 1");
    // Subscription 1 still streams.
    loop {
        let message = next_message(&mut ws).await;
        if message["id"] == "1" {
            break;
        }
    }

    drop(ws);
    eventually("the disconnect releases CRYPTO:BTCUSDT", || app.state.live.stats().topics == 0).await;
    assert_eq!(app.state.live.stats().releases, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_need_an_authenticated_connection() {
    let app = live_app(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    subscribe(&mut ws, "1", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT"] })).await;
    let error = next_error(&mut ws, "1").await;
    assert_eq!(error["extensions"]["code"], "UNAUTHENTICATED", "{error}");
    assert_eq!(app.state.live.stats().topics, 0, "nothing was subscribed upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unknown_symbols_are_refused_by_name() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    subscribe(&mut ws, "bad", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT", "not a symbol!"] })).await;
    let error = next_error(&mut ws, "bad").await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(error["message"].as_str().unwrap().contains("not a symbol!"), "{error}");

    subscribe(&mut ws, "unknown", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT", "NOPE.US"] })).await;
    let error = next_error(&mut ws, "unknown").await;
    assert_eq!(error["extensions"]["code"], "NOT_FOUND", "{error}");
    assert!(error["message"].as_str().unwrap().contains("NOPE.US"), "{error}");

    let order_book = "subscription { orderBook(symbol: \"NOPE.US\") { symbol } }";
    subscribe(&mut ws, "book", order_book, json!({})).await;
    assert_eq!(next_error(&mut ws, "book").await["extensions"]["code"], "NOT_FOUND");
    // An index has no order book: refused before anything is wanted upstream.
    subscribe(&mut ws, "index", "subscription { orderBook(symbol: \"IDX:SPX\") { symbol } }", json!({})).await;
    let error = next_error(&mut ws, "index").await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    assert!(error["message"].as_str().unwrap().contains("indices have no order book"), "{error}");
    assert_eq!(app.state.live.stats().topics, 0, "a refused subscription wants nothing upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_quotes_and_bars_of_an_index_carry_no_volume() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let quotes = "subscription($symbols: [String!]!) { quotes(symbols: $symbols) { symbol volume turnover } }";
    subscribe(&mut ws, "q", quotes, json!({ "symbols": ["IDX:SPX", "AAPL.US"] })).await;
    let bars = "subscription { klines(symbol: \"IDX:HSI\", interval: ONE_MINUTE) { time volume turnover } }";
    subscribe(&mut ws, "k", bars, json!({})).await;
    let (mut index_quote, mut stock_quote, mut bar) = (None, None, None);
    while index_quote.is_none() || stock_quote.is_none() || bar.is_none() {
        let message = next_message(&mut ws).await;
        let data = &message["payload"]["data"];
        match (message["id"].as_str(), data["quotes"]["symbol"].as_str()) {
            (Some("q"), Some("IDX:SPX")) => index_quote = Some(data["quotes"].clone()),
            (Some("q"), Some("AAPL.US")) => stock_quote = Some(data["quotes"].clone()),
            (Some("k"), _) => bar = Some(data["klines"].clone()),
            _ => panic!("unexpected {message}"),
        }
    }
    let (index_quote, stock_quote, bar) = (index_quote.unwrap(), stock_quote.unwrap(), bar.unwrap());
    assert!(index_quote["volume"].is_null() && index_quote["turnover"].is_null(), "{index_quote}");
    assert!(stock_quote["volume"].is_string(), "{stock_quote}");
    assert!(bar["volume"].is_null() && bar["turnover"].is_null(), "{bar}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_symbols_and_subscriptions_name_themselves() {
    let app = live_app(&[("FINQL_LIVE_MAX_SYMBOLS", "2"), ("FINQL_WS_MAX_SUBSCRIPTIONS", "1")]).await;
    let mut ws = user_connection(&app).await;
    subscribe(&mut ws, "many", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT", "CRYPTO:SOLUSDT"] }))
        .await;
    let error = next_error(&mut ws, "many").await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("at most 2 symbols") && message.contains("FINQL_LIVE_MAX_SYMBOLS"), "{error}");

    subscribe(&mut ws, "one", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"] })).await;
    next_data(&mut ws, "one").await;
    subscribe(&mut ws, "two", QUOTES, json!({ "symbols": ["CRYPTO:BTCUSDT"] })).await;
    loop {
        let message = next_message(&mut ws).await;
        if message["id"] == "two" {
            assert_eq!(message["type"], "error", "{message}");
            assert_eq!(message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
            assert!(message["payload"][0]["message"].as_str().unwrap().contains("limit 1"), "{message}");
            break;
        }
    }

    let throttle = json!({ "symbols": ["CRYPTO:BTCUSDT"], "throttleMs": -1 });
    ws.send_json(json!({ "type": "complete", "id": "one" })).await;
    subscribe(&mut ws, "neg", QUOTES, throttle).await;
    loop {
        let message = next_message(&mut ws).await;
        if message["id"] == "neg" {
            let error = &message["payload"]["errors"][0];
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{message}");
            assert!(error["message"].as_str().unwrap().contains("throttleMs"), "{message}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klines_order_books_and_ticks_stream() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let klines =
        "subscription { klines(symbol: \"CRYPTO:BTCUSDT\", interval: ONE_MINUTE) { time open high low close volume } }";
    subscribe(&mut ws, "k", klines, json!({})).await;
    let book = "subscription { orderBook(symbol: \"CRYPTO:BTCUSDT\", levels: 3) { symbol bids { price volume } asks { price } } }";
    subscribe(&mut ws, "b", book, json!({})).await;
    let ticks = "subscription { ticks(symbols: [\"CRYPTO:BTCUSDT\", \"CRYPTO:XRPUSDT\"]) { symbol price volume timestamp direction } }";
    subscribe(&mut ws, "t", ticks, json!({})).await;

    let mut bars = 0;
    let mut books = 0;
    let mut trades: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    while bars < 2 || books < 2 || trades.len() < 2 || trades.values().any(|t| t.len() < 3) {
        let message = next_message(&mut ws).await;
        assert!(message["payload"].get("errors").is_none(), "{message}");
        let data = &message["payload"]["data"];
        match message["id"].as_str() {
            Some("k") => {
                let bar = &data["klines"];
                let start = time(&bar["time"]);
                assert_eq!(start.timestamp() % 60, 0, "a one-minute bar starts on the minute: {bar}");
                assert!(Utc::now() - start < chrono::Duration::seconds(61), "the bar in progress: {bar}");
                assert!(
                    decimal(&bar["low"]) <= decimal(&bar["close"]) && decimal(&bar["close"]) <= decimal(&bar["high"])
                );
                bars += 1;
            }
            Some("b") => {
                let book = &data["orderBook"];
                assert_eq!(book["symbol"], "CRYPTO:BTCUSDT");
                let (bids, asks) = (book["bids"].as_array().unwrap(), book["asks"].as_array().unwrap());
                assert_eq!((bids.len(), asks.len()), (3, 3), "levels: 3 is honoured: {book}");
                assert!(decimal(&bids[0]["price"]) < decimal(&asks[0]["price"]), "{book}");
                books += 1;
            }
            Some("t") => {
                let tick = &data["ticks"];
                let at = time(&tick["timestamp"]);
                let seen = trades.entry(tick["symbol"].as_str().unwrap().to_owned()).or_default();
                assert!(seen.last().is_none_or(|before| *before < at), "trades in order, none twice: {tick}");
                seen.push(at);
            }
            _ => panic!("unexpected {message}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_graphql_ws_streams_and_stop_releases() {
    let app = live_app(&[]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect(&app, LEGACY_WS).await;
    let payload = json!({ "Authorization": format!("Bearer {}", user.access_token) });
    ws.send_json(json!({ "type": "connection_init", "payload": payload })).await;
    assert_eq!(ws.next_json().await, json!({ "type": "connection_ack" }));
    ws.send_json(
        json!({ "type": "start", "id": "a", "payload": { "query": QUOTES, "variables": { "symbols": ["CRYPTO:BTCUSDT"] } } }),
    )
    .await;
    for _ in 0..2 {
        let quote = next_data(&mut ws, "a").await;
        assert_eq!(quote["quotes"]["symbol"], "CRYPTO:BTCUSDT");
    }
    assert_eq!(app.state.live.stats().topics, 1);
    ws.send_json(json!({ "type": "stop", "id": "a" })).await;
    eventually("stop releases CRYPTO:BTCUSDT", || app.state.live.stats().releases == 1).await;
    assert_eq!(app.state.live.stats().topics, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_1008_slow_consumer() {
    // Long enough for the eight subscriptions below to start on a loaded machine (each is
    // admitted, costed and audited first), short against the test.
    let app = live_app(&[("FINQL_WS_SLOW_CLIENT_MS", "2000")]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect_small_buffer(&app).await;
    ws.init(Some(&user.access_token)).await;
    let symbols: Vec<Value> =
        app.data(None, "{ securities(first: 100) { nodes { symbol } } }", json!({})).await["securities"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["symbol"].clone())
            .collect();
    let ticks =
        "subscription($symbols: [String!]!) { ticks(symbols: $symbols) { symbol price volume timestamp direction } }";
    // Several subscriptions of the same trades: more to send, the same upstream cost.
    for id in 0..8 {
        subscribe(&mut ws, &id.to_string(), ticks, json!({ "symbols": symbols })).await;
    }
    eventually("the subscriptions run", || app.state.live.stats().subscribers == 8 * symbols.len()).await;
    // Read nothing until the server gave up on us and released the topics.
    eventually("the slow connection is dropped", || app.state.live.stats().subscribers == 0).await;
    let mut backlog = 0;
    // Then the backlog, and the reason, ahead of anything the server could not send.
    loop {
        match ws.next_frame().await {
            Some(Message::Text(_)) => backlog += 1,
            Some(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert!(frame.reason.contains("slow consumer"), "{}", frame.reason);
                assert!(backlog > 0, "the server had queued messages it could not send");
                break;
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
