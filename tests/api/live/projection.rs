//! Quote subscriptions that only project fields are rendered once per event and selection
//! (`live::graphql::projection`) instead of executing the schema per subscriber: what they
//! send must be exactly what the schema sends, and whatever is not a plain projection must
//! still get the schema's answer.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{live_app, next_message, subscribe, user_connection};

const FIELDS: &str = "id __typename symbol price: last open high low prevClose change changePercent volume \
    turnover timestamp tradingStatus source stale delayed";

/// The response keys of `FIELDS`, in order.
const KEYS: [&str; 17] = [
    "id",
    "__typename",
    "symbol",
    "price",
    "open",
    "high",
    "low",
    "prevClose",
    "change",
    "changePercent",
    "volume",
    "turnover",
    "timestamp",
    "tradingStatus",
    "source",
    "stale",
    "delayed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projected_quote_reads_exactly_as_the_schema_writes_it() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let symbols = json!({ "s": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT", "IDX:SPX"] });
    // The same selection, rendered (plain) and executed (an inline fragment is not plain).
    let plain = format!("subscription($s: [String!]!) {{ live: quotes(symbols: $s) {{ {FIELDS} }} }}");
    let executed =
        format!("subscription($s: [String!]!) {{ live: quotes(symbols: $s) {{ ... on Quote {{ {FIELDS} }} }} }}");
    subscribe(&mut ws, "plain", &plain, symbols.clone()).await;
    subscribe(&mut ws, "executed", &executed, symbols).await;
    // (id, symbol, timestamp) -> the message's text and payload.
    let mut seen: HashMap<(String, String, String), (String, Value)> = HashMap::new();
    let mut first: HashMap<String, Value> = HashMap::new();
    let mut compared = 0;
    while compared < 6 {
        let message = next_message(&mut ws).await;
        assert_eq!(message["type"], "next", "{message}");
        let id = message["id"].as_str().unwrap().to_owned();
        first.entry(id.clone()).or_insert_with(|| message["payload"]["extensions"].clone());
        let quote = &message["payload"]["data"]["live"];
        let (symbol, at) =
            (quote["symbol"].as_str().unwrap().to_owned(), quote["timestamp"].as_str().unwrap().to_owned());
        let other = if id == "plain" { "executed" } else { "plain" };
        let text = message.to_string();
        if let Some((other_text, other_payload)) = seen.get(&(other.to_owned(), symbol.clone(), at.clone())) {
            let mut payload = message["payload"].clone();
            let mut other_payload = other_payload.clone();
            // The trace id goes on each operation's first message only, and differs.
            for p in [&mut payload, &mut other_payload] {
                p.as_object_mut().unwrap().remove("extensions");
            }
            assert_eq!(payload, other_payload, "{text}\n{other_text}");
            compared += 1;
        }
        seen.insert((id, symbol, at), (text, message["payload"].clone()));
    }
    for id in ["plain", "executed"] {
        assert!(first[id]["traceId"].as_str().is_some_and(|t| t.len() == 32), "{id}: {}", first[id]);
    }
    // Every field, in the order selected (the raw text: JSON objects compare without order).
    let raw = ws_text_of_next(&mut ws, "plain").await;
    let positions: Vec<usize> = KEYS.iter().map(|key| raw.find(&format!("\"{key}\":")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "fields out of order: {raw}");
    let quote: Value = serde_json::from_str::<Value>(&raw).unwrap()["payload"]["data"]["live"].clone();
    assert_eq!((quote["__typename"].as_str(), quote["source"].as_str()), (Some("Quote"), Some("SIMULATED")));
    assert_eq!((quote["stale"].as_bool(), quote["delayed"].as_bool()), (Some(false), Some(false)));
}

/// The raw text of the next message for `id` (`Value`'s map sorts keys: the order is in the
/// text only).
async fn ws_text_of_next(ws: &mut crate::http::ws::Ws, id: &str) -> String {
    loop {
        let Some(Message::Text(text)) = ws.next_frame().await else { panic!("expected a text message") };
        let message: Value = serde_json::from_str(text.as_str()).unwrap();
        if message["id"] == id {
            return text.as_str().to_owned();
        }
    }
}

/// The next message for `id`, parsed.
async fn message_for(ws: &mut crate::http::ws::Ws, id: &str) -> Value {
    serde_json::from_str(&ws_text_of_next(ws, id).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_plain_projection_gets_the_schemas_answer() {
    let app = live_app(&[]).await;
    let mut ws = user_connection(&app).await;
    let btc = json!({ "s": ["CRYPTO:BTCUSDT"] });
    // Valid, but not plain: they stream as before.
    for (id, query) in [
        ("directive", "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last @include(if: true) } }"),
        (
            "fragment",
            "subscription($s: [String!]!) { quotes(symbols: $s) { ...F } } fragment F on Quote { symbol last }",
        ),
        ("root directive", "subscription($s: [String!]!) { quotes(symbols: $s) @skip(if: false) { symbol last } }"),
        // async-graphql accepts a nullable list variable where a non-null one is expected.
        ("nullable", "subscription($s: [String]) { quotes(symbols: $s) { symbol last } }"),
    ] {
        subscribe(&mut ws, id, query, btc.clone()).await;
        let message = message_for(&mut ws, id).await;
        assert_eq!(message["type"], "next", "{id}: {message}");
        assert_eq!(message["payload"]["data"]["quotes"]["symbol"], "CRYPTO:BTCUSDT", "{id}: {message}");
        ws.send_json(json!({ "type": "complete", "id": id })).await;
    }
    // Invalid: the schema's validation refuses them, and nothing is subscribed for them.
    for (id, query) in [
        ("unused", "subscription($s: [String!]!, $x: Int) { quotes(symbols: $s) { last } }"),
        ("conflict", "subscription($s: [String!]!) { quotes(symbols: $s) { a: last a: open } }"),
    ] {
        subscribe(&mut ws, id, query, btc.clone()).await;
        let message = message_for(&mut ws, id).await;
        assert_eq!(message["type"], "error", "{id}: {message}");
        assert!(message["payload"][0]["message"].is_string(), "{id}: {message}");
    }
    // A refused plain projection is refused in the schema's words: an out-of-range throttle.
    subscribe(
        &mut ws,
        "throttle",
        "subscription($s: [String!]!) { quotes(symbols: $s, throttleMs: 60001) { last } }",
        btc,
    )
    .await;
    let message = message_for(&mut ws, "throttle").await;
    let error = &message["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{message}");
    assert_eq!(error["path"], json!(["quotes"]), "{message}");
}
