//! Live data end to end: GraphQL subscriptions fed by the iTick WebSocket protocol (the fake
//! iTick server), in one process, across two in-process replicas sharing one Redis (graceful
//! hand-over), and across two `finql` processes (a replica killed outright).

use serde_json::{Value, json};

use crate::{
    helpers::process::FinqlProcess,
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
    sources::itick::fake_rest::TOKEN,
    sources::itick::fake_ws::FakeItickWs,
};

const QUOTES: &str = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last source } }";

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
    subscribe_quotes(&app.ws_url(), &user.access_token, symbols).await
}

async fn subscribe_quotes(ws_url: &str, access_token: &str, symbols: &[&str]) -> Ws {
    let mut ws = Ws::connect_url(ws_url, TRANSPORT_WS).await;
    ws.init(Some(access_token)).await;
    let payload = json!({ "query": QUOTES, "variables": { "s": symbols } });
    ws.send_json(json!({ "type": "subscribe", "id": "q", "payload": payload })).await;
    ws
}

/// The next quote whose `last` is `last` (earlier ones may still be in flight).
async fn quote_with_last(ws: &mut Ws, last: &str) -> Value {
    loop {
        let quote = next_quote(ws).await;
        if quote["last"] == last {
            return quote;
        }
    }
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
    eventually(&format!("someone subscribes to {code}${region}"), || fake.push_quote(code, region, last) > 0).await;
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
    assert_eq!(quote["source"], "ITICK");
    assert_eq!(fake.connections_opened("stock"), 1);

    // Leaving releases the upstream subscription after the grace period.
    ws.send_json(json!({ "type": "complete", "id": "q" })).await;
    eventually("AAPL is unsubscribed upstream", || fake.subscribed("stock").is_empty()).await;
}

/// A quote of a market the caller's plan has delayed says so (`delayed: true`), and one of a
/// real-time market does not, both when the subscription is a plain projection (rendered once
/// and shared) and when it runs through the schema. A quote already older than the plan's
/// delay leaves its delay line as it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_markets_quotes_say_so_on_both_paths() {
    let fake = FakeItickWs::start().await;
    // `basic`: US real-time, HK 15 minutes late.
    let app = itick_app(&fake, &[("FINQL_DEFAULT_PLAN", "basic")]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect_url(&app.ws_url(), TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    let plain = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol last delayed } }";
    let schema = "subscription($s: [String!]!) { quotes(symbols: $s) { ... on Quote { symbol last delayed } } }";
    for (id, query) in [("plain", plain), ("schema", schema)] {
        let payload = json!({ "query": query, "variables": { "s": ["700.HK", "AAPL.US"] } });
        ws.send_json(json!({ "type": "subscribe", "id": id, "payload": payload })).await;
    }
    let twenty_minutes_ago = chrono::Utc::now().timestamp_millis() - 20 * 60 * 1000;
    let old = json!({ "ld": 388.2, "o": 388.2, "h": 388.2, "l": 388.2, "p": 388.2, "t": twenty_minutes_ago, "v": 1200, "tu": 250000.5, "ts": 0 });
    eventually("someone subscribes to 700$HK", || fake.push("700", "HK", "quote", old.clone()) > 0).await;
    push_when_subscribed(&fake, "AAPL", "US", "231.45").await;
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 4 {
        let message = ws.next_json().await;
        if message["type"] != "next" {
            assert!(matches!(message["type"].as_str(), Some("ping" | "pong")), "{message}");
            continue;
        }
        let quote = &message["payload"]["data"]["quotes"];
        let key = (message["id"].as_str().unwrap().to_owned(), quote["symbol"].as_str().unwrap().to_owned());
        seen.insert(key, (quote["last"].clone(), quote["delayed"].clone()));
    }
    for id in ["plain", "schema"] {
        assert_eq!(seen[&(id.to_owned(), "700.HK".to_owned())], (json!("388.2"), json!(true)), "{id}");
        assert_eq!(seen[&(id.to_owned(), "AAPL.US".to_owned())], (json!("231.45"), json!(false)), "{id}");
    }
}

/// The id of the replica holding the live lease of `namespace`, once one does.
async fn lease_holder(redis: &str, namespace: &str) -> String {
    let mut conn = redis::Client::open(redis).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut holder = None;
    within(PATIENCE, "a replica takes the lease", async || {
        let lease: Option<String> =
            redis::cmd("GET").arg(format!("{namespace}:live:lease")).query_async(&mut conn).await.unwrap();
        // The lease holds the holder's term token, `{replica id}:{random}`.
        holder = lease.as_deref().and_then(|h| h.rsplit_once(':')).map(|(holder, _term)| holder.to_owned());
        holder.is_some()
    })
    .await;
    holder.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_upstream_connection_and_the_survivor_takes_over() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
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
    let quote = quote_with_last(&mut ws, "513.25").await;
    assert_eq!(quote["symbol"], "700.HK");
    assert_eq!(fake.open_connections("stock"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_finql_processes_share_one_upstream_connection_and_the_survivor_takes_over_from_a_killed_holder() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let fake = FakeItickWs::start().await;
    let ws_url = fake.url();
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut vars = vec![
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("FINQL_LIVE_LEASE_MS", "600"),
        ("FINQL_LIVE_GRACE_MS", "100"),
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_TOKEN", TOKEN),
        ("ITICK_BASE_URL", "http://127.0.0.1:9"),
        ("ITICK_WS_URL", ws_url.as_str()),
    ];
    // With PostgreSQL, both share one database, as replicas do, and start at the same moment:
    // their migrations must take turns.
    let database = match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => Some((url, new_postgres_schema().await)),
        None => None,
    };
    if let Some((url, schema)) = &database {
        vars.extend([("DATABASE_URL", url.as_str()), ("FINQL_DATABASE_SCHEMA", schema.as_str())]);
    }
    let with_id = |id: &'static str| vars.iter().copied().chain([("FINQL_REPLICA_ID", id)]).collect::<Vec<_>>();
    let (vars_a, vars_b) = (with_id("process-a"), with_id("process-b"));
    let (a, b) = tokio::join!(FinqlProcess::start(&vars_a), FinqlProcess::start(&vars_b));

    let holder_id = lease_holder(&redis, &namespace).await;
    let (holder, survivor) = if holder_id == "process-a" { (a, b) } else { (b, a) };
    // Signed up through one replica, streaming from the other: the client's replica has no
    // upstream connection of its own.
    let token = holder.access_token().await;
    let mut ws = subscribe_quotes(&survivor.ws_url(), &token, &["700.HK"]).await;
    push_when_subscribed(&fake, "700", "HK", "512.5").await;
    let quote = quote_with_last(&mut ws, "512.5").await;
    assert_eq!(quote["symbol"], "700.HK");
    assert_eq!(fake.open_connections("stock"), 1, "one upstream connection for both processes");
    assert_eq!(fake.connections_opened("stock"), 1);

    // SIGKILL: the holder neither releases its lease nor closes anything; the lease expires.
    holder.kill().await;
    let took_over = poll(PATIENCE, async || fake.connections_opened("stock") >= 2).await;
    assert!(took_over.is_some(), "the survivor did not take over; its log:\n{}", survivor.logs());
    assert_eq!(
        lease_holder(&redis, &namespace).await,
        if holder_id == "process-a" { "process-b" } else { "process-a" }
    );
    push_when_subscribed(&fake, "700", "HK", "513.25").await;
    assert_eq!(quote_with_last(&mut ws, "513.25").await["symbol"], "700.HK");
    assert_eq!(fake.open_connections("stock"), 1, "the killed holder's connection is gone");
}
