//! Live data end to end: GraphQL subscriptions fed by the iTick WebSocket protocol (the fake
//! iTick server), in one process and across two replicas sharing one Redis.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    fake_itick::TOKEN,
    fake_itick_ws::FakeItickWs,
    helpers::*,
    ws::{TRANSPORT_WS, Ws},
};

const QUOTES: &str = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last source } }";

/// Waits (polling, up to 10 s) until `done` holds; panics with `what` otherwise.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn itick_app(fake: &FakeItickWs, extra: &[(&str, &str)]) -> TestApp {
    let ws_url = fake.url();
    let mut vars = vec![
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_TOKEN", TOKEN),
        // REST is not used by subscriptions; point it somewhere closed.
        ("ITICK_BASE_URL", "http://127.0.0.1:9"),
        ("ITICK_WS_URL", ws_url.as_str()),
        ("FINQL_LIVE_GRACE_MS", "100"),
    ];
    vars.extend_from_slice(extra);
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

async fn subscribed_client(app: &TestApp, symbols: &[&str]) -> Ws {
    let user = app.new_user().await;
    let mut ws = Ws::connect(app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    let payload = json!({ "query": QUOTES, "variables": { "s": symbols } });
    ws.send_json(json!({ "type": "subscribe", "id": "q", "payload": payload })).await;
    ws
}

/// The next `next` payload's quote.
async fn next_quote(ws: &mut Ws) -> Value {
    loop {
        let message = ws.next_json().await;
        match message["type"].as_str() {
            Some("ping" | "pong") => continue,
            Some("next") => return message["payload"]["data"]["quotes"].clone(),
            _ => panic!("expected a quote, got {message}"),
        }
    }
}

/// Pushes a quote until some connection is subscribed to it (subscription is asynchronous).
async fn push_when_subscribed(fake: &FakeItickWs, code: &str, region: &str, last: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.push_quote(code, region, last) == 0 {
        assert!(Instant::now() < deadline, "nobody subscribed to {code}${region}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itick_pushes_reach_graphql_subscribers() {
    let fake = FakeItickWs::start().await;
    let app = itick_app(&fake, &[]).await;
    let mut ws = subscribed_client(&app, &["AAPL.US"]).await;
    push_when_subscribed(&fake, "AAPL", "US", "231.45").await;
    let quote = next_quote(&mut ws).await;
    assert_eq!(quote["symbol"], "AAPL.US");
    assert_eq!(quote["last"], "231.45");
    assert_eq!(quote["source"], "itick");
    assert_eq!(fake.connections_opened("stock"), 1);

    // Leaving releases the upstream subscription after the grace period.
    ws.send_json(json!({ "type": "complete", "id": "q" })).await;
    eventually("AAPL is unsubscribed upstream", || fake.subscribed("stock").is_empty()).await;
}

/// The replica id holding the live lease of `namespace`, once one does.
async fn lease_holder(redis: &str, namespace: &str) -> String {
    let mut conn = redis::Client::open(redis).unwrap().get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holder: Option<String> =
            redis::cmd("GET").arg(format!("{namespace}:live:lease")).query_async(&mut conn).await.unwrap();
        if let Some(holder) = holder {
            return holder;
        }
        assert!(Instant::now() < deadline, "no replica took the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_upstream_connection_and_the_survivor_takes_over() {
    let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        return eprintln!("skipped: TEST_REDIS_URL is not set");
    };
    let fake = FakeItickWs::start().await;
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut replicas = Vec::new();
    for id in ["replica-a", "replica-b"] {
        let vars = [
            ("REDIS_URL", redis.as_str()),
            ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
            ("FINQL_LIVE_LEASE_MS", "600"),
            ("FINQL_REPLICA_ID", id),
        ];
        replicas.push((id, itick_app(&fake, &vars).await));
    }

    // The client connects to the replica that does NOT hold the upstream connection.
    let holder = lease_holder(&redis, &namespace).await;
    let holder_at = replicas.iter().position(|(id, _)| *id == holder).expect("a known replica holds the lease");
    let (_, holder_app) = replicas.remove(holder_at);
    let (_, survivor) = replicas.remove(0);
    let mut ws = subscribed_client(&survivor, &["700.HK"]).await;
    push_when_subscribed(&fake, "700", "HK", "512.5").await;
    let quote = next_quote(&mut ws).await;
    assert_eq!((quote["symbol"].as_str(), quote["last"].as_str()), (Some("700.HK"), Some("512.5")));
    assert_eq!(fake.open_connections("stock"), 1, "one upstream connection for both replicas");
    assert_eq!(fake.connections_opened("stock"), 1);

    // The holder stops: the survivor takes the lease and opens the one upstream connection.
    drop(holder_app);
    eventually("the survivor streams upstream", || fake.connections_opened("stock") == 2).await;
    assert_ne!(lease_holder(&redis, &namespace).await, holder);
    push_when_subscribed(&fake, "700", "HK", "513.25").await;
    let quote = loop {
        let quote = next_quote(&mut ws).await;
        if quote["last"] == "513.25" {
            break quote;
        }
    };
    assert_eq!(quote["symbol"], "700.HK");
    assert_eq!(fake.open_connections("stock"), 1);
}
