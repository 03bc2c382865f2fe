//! Usage metering through the real server: exact counts per actor from HTTP and WebSocket,
//! two instances on one database summing, the last flush at shutdown, and the operator CLI.

mod billing;
mod cli;

use std::collections::BTreeMap;

use chrono::{TimeDelta, Utc};
use finql::usage::{Counts, Granularity};
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Backend, PATIENCE, TestApp, error_code, shared_db::SharedDatabase, spawn_app, within},
    http::ws::{TRANSPORT_WS, Ws},
};

backend_tests!(http_requests_are_counted_exactly_per_actor);

const OK: &str = "{ __typename }";
/// Refused by the symbol parser: a field error, the operation still answered.
const FAILS: &str = "{ quote(symbol: \"not a symbol!\") { last } }";

/// The cost units a response (or each answer of a batch) says it was charged.
fn cost_of(body: &Value) -> u64 {
    match body.as_array() {
        Some(all) => all.iter().map(cost_of).sum(),
        None => body["extensions"]["cost"].as_u64().unwrap_or_else(|| panic!("no extensions.cost: {body}")),
    }
}

/// Posts `body` with `X-API-Key: key` (or `Authorization: Bearer token`); the parsed body and
/// its length in bytes as received.
async fn post(app: &TestApp, credential: &str, body: Value) -> (Value, u64) {
    let request = app.client.post(app.url("/graphql")).json(&body);
    let request = if credential.starts_with("fq_") {
        request.header("X-API-Key", credential)
    } else {
        request.bearer_auth(credential)
    };
    let bytes = request.send().await.unwrap().bytes().await.unwrap();
    (serde_json::from_slice(&bytes).unwrap(), bytes.len() as u64)
}

async fn tenant_id(app: &TestApp, slug: &str) -> uuid::Uuid {
    app.state.tenancy.tenant_by_slug(slug).await.unwrap().unwrap().id
}

fn prefix(key: &str) -> String {
    key.split('_').nth(1).unwrap().to_owned()
}

/// The tenant's flushed usage around now, summed per actor (a test may straddle an hour).
async fn usage_by_actor(app: &TestApp, tenant: uuid::Uuid) -> BTreeMap<String, Counts> {
    let now = Utc::now();
    let periods = app
        .state
        .usage
        .report(tenant, now - TimeDelta::hours(2), now + TimeDelta::hours(1), Granularity::Hour)
        .await
        .unwrap();
    let mut by_actor: BTreeMap<String, Counts> = BTreeMap::new();
    for period in periods {
        by_actor.entry(period.actor).or_default().add(&period.counts);
    }
    by_actor
}

async fn http_requests_are_counted_exactly_per_actor(app: TestApp) {
    let key = app.tenant_key("meter-a", "pro", "market").await;
    let other = app.tenant_key("meter-b", "pro", "market").await;
    let (mut bytes, mut cost) = (0, 0);
    for _ in 0..3 {
        let (body, n) = post(&app, &key, json!({ "query": OK })).await;
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
        (bytes, cost) = (bytes + n, cost + cost_of(&body));
    }
    for _ in 0..2 {
        let (body, n) = post(&app, &key, json!({ "query": FAILS })).await;
        assert!(body["errors"].is_array(), "{body}");
        (bytes, cost) = (bytes + n, cost + cost_of(&body));
    }
    // A batch: each operation is a request; one of the two fails.
    let (body, n) = post(&app, &key, json!([{ "query": OK }, { "query": FAILS }])).await;
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
    (bytes, cost) = (bytes + n, cost + cost_of(&body));
    assert!(cost > 0, "the quotes asked for cost something: {cost}");
    // Another tenant, a user of the default tenant, and an anonymous caller: not this tenant's.
    post(&app, &other, json!({ "query": OK })).await;
    let user = app.new_user().await;
    let (_, user_bytes) = post(&app, &user.access_token, json!({ "query": OK })).await;
    app.gql(None, OK, json!({})).await;

    app.state.usage.flush().await.unwrap();
    let usage = usage_by_actor(&app, tenant_id(&app, "meter-a").await).await;
    let expected =
        Counts { requests: 7, cost, errors: 3, rate_limited: 0, response_bytes: bytes, subscription_seconds: 0 };
    assert_eq!(usage, BTreeMap::from([(format!("key:{}", prefix(&key)), expected)]));
    let usage = usage_by_actor(&app, tenant_id(&app, "meter-b").await).await;
    assert_eq!(usage[&format!("key:{}", prefix(&other))].requests, 1);
    let default = usage_by_actor(&app, tenant_id(&app, "default").await).await;
    let mine = &default[&format!("user:{}", user.uuid)];
    assert_eq!((mine.requests, mine.response_bytes), (1, user_bytes), "{default:?}");
    assert_eq!(default.len(), 1, "anonymous callers are not metered: {default:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted() {
    // One login per address and minute: the second and third are refused.
    let app = spawn_app(Backend::Sqlite, &[("FINQL_LOGIN_PER_ADDR_PER_MIN", "1"), ("FINQL_LOGIN_PER_ADDR_BURST", "1")])
        .await
        .unwrap();
    let key = app.tenant_key("meter-rl", "pro", "market").await;
    let login =
        "mutation { login(email: \"nobody@example.com\", password: \"correct horse battery\") { accessToken } }";
    let mut refused = 0;
    for _ in 0..3 {
        let (body, _) = post(&app, &key, json!({ "query": login })).await;
        if error_code(&body) == "RATE_LIMITED" {
            refused += 1;
        }
    }
    assert_eq!(refused, 2);
    app.state.usage.flush().await.unwrap();
    let usage = usage_by_actor(&app, tenant_id(&app, "meter-rl").await).await;
    let counts = usage[&format!("key:{}", prefix(&key))];
    assert_eq!((counts.requests, counts.errors, counts.rate_limited), (3, 3, 2), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_and_subscription_seconds_are_counted() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    // A user (of the default tenant): live data needs a person until keys reach it.
    let user = app.new_user().await;
    let tenant = tenant_id(&app, "default").await;
    let actor = format!("user:{}", user.uuid);
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    ws.subscribe("query", OK).await;
    let next = ws.next_json().await;
    assert_eq!(next["type"], "next", "{next}");
    let query_bytes = next.to_string().len() as u64;
    assert_eq!(ws.next_json().await["type"], "complete");
    let quotes = json!({ "query": "subscription { quotes(symbols: [\"CRYPTO:BTCUSDT\"]) { symbol } }" });
    ws.send_json(json!({ "type": "subscribe", "id": "live", "payload": quotes })).await;
    let first = ws.next_json().await;
    assert_eq!(first["payload"]["data"]["quotes"]["symbol"], "CRYPTO:BTCUSDT", "{first}");
    assert_eq!(app.state.usage.open_subscriptions(), 1);
    // While it runs, each flush credits the seconds elapsed so far.
    within(PATIENCE, "an open subscription's seconds are credited", async || {
        app.state.usage.flush().await.unwrap();
        usage_by_actor(&app, tenant).await.get(&actor).is_some_and(|c| c.subscription_seconds >= 1)
    })
    .await;
    let started = std::time::Instant::now();
    ws.send_json(json!({ "type": "complete", "id": "live" })).await;
    within(PATIENCE, "the subscription's meter is dropped", async || app.state.usage.open_subscriptions() == 0).await;
    app.state.usage.flush().await.unwrap();
    let counts = usage_by_actor(&app, tenant).await[&actor];
    // The query and the subscription (the sign-up before them was anonymous: not metered).
    assert_eq!((counts.requests, counts.errors), (2, 0), "the query and the subscription: {counts:?}");
    assert!(counts.response_bytes > query_bytes, "the subscription's messages count too: {counts:?}");
    // Credited whole seconds: at least the one seen, at most the time the test ran (+1 for
    // second boundaries).
    let ran = started.elapsed().as_secs() + PATIENCE.as_secs() + 1;
    assert!((1..=ran).contains(&counts.subscription_seconds), "{counts:?}");
}

mod two_instances_on_one_database_sum {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let Some(db) = SharedDatabase::new(backend).await else { return };
        // No periodic flush during the test: the writes below are the ones that count.
        let (a, b) = (
            db.spawn(backend, &[("FINQL_USAGE_FLUSH_SECS", "3600")]).await,
            db.spawn(backend, &[("FINQL_USAGE_FLUSH_SECS", "3600")]).await,
        );
        let key = a.tenant_key("meter-sum", "pro", "market").await;
        let tenant = tenant_id(&a, "meter-sum").await;
        for round in 0..3 {
            for _ in 0..2 {
                post(&a, &key, json!({ "query": OK })).await;
            }
            post(&b, &key, json!({ "query": FAILS })).await;
            // Both write the same (tenant, hour, actor) row at once: each adds its share.
            let (from_a, from_b) = tokio::join!(a.state.usage.flush(), b.state.usage.flush());
            assert_eq!((from_a.unwrap(), from_b.unwrap()), (1, 1), "round {round}");
        }
        let actor = format!("key:{}", prefix(&key));
        for app in [&a, &b] {
            let counts = usage_by_actor(app, tenant).await[&actor];
            assert_eq!((counts.requests, counts.errors), (9, 3), "{counts:?}");
        }
    }
}
