//! Entitlements on market queries: two tenants on different plans, side by side, over HTTP with
//! API keys, on SQLite and PostgreSQL. `delayed` holds the tests on the clock: the wall clock
//! through the server, and a controlled one through the schema.
//!
//! The plans (below) are chosen so every outcome shows whatever the time of day: `viewer` has
//! crypto (which trades around the clock) delayed, US stocks in real time, Hong Kong not at all,
//! 30 days of history and no fundamentals; `desk` has everything.

mod delayed;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code, plans_file, spawn_app};

pub(super) const PLANS: &str = r#"
[plans.desk]
rate_per_second = 1000
burst = 1000
cost_per_minute = 10000000
max_connections = 100
max_live_symbols = 1000
history_days = 3650
fundamentals = true
delay_minutes = 15
[plans.desk.markets]
"*" = "realtime"

[plans.viewer]
rate_per_second = 1000
burst = 1000
cost_per_minute = 10000000
max_connections = 100
max_live_symbols = 1000
history_days = 30
fundamentals = false
delay_minutes = 15
[plans.viewer.markets]
US = "realtime"
CRYPTO = "delayed"
FX = "delayed"
"#;

/// The viewer plan's delay and history.
const DELAY: i64 = 15;
const HISTORY_DAYS: i64 = 30;

/// A server on the plans above, anonymous callers refused (`FINQL_ANONYMOUS_PLAN=none`), and a
/// key of each tenant: `(app, desk, viewer)`.
async fn spawn(backend: Backend) -> Option<(TestApp, String, String, tempfile::TempDir)> {
    let (dir, file) = plans_file(PLANS);
    let overrides =
        [("FINQL_PLANS_FILE", file.as_str()), ("FINQL_DEFAULT_PLAN", "desk"), ("FINQL_ANONYMOUS_PLAN", "none")];
    let app = spawn_app(backend, &overrides).await?;
    let desk = app.tenant_key("desk", "desk", "market,live").await;
    let viewer = app.tenant_key("viewer", "viewer", "market,live").await;
    Some((app, desk, viewer, dir))
}

/// Runs `$name(app, desk, viewer)` on SQLite and on PostgreSQL (skipped without
/// `TEST_DATABASE_URL`).
macro_rules! entitle_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, desk, viewer, _dir) = super::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
                super::$name(&app, &desk, &viewer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::spawn(crate::helpers::Backend::Postgres).await {
                    Some((app, desk, viewer, _dir)) => super::$name(&app, &desk, &viewer).await,
                    None => eprintln!("skipped: TEST_DATABASE_URL is not set"),
                }
            }
        }
    )+};
}

entitle_tests!(
    quotes_answer_what_each_plan_allows_symbol_by_symbol,
    a_security_page_answers_around_a_refused_quote,
    order_books_are_real_time_only,
    fundamentals_need_the_plan,
    history_reaches_history_days_back,
    delayed_klines_and_ticks_end_at_the_delay,
    invalid_keys_and_missing_scopes_are_refused_on_data,
);

async fn query(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let (status, _, body) = app.gql_key(key, query, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap_or_else(|| panic!("not a time: {value}")).parse().expect("RFC 3339 time")
}

/// The error at `path`, asserting there is exactly one there.
fn error_at<'a>(body: &'a Value, path: &Value) -> &'a Value {
    let errors: Vec<&Value> =
        body["errors"].as_array().into_iter().flatten().filter(|error| &error["path"] == path).collect();
    assert_eq!(errors.len(), 1, "one error at {path}: {body}");
    errors[0]
}

/// `FORBIDDEN` with `reason: ENTITLEMENT_REQUIRED` and `market` (when one is at fault).
fn assert_entitlement(error: &Value, market: Option<&str>) {
    assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{error}");
    assert_eq!(error["extensions"]["reason"], "ENTITLEMENT_REQUIRED", "{error}");
    match market {
        Some(market) => assert_eq!(error["extensions"]["market"], market, "{error}"),
        None => assert!(error["extensions"].get("market").is_none(), "{error}"),
    }
}

const QUOTES: &str = "query($s: [String!]!) { quotes(symbols: $s) { symbol last timestamp delayed } }";

async fn quotes_answer_what_each_plan_allows_symbol_by_symbol(app: &TestApp, desk: &str, viewer: &str) {
    let symbols = json!({ "s": ["AAPL.US", "700.HK", "CRYPTO:BTCUSDT", "ZZZZ.US", "AAPL.US"] });
    let body = query(app, viewer, QUOTES, symbols.clone()).await;
    let now = Utc::now();
    let quotes = &body["data"]["quotes"];
    // US: real time.
    assert_eq!(quotes[0]["symbol"], "AAPL.US", "{body}");
    assert_eq!(quotes[0]["delayed"], false, "{body}");
    // HK: outside the plan, refused at its own index; the rest still answers.
    assert!(quotes[1].is_null(), "{body}");
    assert_entitlement(error_at(&body, &json!(["quotes", 1])), Some("HK"));
    // Crypto: delayed, and never younger than the delay.
    assert_eq!(quotes[2]["delayed"], true, "{body}");
    assert!(time(&quotes[2]["timestamp"]) <= now - Duration::minutes(DELAY), "{body}");
    // An unknown symbol is its own NOT_FOUND; a repeated one answers at both places.
    assert!(quotes[3].is_null(), "{body}");
    assert_eq!(error_at(&body, &json!(["quotes", 3]))["extensions"]["code"], "NOT_FOUND", "{body}");
    assert_eq!(quotes[4], quotes[0], "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(2), "{body}");

    // The desk, on the same server at the same time, sees everything in real time.
    let body = query(app, desk, QUOTES, symbols).await;
    let quotes = &body["data"]["quotes"];
    for i in [0, 1, 2, 4] {
        assert_eq!(quotes[i]["delayed"], false, "{i}: {body}");
    }
    assert!(time(&quotes[2]["timestamp"]) > Utc::now() - Duration::minutes(DELAY), "crypto trades now: {body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "only ZZZZ.US: {body}");

    // A single quote outside the plan: the same refusal.
    let body = query(app, viewer, "{ quote(symbol: \"700.HK\") { last } }", json!({})).await;
    assert_entitlement(error_at(&body, &json!(["quote"])), Some("HK"));
}

async fn a_security_page_answers_around_a_refused_quote(app: &TestApp, _desk: &str, viewer: &str) {
    let page = "{ securities(search: \"700\", first: 5) { nodes { symbol quote { last delayed } } } }";
    let body = query(app, viewer, page, json!({})).await;
    let nodes = body["data"]["securities"]["nodes"].as_array().unwrap_or_else(|| panic!("{body}"));
    let hk = nodes.iter().position(|node| node["symbol"] == "700.HK").unwrap_or_else(|| panic!("{body}"));
    assert!(nodes[hk]["quote"].is_null(), "{body}");
    assert_entitlement(error_at(&body, &json!(["securities", "nodes", hk, "quote"])), Some("HK"));
    // Both halves in one request: the entitled instrument answers beside the refused one.
    let both = "{ a: security(symbol: \"AAPL.US\") { quote { delayed } klines(interval: ONE_DAY, limit: 2) { time } } \
                h: security(symbol: \"700.HK\") { name quote { last } klines(interval: ONE_DAY, limit: 2) { time } } }";
    let body = query(app, viewer, both, json!({})).await;
    assert_eq!(body["data"]["a"]["quote"]["delayed"], false, "{body}");
    assert_eq!(body["data"]["a"]["klines"].as_array().map(Vec::len), Some(2), "{body}");
    assert!(body["data"]["h"]["name"].is_string(), "the catalog is not market data: {body}");
    assert_entitlement(error_at(&body, &json!(["h", "quote"])), Some("HK"));
    assert_entitlement(error_at(&body, &json!(["h", "klines"])), Some("HK"));
}

async fn order_books_are_real_time_only(app: &TestApp, desk: &str, viewer: &str) {
    let book = "query($s: String!) { orderBook(symbol: $s, levels: 2) { symbol bids { price } } }";
    let body = query(app, viewer, book, json!({ "s": "CRYPTO:BTCUSDT" })).await;
    assert_entitlement(error_at(&body, &json!(["orderBook"])), Some("CRYPTO"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("real-time only"), "{body}");
    let body = query(app, viewer, book, json!({ "s": "700.HK" })).await;
    assert_entitlement(error_at(&body, &json!(["orderBook"])), Some("HK"));
    let body = query(app, viewer, book, json!({ "s": "AAPL.US" })).await;
    assert_eq!(body["data"]["orderBook"]["symbol"], "AAPL.US", "{body}");
    let body = query(app, desk, book, json!({ "s": "CRYPTO:BTCUSDT" })).await;
    assert_eq!(body["data"]["orderBook"]["symbol"], "CRYPTO:BTCUSDT", "{body}");
    // On a security: that field alone is refused.
    let node = "{ security(symbol: \"FX:EURUSD\") { symbol orderBook { symbol } } }";
    let body = query(app, viewer, node, json!({})).await;
    assert_eq!(body["data"]["security"]["symbol"], "FX:EURUSD", "{body}");
    assert_entitlement(error_at(&body, &json!(["security", "orderBook"])), Some("FX"));
}

async fn fundamentals_need_the_plan(app: &TestApp, desk: &str, viewer: &str) {
    let today = Utc::now().date_naive();
    let from = (today - Duration::days(10)).to_string();
    let fundamentals = "query($from: Date!, $to: Date!) { security(symbol: \"AAPL.US\") { symbol \
                        fundamentals(from: $from, to: $to) { nodes { date pe } } } }";
    let vars = json!({ "from": from, "to": today.to_string() });
    let body = query(app, viewer, fundamentals, vars.clone()).await;
    assert_eq!(body["data"]["security"]["symbol"], "AAPL.US", "{body}");
    assert!(body["data"]["security"]["fundamentals"].is_null(), "{body}");
    let error = error_at(&body, &json!(["security", "fundamentals"]));
    assert_entitlement(error, None);
    assert!(error["message"].as_str().unwrap().contains("fundamentals"), "{body}");
    let body = query(app, desk, fundamentals, vars).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!body["data"]["security"]["fundamentals"]["nodes"].as_array().unwrap().is_empty(), "{body}");
}

async fn history_reaches_history_days_back(app: &TestApp, desk: &str, viewer: &str) {
    let daily = "query($before: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_DAY, limit: 100, before: $before) { time } }";
    // Unbounded: clipped to the horizon.
    let body = query(app, viewer, daily, json!({})).await;
    let horizon = Utc::now() - Duration::days(HISTORY_DAYS);
    let bars = body["data"]["klines"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(!bars.is_empty() && bars.len() <= HISTORY_DAYS as usize + 1, "{} bars: {body}", bars.len());
    assert!(bars.iter().all(|bar| time(&bar["time"]) >= horizon - Duration::minutes(1)), "{body}");
    let body = query(app, desk, daily, json!({})).await;
    assert_eq!(body["data"]["klines"].as_array().map(Vec::len), Some(100), "{body}");
    // Named further back: refused, naming the market.
    let old = (Utc::now() - Duration::days(HISTORY_DAYS + 5)).to_rfc3339();
    let body = query(app, viewer, daily, json!({ "before": old })).await;
    assert_entitlement(error_at(&body, &json!(["klines"])), Some("US"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("30 days"), "{body}");
    let body = query(app, desk, daily, json!({ "before": old })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let from = (Utc::now() - Duration::days(HISTORY_DAYS + 5)).date_naive().to_string();
    let to = Utc::now().date_naive().to_string();
    let range = "query($from: Date!, $to: Date!) { security(symbol: \"AAPL.US\") { fundamentals(from: $from, to: $to) { nodes { date } } } }";
    let body = query(app, desk, range, json!({ "from": from, "to": to })).await;
    assert!(body.get("errors").is_none(), "the desk's history is ten years: {body}");
    // Corporate actions (no range named): clipped.
    let actions = "{ security(symbol: \"AAPL.US\") { corporateActions { exDate } } }";
    let all = query(app, desk, actions, json!({})).await;
    let all = all["data"]["security"]["corporateActions"].as_array().cloned().unwrap_or_else(|| panic!("{all}"));
    assert!(
        all.iter().any(|a| a["exDate"].as_str().unwrap() < horizon.date_naive().to_string().as_str()),
        "the simulated AAPL has actions older than 30 days: {all:?}"
    );
    let body = query(app, viewer, actions, json!({})).await;
    let recent = body["data"]["security"]["corporateActions"].as_array().unwrap_or_else(|| panic!("{body}"));
    let horizon_day = horizon.date_naive().to_string();
    assert!(recent.iter().all(|a| a["exDate"].as_str().unwrap() >= horizon_day.as_str()), "{body}");
    assert_eq!(recent.len(), all.iter().filter(|a| a["exDate"].as_str().unwrap() >= horizon_day.as_str()).count());
}

async fn delayed_klines_and_ticks_end_at_the_delay(app: &TestApp, desk: &str, viewer: &str) {
    let minutes = "{ klines(symbol: \"CRYPTO:BTCUSDT\", interval: ONE_MINUTE, limit: 30) { time close } }";
    let ticks = "{ ticks(symbol: \"CRYPTO:BTCUSDT\", limit: 1000) { timestamp } }";
    let before = Utc::now();
    let body = query(app, viewer, minutes, json!({})).await;
    let after = Utc::now();
    let bars = body["data"]["klines"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(bars.len(), 30, "{body}");
    // No bar ends after now - delay, and the window reaches it (it is not merely old).
    let last_end = time(&bars[29]["time"]) + Duration::minutes(1);
    assert!(last_end <= after - Duration::minutes(DELAY), "{body}");
    assert!(last_end > before - Duration::minutes(DELAY + 1), "{body}");
    // The desk's latest bar is the one in progress.
    let body = query(app, desk, minutes, json!({})).await;
    let bars = body["data"]["klines"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(time(&bars[29]["time"]) > before - Duration::minutes(2), "{body}");
    // `after` past the cutoff: nothing yet.
    let late = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let paged =
        "query($after: DateTime) { klines(symbol: \"CRYPTO:BTCUSDT\", interval: ONE_MINUTE, after: $after) { time } }";
    let body = query(app, viewer, paged, json!({ "after": late })).await;
    assert_eq!(body["data"]["klines"], json!([]), "{body}");

    let body = query(app, viewer, ticks, json!({})).await;
    let after = Utc::now();
    let seen = body["data"]["ticks"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(seen.iter().all(|tick| time(&tick["timestamp"]) <= after - Duration::minutes(DELAY)), "{body}");
    let body = query(app, desk, ticks, json!({})).await;
    let all = body["data"]["ticks"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(all.iter().any(|tick| time(&tick["timestamp"]) > after - Duration::minutes(DELAY)), "{body}");
}

async fn invalid_keys_and_missing_scopes_are_refused_on_data(app: &TestApp, _desk: &str, viewer: &str) {
    let operations = [
        "{ quote(symbol: \"AAPL.US\") { last } }",
        "{ quotes(symbols: [\"AAPL.US\"]) { last } }",
        "{ klines(symbol: \"AAPL.US\", interval: ONE_DAY) { time } }",
        "{ orderBook(symbol: \"AAPL.US\") { symbol } }",
        "{ ticks(symbol: \"AAPL.US\") { price } }",
        "{ security(symbol: \"AAPL.US\") { symbol } }",
        "{ securities(first: 1) { nodes { symbol } } }",
    ];
    let prefix = viewer.split('_').nth(1).unwrap().to_owned();
    let forged = format!("fq_{prefix}_{}", "A".repeat(43));
    let live_only = app.tenant_key("viewer", "viewer", "live").await;
    for operation in operations {
        // No credentials, where the deployment has no anonymous plan.
        let body = app.gql(None, operation, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{operation}: {body}");
        // Credentials that do not check out: refused, never served as anonymous.
        let (_, _, body) = app.gql_key(&forged, operation, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{operation}: {body}");
        assert_eq!(body["errors"][0]["message"], "invalid API key", "{body}");
        // A key without the market scope.
        let (_, _, body) = app.gql_key(&live_only, operation, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{operation}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("`market` scope"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_anonymous_plan_sees_delayed_data() {
    // The built-in `anonymous` plan: every market delayed.
    let app = spawn_app(Backend::Sqlite, &[("FINQL_ANONYMOUS_PLAN", "anonymous")]).await.unwrap();
    let body = app.gql(None, "{ quote(symbol: \"AAPL.US\") { delayed timestamp } }", json!({})).await;
    assert_eq!(body["data"]["quote"]["delayed"], true, "{body}");
    assert!(time(&body["data"]["quote"]["timestamp"]) <= Utc::now() - Duration::minutes(15), "{body}");
}
