//! `FINQL_ROUTES` and fallback chains over two real providers' fakes (Polygon and iTick): each
//! market served by its route (and `extensions.sources` naming them), failover to the next
//! source of a route, and what a source does not know answered by the next one.

use serde_json::{Value, json};

use crate::{
    helpers::*,
    metrics::exposition::Exposition,
    sources::{itick::fake_rest::FakeItick, polygon::fake_rest::FakePolygon},
};

async fn app_on(polygon: &FakePolygon, itick: &FakeItick, market_source: &str, routes: &str) -> TestApp {
    let (polygon_base, itick_base) = (polygon.base_url(), itick.base_url());
    let vars = [
        ("FINQL_MARKET_SOURCE", market_source),
        ("FINQL_ROUTES", routes),
        ("POLYGON_BASE_URL", polygon_base.as_str()),
        ("POLYGON_API_KEY", super::polygon::fake_rest::KEY),
        ("POLYGON_MAX_RETRIES", "0"),
        ("ITICK_BASE_URL", itick_base.as_str()),
        ("ITICK_TOKEN", super::itick::fake_rest::TOKEN),
        ("ITICK_MAX_RETRIES", "0"),
    ];
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

const QUOTES: &str = "query($s: [String!]!) { quotes(symbols: $s) { symbol source } }";

fn sources(data: &serde_json::Value) -> Vec<(String, String)> {
    data["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["symbol"].as_str().unwrap().to_owned(), q["source"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_market_is_served_by_the_first_source_of_its_route() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "simulated", "stock:US=polygon,itick;stock:HK=itick;*=simulated").await;
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US", "700.HK", "FX:EURUSD"] })).await;
    assert_eq!(sources(&data), pairs(&[("AAPL.US", "POLYGON"), ("700.HK", "ITICK"), ("FX:EURUSD", "SIMULATED")]));
    assert_eq!(polygon.paths(), ["/v2/snapshot/locale/us/markets/stocks/tickers"], "only US stocks asked of Polygon");
    let itick_regions: Vec<String> =
        itick.requests().into_iter().map(|(_, query)| query.get("region").cloned().unwrap_or_default()).collect();
    assert_eq!(itick_regions, ["HK"], "only Hong Kong asked of iTick");
}

/// The parsed `/metrics` of `app`.
async fn scrape(app: &TestApp) -> Exposition {
    let text = app.client.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    Exposition::parse(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_primary_fails_over_to_the_next_source_of_the_route() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "simulated", "stock:US=polygon,itick").await;
    polygon.fail_next(1, 503);
    let calls = |e: &Exposition, source: &str, outcome: &str| {
        e.sum("finql_upstream_requests_total", &[("source", source), ("endpoint", "quotes"), ("outcome", outcome)])
    };
    let before = scrape(&app).await;
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(sources(&data), pairs(&[("AAPL.US", "ITICK")]));
    assert_eq!(polygon.paths().len(), 1, "Polygon was asked first");
    // Each provider tried is counted under its own name, never the route's.
    let after = scrape(&app).await;
    assert!(calls(&after, "polygon", "down") > calls(&before, "polygon", "down"), "Polygon's failure");
    assert!(calls(&after, "itick", "ok") > calls(&before, "itick", "ok"), "iTick's answer");
    assert!(after.matching("finql_upstream_requests_total", &[("source", "routed")]).next().is_none());
    // The route's other market, with no rule of its own, goes to FINQL_MARKET_SOURCE.
    let data = app.data(None, QUOTES, json!({ "s": ["700.HK"] })).await;
    assert_eq!(sources(&data), pairs(&[("700.HK", "SIMULATED")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_primary_leaves_the_next_source_its_share_of_the_budget() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let (polygon_base, itick_base) = (polygon.base_url(), itick.base_url());
    let vars = [
        ("FINQL_ROUTES", "stock:US=polygon,itick"),
        ("FINQL_UPSTREAM_BUDGET_MS", "1000"),
        ("POLYGON_BASE_URL", polygon_base.as_str()),
        ("POLYGON_API_KEY", super::polygon::fake_rest::KEY),
        ("POLYGON_TIMEOUT_MS", "10000"),
        ("ITICK_BASE_URL", itick_base.as_str()),
        ("ITICK_TOKEN", super::itick::fake_rest::TOKEN),
    ];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    polygon.set_delay(std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(sources(&data), pairs(&[("AAPL.US", "ITICK")]));
    // Polygon had half the 1 s budget, not its 10 s timeout nor its 5 s answer.
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_is_refused_and_the_next_source_answers() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "simulated", "stock:US=polygon,itick").await;
    let answers =
        [("MSFT.US", "<html>502 Bad Gateway</html>"), ("NVDA.US", r#"{"status":"ERROR","error":"internal"}"#)];
    for (symbol, body) in answers {
        polygon.set_body(body);
        let query = "query($s: String!) { quote(symbol: $s) { source } }";
        let body = app.gql(None, query, json!({ "s": symbol })).await;
        assert_eq!(body["data"]["quote"]["source"], "ITICK", "{body}");
        assert!(!body.to_string().contains("Bad Gateway"), "the provider's text is not shown: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_first_source_does_not_know_the_next_one_answers() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    polygon.forget("MSFT");
    let app = app_on(&polygon, &itick, "polygon,itick", "").await;
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US", "MSFT.US"] })).await;
    assert_eq!(sources(&data), pairs(&[("AAPL.US", "POLYGON"), ("MSFT.US", "ITICK")]));
    let codes: Vec<String> =
        itick.requests().into_iter().map(|(_, query)| query.get("codes").cloned().unwrap_or_default()).collect();
    assert_eq!(codes, ["MSFT"], "iTick is asked only for what Polygon left out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_typo_stops_the_server_with_what_was_meant() {
    let err = finql::config::Config::from_lookup(|name| match name {
        "FINQL_ROUTES" => Some("stock:USA=polygon".to_owned()),
        _ => None,
    })
    .map(|_| ())
    .unwrap_err();
    assert!(err.to_string().contains("region `USA`"), "{err}");
}

/// A plan file whose `developer` plan (the anonymous caller's here) may pin Polygon and the
/// simulated market only, with Hong Kong delayed.
const PINNING_PLANS: &str = r#"
[plans.developer]
rate_per_second = 1000
burst = 2000
cost_per_minute = 10000000
max_connections = 100
max_live_symbols = 10000
history_days = 73000
fundamentals = true
delay_minutes = 15
sources = ["polygon", "simulated"]
[plans.developer.markets]
"*" = "realtime"
HK = "delayed"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_argument_pins_the_answer_past_the_route() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "simulated", "stock:US=polygon,itick").await;
    let query = r#"{
        quote(symbol: "AAPL.US", source: ITICK) { source }
        quotes(symbols: ["AAPL.US", "MSFT.US"], source: SIMULATED) { source }
        klines(symbol: "AAPL.US", interval: ONE_DAY, limit: 3, source: ITICK) { source }
        ticks(symbol: "AAPL.US", limit: 1, source: ITICK) { source }
        routed: quote(symbol: "AAPL.US") { source }
        batch: quotes(symbols: ["AAPL.US", "MSFT.US", "NVDA.US"], source: ITICK) { symbol source }
        orderBook(symbol: "AAPL.US", levels: 2, source: ITICK) { bids { price } }
    }"#;
    let body = app.gql(None, query, json!({})).await;
    let data = &body["data"];
    assert_eq!(data["quote"]["source"], "ITICK", "{body}");
    assert_eq!(data["quotes"], json!([{ "source": "SIMULATED" }, { "source": "SIMULATED" }]));
    let bars = data["klines"].as_array().unwrap();
    assert_eq!(bars.len(), 3);
    assert!(bars.iter().all(|bar| bar["source"] == "ITICK"));
    assert_eq!(data["ticks"][0]["source"], "ITICK");
    assert_eq!(data["routed"]["source"], "POLYGON", "an unpinned field still follows the route");
    assert!(data["batch"].as_array().unwrap().iter().all(|q| q["source"] == "ITICK"));
    let batch_calls: Vec<String> = itick
        .requests()
        .into_iter()
        .filter_map(|(_, query)| query.get("codes").cloned())
        .filter(|codes| codes.contains("NVDA"))
        .collect();
    assert_eq!(batch_calls.len(), 1, "a pinned list is one batch call, not one per symbol: {batch_calls:?}");
    assert_eq!(batch_calls[0].split(',').count(), 3);
    assert_eq!(data["orderBook"]["bids"].as_array().unwrap().len(), 2, "{body}");
    assert!(itick.requests().iter().any(|(path, _)| path == "/stock/depth"), "the book asked of iTick");
    assert!(polygon.paths().iter().all(|path| !path.contains("nbbo")), "not of Polygon");
    assert_eq!(body["extensions"]["sources"], json!(["itick", "polygon", "simulated"]));
    // A pinned window is `before` and `limit`: paging forward or adjusting is refused.
    let body = app
        .gql(None, r#"{ klines(symbol: "AAPL.US", interval: ONE_DAY, after: "2025-01-02T00:00:00Z", source: ITICK) { time } }"#, json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

/// `Security`'s market fields take the same `source` argument, checked the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_securitys_fields_are_pinned_like_the_top_level_ones() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let app = app_on(&polygon, &itick, "simulated", "stock:US=polygon,itick").await;
    let query = r#"{ security(symbol: "AAPL.US") {
        pinned: quote(source: ITICK) { source }
        routed: quote { source }
        klines(interval: ONE_DAY, limit: 2, source: ITICK) { source }
        orderBook(levels: 1, source: ITICK) { bids { price } }
        paged: klines(interval: ONE_DAY, after: "2025-01-02T00:00:00Z", source: ITICK) { time }
    } }"#;
    let body = app.gql(None, query, json!({})).await;
    let security = &body["data"]["security"];
    assert_eq!(security["pinned"]["source"], "ITICK", "{body}");
    assert_eq!(security["routed"]["source"], "POLYGON");
    assert_eq!(security["klines"], json!([{ "source": "ITICK" }, { "source": "ITICK" }]));
    assert!(itick.requests().iter().any(|(path, _)| path == "/stock/depth"), "the book asked of iTick");
    assert!(polygon.paths().iter().all(|path| !path.contains("nbbo")), "not of Polygon");
    assert_eq!(security["paged"], Value::Null, "refused at its own path: {body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["security", "paged"]));
    let plain = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let body =
        plain.gql(None, r#"{ security(symbol: "AAPL.US") { quote(source: POLYGON) { source } } }"#, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "not configured here: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_is_refused_outside_the_plan_and_for_sources_not_configured() {
    let (polygon, itick) = (FakePolygon::start().await, FakeItick::start().await);
    let (_dir, plans) = plans_file(PINNING_PLANS);
    let (polygon_base, itick_base) = (polygon.base_url(), itick.base_url());
    let vars = [
        ("FINQL_PLANS_FILE", plans.as_str()),
        ("FINQL_ROUTES", "stock:US=polygon,itick"),
        ("POLYGON_BASE_URL", polygon_base.as_str()),
        ("POLYGON_API_KEY", super::polygon::fake_rest::KEY),
        ("ITICK_BASE_URL", itick_base.as_str()),
        ("ITICK_TOKEN", super::itick::fake_rest::TOKEN),
    ];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let pin = |symbol: &str, source: &str| format!(r#"{{ quote(symbol: "{symbol}", source: {source}) {{ source }} }}"#);
    let body = app.gql(None, &pin("AAPL.US", "POLYGON"), json!({})).await;
    assert_eq!(body["data"]["quote"]["source"], "POLYGON", "listed in the plan: {body}");
    let body = app.gql(None, &pin("AAPL.US", "ITICK"), json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "ENTITLEMENT_REQUIRED");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("source `itick`"), "{body}");
    let body = app.gql(None, &pin("700.HK", "SIMULATED"), json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "a delayed market cannot be pinned: {body}");
    assert!(itick.requests().is_empty(), "nothing refused reached iTick");
    // A deployment without Polygon says so.
    let plain = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let body = plain.gql(None, &pin("AAPL.US", "POLYGON"), json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("not configured"), "{body}");
}
