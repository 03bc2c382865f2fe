//! Usage as the limits and the admin API see it: what the plan limits charge and refuse is what
//! is metered (over HTTP and WebSocket), and `tenant { usage }` shows a tenant admin their own
//! tenant's rows and nobody else's.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::{OK, cost_of, post, prefix, tenant_id, usage_by_actor};
use crate::{
    backend_tests,
    helpers::{Backend, PATIENCE, TestApp, error_code, plans_file, spawn_app, within},
    http::ws::{TRANSPORT_WS, Ws},
};

backend_tests!(tenant_usage_is_for_the_tenants_own_admins);

/// `tight`: 2 requests at once, then one a second; a generous cost budget. `roomy`: more than
/// any test asks (also the default tenant's; anonymous callers have no plan).
const PLANS: &str = r#"
[plans.tight]
rate_per_second = 1
burst = 2
cost_per_minute = 100000
max_connections = 5
max_live_symbols = 50
history_days = 30
fundamentals = true
delay_minutes = 15
[plans.tight.markets]
"*" = "realtime"

[plans.roomy]
rate_per_second = 1000
burst = 1000
cost_per_minute = 10000000
max_connections = 50
max_live_symbols = 1000
history_days = 3650
fundamentals = true
delay_minutes = 15
[plans.roomy.markets]
"*" = "realtime"
"#;

const QUOTES: &str = r#"{ quotes(symbols: ["AAPL.US", "MSFT.US", "700.HK"]) { symbol last } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_limits_charge_and_refuse_is_metered() {
    let (_dir, plans) = plans_file(PLANS);
    let settings =
        [("FINQL_PLANS_FILE", plans.as_str()), ("FINQL_DEFAULT_PLAN", "roomy"), ("FINQL_ANONYMOUS_PLAN", "none")];
    let app = spawn_app(Backend::Sqlite, &settings).await.unwrap();

    // HTTP: a burst of 2 on a plan of 1 a second, then a body that is not JSON.
    let key = app.tenant_key("bill-http", "tight", "market").await;
    let (mut cost, mut refused, mut bytes) = (0, 0, 0);
    for _ in 0..5 {
        let (body, n) = post(&app, &key, json!({ "query": QUOTES })).await;
        bytes += n;
        if body["errors"][0]["extensions"]["code"] == "RATE_LIMITED" {
            refused += 1;
        } else {
            assert_eq!(body["data"]["quotes"][2]["symbol"], "700.HK", "{body}");
            cost += cost_of(&body);
        }
    }
    assert!(refused >= 1, "5 requests at once on a burst of 2");
    let malformed =
        app.client.post(app.url("/graphql")).header("X-API-Key", &key).header("content-type", "application/json");
    let malformed = malformed.body("{not json").send().await.unwrap();
    let malformed_refused = malformed.status() == 429;
    bytes += malformed.bytes().await.unwrap().len() as u64;
    refused += u64::from(malformed_refused);

    // WebSocket: a query pays its cost; the same query over HTTP says what that is.
    let ws_key = app.tenant_key("bill-ws", "roomy", "market").await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&ws_key)).await;
    ws.subscribe("q", QUOTES).await;
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["quotes"][0]["symbol"], "AAPL.US", "{next}");
    assert_eq!(ws.next_json().await["type"], "complete");
    // A document the guards refuse is a request with an error.
    ws.subscribe("bad", "{ quote(").await;
    assert_eq!(ws.next_json().await["type"], "error");
    let other = app.tenant_key("bill-other", "roomy", "market").await;
    let (_, _, priced) = app.gql_key(&other, QUOTES, json!({})).await;
    let ws_cost = cost_of(&priced);
    assert!(ws_cost >= 3, "three quotes cost at least one each: {priced}");

    // What the meter kept: everything the limits saw.
    app.state.usage.flush().await.unwrap();
    let http = usage_by_actor(&app, tenant_id(&app, "bill-http").await).await[&format!("key:{}", prefix(&key))];
    assert_eq!(http.requests, 6, "{http:?}");
    assert_eq!(http.rate_limited, refused, "{http:?}");
    assert_eq!(http.errors, refused + u64::from(!malformed_refused), "refusals and the malformed body: {http:?}");
    assert_eq!(http.cost, cost, "only what ran is charged: {http:?}");
    assert_eq!(http.response_bytes, bytes, "refusals' bodies too: {http:?}");
    // An operation is counted when its task ends, just after its last message.
    let (tenant, actor) = (tenant_id(&app, "bill-ws").await, format!("key:{}", prefix(&ws_key)));
    within(PATIENCE, "the WebSocket operations are counted", async || {
        app.state.usage.flush().await.unwrap();
        usage_by_actor(&app, tenant).await.get(&actor).is_some_and(|c| c.requests == 2)
    })
    .await;
    let ws = usage_by_actor(&app, tenant).await[&actor];
    assert_eq!((ws.requests, ws.errors, ws.cost), (2, 1, ws_cost), "{ws:?}");
}

const USAGE: &str = "query($from: DateTime!, $to: DateTime!, $g: Granularity!) {
    tenant { slug usage(from: $from, to: $to, granularity: $g) { start end actor requests cost errors } } }";

fn window(granularity: &str) -> Value {
    let now = Utc::now();
    json!({ "from": now - TimeDelta::hours(2), "to": now + TimeDelta::hours(1), "g": granularity })
}

async fn tenant_usage_is_for_the_tenants_own_admins(app: TestApp) {
    let admin_a = app.tenant_key("usage-a", "pro", "market,admin").await;
    let market_a = app.tenant_key("usage-a", "pro", "market").await;
    let admin_b = app.tenant_key("usage-b", "pro", "market,admin").await;
    for _ in 0..3 {
        app.gql_key(&market_a, OK, json!({})).await;
    }
    app.gql_key(&admin_b, OK, json!({})).await;
    app.state.usage.flush().await.unwrap();

    let (status, _, body) = app.gql_key(&admin_a, USAGE, window("HOUR")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["tenant"]["slug"], "usage-a");
    let rows = body["data"]["tenant"]["usage"].as_array().unwrap();
    let actors: Vec<&str> = rows.iter().map(|r| r["actor"].as_str().unwrap()).collect();
    let (mine, other) = (format!("key:{}", prefix(&market_a)), format!("key:{}", prefix(&admin_b)));
    assert!(actors.contains(&mine.as_str()), "{body}");
    assert!(!actors.contains(&other.as_str()), "another tenant's key: {body}");
    let requests: u64 = rows.iter().filter(|r| r["actor"] == mine).map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, 3, "{body}");
    // By day: the same requests, one row per actor and day.
    let (_, _, by_day) = app.gql_key(&admin_a, USAGE, window("DAY")).await;
    let day_rows = by_day["data"]["tenant"]["usage"].as_array().unwrap();
    let midnight = |r: &Value| {
        let start = chrono::DateTime::parse_from_rfc3339(r["start"].as_str().unwrap()).unwrap();
        start.to_utc().time() == chrono::NaiveTime::MIN
    };
    assert!(day_rows.iter().all(midnight), "UTC days: {by_day}");
    let by_day: u64 = day_rows.iter().filter(|r| r["actor"] == mine).map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(by_day, 3);

    // Tenant B's admin sees B only.
    let (_, _, body) = app.gql_key(&admin_b, USAGE, window("HOUR")).await;
    let rows = body["data"]["tenant"]["usage"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["actor"] != mine), "{body}");

    // Not an admin: a key without the admin scope, a member user.
    let (_, _, body) = app.gql_key(&market_a, USAGE, window("HOUR")).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let member = app.new_user().await;
    let body = app.gql(Some(&member.access_token), USAGE, window("HOUR")).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // A reversed window.
    let now = Utc::now();
    let reversed = json!({ "from": now, "to": now - TimeDelta::hours(1), "g": "HOUR" });
    let (_, _, body) = app.gql_key(&admin_a, USAGE, reversed).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
