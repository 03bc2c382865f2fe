//! Plan limits over the real server: request rates and cost budgets per tenant, per key and per
//! anonymous address; `extensions.cost`; 429 with `Retry-After`; the IETF `RateLimit-Policy`
//! and `RateLimit` fields on every response; WebSocket operations counted; two finql processes
//! on one Redis sharing one budget; a Redis outage in both modes.
//!
//! Counts over simulated time are exact in `tenancy::limits`'s unit tests (a hand-moved clock);
//! here the server's clock runs, so rates are slow (1 a second) against requests that take
//! milliseconds, and every bound allows for the time the test really took.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, TestApp, error_code, new_postgres_schema, plans_file, process::FinqlProcess, spawn_app,
        test_redis_url, within,
    },
    http::ws::Ws,
    live::replicas::fakes::RedisProxy,
};

/// `metered`: 1 request a second, 3 at once, 100 cost units a minute. `anon`: the anonymous
/// plan of some tests, 1 a second, 2 at once. `developer`: what the test processes' anonymous
/// plan names.
const PLANS: &str = r#"
[plans.metered]
rate_per_second = 1
burst = 3
cost_per_minute = 100
max_connections = 5
max_live_symbols = 50
history_days = 30
fundamentals = true
delay_minutes = 15
[plans.metered.markets]
"*" = "realtime"

[plans.shared]
rate_per_second = 1
burst = 10
cost_per_minute = 100000
max_connections = 5
max_live_symbols = 50
history_days = 30
fundamentals = true
delay_minutes = 15
[plans.shared.markets]
"*" = "realtime"

[plans.anon]
rate_per_second = 1
burst = 2
cost_per_minute = 1000
max_connections = 5
max_live_symbols = 50
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.anon.markets]
"*" = "realtime"

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
"#;

const TEN_QUOTES: &str = r#"{ quotes(symbols: ["AAPL.US", "MSFT.US", "NVDA.US", "AMZN.US", "GOOGL.US", "META.US", "TSLA.US", "700.HK", "9988.HK", "600519.SH"]) { symbol last } }"#;
const ONE_QUOTE: &str = r#"{ quotes(symbols: ["AAPL.US"]) { symbol last } }"#;

/// A server on `backend` with the test plans (and `extra` settings).
async fn app(backend: Backend, extra: &[(&str, &str)]) -> Option<(TestApp, tempfile::TempDir)> {
    let (dir, path) = plans_file(PLANS);
    let mut vars = vec![("FINQL_PLANS_FILE", path.as_str())];
    vars.extend_from_slice(extra);
    Some((spawn_app(backend, &vars).await?, dir))
}

/// Runs a test on SQLite and on PostgreSQL (skipped without `TEST_DATABASE_URL`).
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("TEST_DATABASE_URL").map_or(true, |u| u.is_empty()) {
                    eprintln!("skipped: TEST_DATABASE_URL is not set");
                    return;
                }
                super::$name(crate::helpers::Backend::Postgres).await;
            }
        }
    )+};
}

both_backends!(
    a_tenant_gets_its_burst_then_429_with_retry_after_and_headers,
    cost_is_estimated_returned_and_budgeted,
    a_key_with_a_lower_rate_is_held_to_it,
);

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap_or_else(|| panic!("no {name} header in {headers:?}")).to_str().unwrap()
}

/// `r` of `policy` in a `RateLimit` field value.
fn remaining(field: &str, policy: &str) -> u64 {
    let item = field.split(", ").find(|item| item.starts_with(&format!("\"{policy}\";"))).expect("the policy");
    item.split(';').find_map(|p| p.strip_prefix("r=")).unwrap().parse().unwrap()
}

async fn a_tenant_gets_its_burst_then_429_with_retry_after_and_headers(backend: Backend) {
    let (app, _plans) = app(backend, &[]).await.unwrap();
    let key = app.tenant_key("desk-rate", "metered", "market").await;
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(app.gql_key(&key, ONE_QUOTE, json!({})).await);
    }
    let elapsed = started.elapsed();
    let accepted = outcomes.iter().filter(|(status, _, _)| *status == 200).count();
    // The burst of 3, plus one a second for the time the test took.
    assert!(accepted >= 3 && accepted as u64 <= 3 + elapsed.as_secs(), "{accepted} in {elapsed:?}");
    for (status, headers, body) in &outcomes {
        assert_eq!(
            header(headers, "ratelimit-policy"),
            "\"requests\";q=3;w=3, \"cost\";q=100;w=60;qu=\"cost-units\"",
            "on every response"
        );
        let current = header(headers, "ratelimit");
        if *status == 200 {
            assert!(body["data"]["quotes"][0]["last"].is_string(), "{body}");
            continue;
        }
        assert_eq!(*status, 429, "{body}");
        assert_eq!(remaining(current, "requests"), 0);
        assert_eq!(header(headers, "retry-after"), "1", "whole seconds, rounded up");
        assert_eq!(error_code(body), "RATE_LIMITED", "{body}");
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(ext["policy"], "requests", "{body}");
        let wait = ext["retryAfterMs"].as_u64().unwrap();
        assert!((1..=1000).contains(&wait), "{body}");
        assert!(body.get("data").is_none(), "nothing ran: {body}");
    }
    assert_eq!(remaining(header(&outcomes[0].1, "ratelimit"), "requests"), 2, "3 at once, 1 taken");
    // Waiting out `Retry-After` is enough.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.gql_key(&key, ONE_QUOTE, json!({})).await.0, 200);
    // A request the edge refuses (bad JSON) is counted and carries the fields too.
    let bad = app.client.post(app.url("/graphql")).header("X-API-Key", &key).header("content-type", "application/json");
    let bad = bad.body("{not json").send().await.unwrap();
    assert!([400, 429].contains(&bad.status().as_u16()));
    assert!(bad.headers().contains_key("ratelimit-policy") && bad.headers().contains_key("ratelimit"));
    // Another tenant on the same plan has its own allowance.
    let other = app.tenant_key("desk-other", "metered", "market").await;
    assert_eq!(app.gql_key(&other, ONE_QUOTE, json!({})).await.0, 200);
}

async fn cost_is_estimated_returned_and_budgeted(backend: Backend) {
    let (app, _plans) = app(backend, &[]).await.unwrap();
    let key = app.tenant_key("desk-cost", "metered", "market").await;
    let spent = std::time::Instant::now();
    let (status, headers, body) = app.gql_key(&key, TEN_QUOTES, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["extensions"]["cost"], 10, "one object per quote: {body}");
    assert_eq!(remaining(header(&headers, "ratelimit"), "cost"), 90);
    // Variables size lists too: 50 klines cost 50, then only 40 units are left for 50 more.
    let klines = "query($n: Int) { klines(symbol: \"AAPL.US\", interval: ONE_DAY, limit: $n) { close } }";
    let (status, _, body) = app.gql_key(&key, klines, json!({ "n": 50 })).await;
    assert_eq!((status, &body["extensions"]["cost"]), (200, &json!(50)), "{body}");
    let (status, headers, body) = app.gql_key(&key, klines, json!({ "n": 50 })).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["policy"], "cost", "{body}");
    // 10 more units at 100 a minute: 6 s, less what has refilled since spending began.
    let wait = body["errors"][0]["extensions"]["retryAfterMs"].as_u64().unwrap();
    let since = u64::try_from(spent.elapsed().as_millis()).unwrap();
    assert!(wait <= 6000 && wait + since + 100 >= 6000, "{body} ({since} ms after spending)");
    assert_eq!(header(&headers, "retry-after"), wait.div_ceil(1000).to_string(), "whole seconds, rounded up");
    // More than the whole minute's budget: no wait helps, so not RATE_LIMITED.
    let (status, _, body) = app.gql_key(&key, klines, json!({ "n": 500 })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(
        (ext["reason"].as_str(), ext["cost"].as_u64(), ext["budget"].as_u64()),
        (Some("QUERY_TOO_COSTLY"), Some(500), Some(100))
    );
    // A batch pays for every operation: 2 requests and 11 units, each operation told its own.
    let fresh = app.tenant_key("desk-batch", "metered", "market").await;
    let batch = json!([{ "query": ONE_QUOTE }, { "query": TEN_QUOTES }]);
    let response = app.client.post(app.url("/graphql")).header("X-API-Key", &fresh).json(&batch).send().await.unwrap();
    let current = response.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert_eq!((remaining(&current, "requests"), remaining(&current, "cost")), (1, 89), "{current}");
    let body: Value = response.json().await.unwrap();
    assert_eq!((&body[0]["extensions"]["cost"], &body[1]["extensions"]["cost"]), (&json!(1), &json!(10)), "{body}");
}

async fn a_key_with_a_lower_rate_is_held_to_it(backend: Backend) {
    let (app, _plans) = app(backend, &[]).await.unwrap();
    let tenancy = &app.state.tenancy;
    app.tenant_key("desk-key", "shared", "market").await;
    let tenant = tenancy.tenant_by_slug("desk-key").await.unwrap().unwrap();
    let spec = finql::tenancy::service::KeySpec {
        name: "slow key".into(),
        scopes: finql::identity::Scopes::parse("market").unwrap(),
        expires_at: None,
        rate: Some((1, 1)),
        created_by: None,
    };
    let slow = tenancy.create_key(tenant.id, spec).await.unwrap().secret;
    let (status, headers, _) = app.gql_key(&slow, ONE_QUOTE, json!({})).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "ratelimit-policy").contains("\"key\";q=1;w=1"));
    let (status, _, body) = app.gql_key(&slow, ONE_QUOTE, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["policy"], "key", "{body}");
    // The tenant's other key has what is left of the tenant's 10: the refused request took
    // nothing, so 2 are spent with this one.
    let other = app.tenant_key("desk-key", "shared", "market").await;
    let (status, headers, _) = app.gql_key(&other, ONE_QUOTE, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(remaining(header(&headers, "ratelimit"), "requests"), 8, "{headers:?}");
}

/// WebSocket operations spend the same allowance as HTTP requests (here an anonymous address's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_are_counted_like_requests() {
    let (app, _plans) = app(Backend::Sqlite, &[("FINQL_ANONYMOUS_PLAN", "anon")]).await.unwrap();
    let mut ws = Ws::connect(&app, "graphql-transport-ws").await;
    ws.init(None).await;
    ws.subscribe("1", ONE_QUOTE).await;
    assert_eq!(ws.next_json().await["type"], "next");
    assert_eq!(ws.next_json().await["type"], "complete");
    ws.subscribe("2", ONE_QUOTE).await;
    assert_eq!(ws.next_json().await["type"], "next");
    assert_eq!(ws.next_json().await["type"], "complete");
    // The burst of 2 is spent: the third operation, and an HTTP request from the same address.
    ws.subscribe("3", ONE_QUOTE).await;
    let refused = ws.next_json().await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("error"), Some("3")), "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["policy"], "requests", "{refused}");
    let (status, body) = app.gql_status(None, ONE_QUOTE, json!({})).await;
    assert_eq!((status, error_code(&body)), (429, "RATE_LIMITED"), "{body}");
}

/// With limits off, nothing is refused and no policy is advertised; the cost is still told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_can_be_switched_off() {
    let (app, _plans) =
        app(Backend::Sqlite, &[("FINQL_ANONYMOUS_PLAN", "anon"), ("FINQL_PLAN_LIMITS", "false")]).await.unwrap();
    for _ in 0..5 {
        let response = app.client.post(app.url("/graphql")).json(&json!({ "query": TEN_QUOTES })).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("ratelimit-policy"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["extensions"]["cost"], 10);
    }
}

/// Redis going away (a proxy in front of it, cut): `refuse` refuses every request with
/// `RATE_LIMITED` (`LIMITER_UNAVAILABLE`) until Redis answers again; `local` keeps serving with
/// the limits held in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_or_limits_locally_as_configured() {
    let Some(redis) = test_redis_url() else { return };
    for mode in ["refuse", "local"] {
        let proxy = RedisProxy::start(&redis).await;
        let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
        let vars = [
            ("REDIS_URL", proxy.url.as_str()),
            ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
            ("FINQL_ANONYMOUS_PLAN", "anon"),
            ("FINQL_RATE_LIMIT_REDIS_OUTAGE", mode),
        ];
        let (app, _plans) = app(Backend::Sqlite, &vars).await.unwrap();
        let (status, body) = app.gql_status(None, ONE_QUOTE, json!({})).await;
        assert_eq!(status, 200, "{mode}, Redis up: {body}");
        proxy.cut();
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            outcomes.push(app.gql_status(None, ONE_QUOTE, json!({})).await);
        }
        if mode == "refuse" {
            for (status, body) in &outcomes {
                assert_eq!((*status, error_code(body)), (429, "RATE_LIMITED"), "{body}");
                assert_eq!(body["errors"][0]["extensions"]["reason"], "LIMITER_UNAVAILABLE", "{body}");
            }
            proxy.restore();
            within(Duration::from_secs(10), "Redis answers again", async || {
                app.gql_status(None, ONE_QUOTE, json!({})).await.0 == 200
            })
            .await;
        } else {
            // The burst of 2, one spent before the cut (in Redis, which the replica's own
            // count does not know): at least one served, then limited locally.
            let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
            assert_eq!(statuses[0], 200, "served during the outage: {outcomes:?}");
            let (_, limited) = outcomes.iter().find(|(status, _)| *status == 429).expect("still limited");
            assert_eq!(limited["errors"][0]["extensions"]["policy"], "requests", "{limited}");
            assert!(limited["errors"][0]["extensions"].get("reason").is_none(), "{limited}");
        }
    }
}

/// Two finql processes, one PostgreSQL, one Redis: one tenant's requests spread over both
/// spend one budget. Per-process budgets would accept twice the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_share_one_budget() {
    let Some(redis) = test_redis_url() else { return };
    let Some(database) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let schema = new_postgres_schema().await;
    let (_plans, path) = plans_file(PLANS);
    // The key is made through a server on the same database (which migrates it).
    let maker = spawn_app(
        Backend::Postgres,
        &[("FINQL_DATABASE_SCHEMA", schema.as_str()), ("FINQL_PLANS_FILE", path.as_str())],
    )
    .await
    .unwrap();
    let key = maker.tenant_key("desk-shared", "shared", "market").await;
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("DATABASE_URL", database.as_str()),
        ("FINQL_DATABASE_SCHEMA", schema.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("FINQL_PLANS_FILE", path.as_str()),
    ];
    let (a, b) = tokio::join!(FinqlProcess::start(&vars), FinqlProcess::start(&vars));
    finql::sources::http::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let accepted = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let refused = AtomicUsize::new(0);
    let started = Instant::now();
    // Four clients, each alternating between the processes, 15 requests each.
    let clients = (0..4).map(|c| {
        let (client, key, accepted, refused) = (&client, &key, &accepted, &refused);
        let addrs = [a.addr, b.addr];
        async move {
            for i in 0..15 {
                let which = (c + i) % 2;
                let response = client
                    .post(format!("http://{}/graphql", addrs[which]))
                    .header("X-API-Key", key)
                    .json(&json!({ "query": ONE_QUOTE }))
                    .send()
                    .await
                    .expect("answers");
                match response.status().as_u16() {
                    200 => accepted[which].fetch_add(1, Ordering::Relaxed),
                    429 => refused.fetch_add(1, Ordering::Relaxed),
                    other => panic!("status {other}: {}", response.text().await.unwrap_or_default()),
                };
            }
        }
    });
    futures::future::join_all(clients).await;
    let elapsed = started.elapsed();
    let (on_a, on_b) = (accepted[0].load(Ordering::Relaxed), accepted[1].load(Ordering::Relaxed));
    let total = on_a + on_b;
    // The budget: a burst of 10, then 1 a second; exact across replicas, so at most one more
    // for a second begun while the last responses were in flight.
    let budget = 10 + elapsed.as_secs() as usize + 1;
    assert!(total >= 10, "the burst is served: {total}");
    assert!(
        total <= budget,
        "{total} accepted in {elapsed:?} across two processes (budget {budget})\n{}\n{}",
        a.logs(),
        b.logs()
    );
    assert!(on_a > 0 && on_b > 0, "both processes served: {on_a} + {on_b}");
    assert_eq!(total + refused.load(Ordering::Relaxed), 60);
    assert!(elapsed < Duration::from_secs(9), "ran fast enough for the bound to mean something: {elapsed:?}");
}
