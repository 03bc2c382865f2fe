//! Market data through the market API (`market::service`) on the iTick source, against a fake iTick
//! server that speaks the real protocol and counts calls: batching, caching, single flight,
//! retries, stale fallback.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

async fn app_on(fake: &FakeItick, extra: &[(&str, &str)]) -> TestApp {
    let base = fake.base_url();
    let mut vars = vec![
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_BASE_URL", base.as_str()),
        ("ITICK_TOKEN", TOKEN),
        ("ITICK_MAX_RETRIES", "2"),
        ("ITICK_TIMEOUT_MS", "2000"),
    ];
    vars.extend_from_slice(extra);
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

const QUOTES: &str = "query($s: [String!]!) { quotes(symbols: $s) { symbol last source stale } }";

fn quote_calls(fake: &FakeItick) -> Vec<(String, String)> {
    fake.requests()
        .into_iter()
        .filter(|(path, _)| path.ends_with("/quotes") || path.ends_with("/quote"))
        .map(|(path, query)| (path, query.get("region").cloned().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_call_per_asset_class_and_region() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[]).await;
    let symbols = json!(["AAPL.US", "MSFT.US", "NVDA.US", "700.HK", "9988.HK", "FX:EURUSD", "FX:USDJPY", "600519.SH"]);
    let data = app.data(None, QUOTES, json!({ "s": symbols })).await;
    assert!(data["quotes"].as_array().unwrap().iter().all(|q| q["source"] == "ITICK" && q["stale"] == false));
    let mut calls = quote_calls(&fake);
    calls.sort();
    assert_eq!(
        calls,
        [
            ("/forex/quotes".to_owned(), "GB".to_owned()),
            ("/stock/quotes".to_owned(), "HK".to_owned()),
            ("/stock/quotes".to_owned(), "SH".to_owned()),
            ("/stock/quotes".to_owned(), "US".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_securities_with_quotes_make_one_call_per_region() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[]).await;
    let query = r#"{ securities(assetClass: STOCK, first: 100) { nodes { symbol region quote { last } } } }"#;
    let data = app.data(None, query, json!({})).await;
    let nodes = data["securities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 91, "every catalog stock");
    let mut regions: Vec<String> = quote_calls(&fake).into_iter().map(|(_, region)| region).collect();
    regions.sort();
    // 52 US, 19 HK, and China A-shares split by exchange (SH, SZ): one call each.
    assert_eq!(regions, ["HK", "SH", "SZ", "US"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_are_served_from_cache_while_fresh() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[("FINQL_QUOTE_TTL_MS", "60000")]).await;
    for _ in 0..3 {
        app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    }
    assert_eq!(quote_calls(&fake).len(), 1, "later requests hit the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_share_one_upstream_call() {
    let fake = FakeItick::start().await;
    fake.set_delay(Duration::from_millis(300));
    let app = app_on(&fake, &[("FINQL_QUOTE_TTL_MS", "60000")]).await;
    let requests = (0..10).map(|_| app.data(None, QUOTES, json!({ "s": ["AAPL.US", "MSFT.US"] })));
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|a| a["quotes"].as_array().unwrap().len() == 2));
    assert_eq!(quote_calls(&fake).len(), 1, "ten concurrent requests, one upstream call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let fake = FakeItick::start().await;
    fake.fail_next(2, 500);
    let app = app_on(&fake, &[]).await;
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(data["quotes"][0]["stale"], false);
    assert_eq!(quote_calls(&fake).len(), 3, "two failures, then success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_upstream_serves_the_last_known_quote_as_stale() {
    let fake = FakeItick::start().await;
    // Quotes expire at once; the last known value is kept for 5 minutes.
    let app = app_on(&fake, &[("FINQL_QUOTE_TTL_MS", "1"), ("FINQL_MAX_STALE_SECS", "300")]).await;
    let fresh = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    fake.set_down(true);
    // Real time: the quote cache's TTL (moka's own clock) is what must pass; nothing shows it.
    tokio::time::sleep(Duration::from_millis(20)).await; // let the 1 ms quote TTL pass
    let stale = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(stale["quotes"][0]["stale"], true);
    assert_eq!(stale["quotes"][0]["last"], fresh["quotes"][0]["last"]);
    // Never seen before: nothing to fall back on.
    let body = app.gql(None, QUOTES, json!({ "s": ["MSFT.US"] })).await;
    assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE");
    assert!(!body.to_string().contains(TOKEN), "no secrets in errors");
    fake.set_down(false);
    let recovered = app.data(None, QUOTES, json!({ "s": ["MSFT.US"] })).await;
    assert_eq!(recovered["quotes"][0]["stale"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_upstream_unavailable_without_leaking_it() {
    let fake = FakeItick::start().await;
    let base = fake.base_url();
    let app = spawn_app(
        Backend::Sqlite,
        &[("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", "wrong-secret-token")],
    )
    .await
    .unwrap();
    let body = app.gql(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE");
    assert!(!body.to_string().contains("wrong-secret-token"));
    assert_eq!(quote_calls(&fake).len(), 1, "an auth failure is not retried");
}

const KLINES: &str = "query($before: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_DAY, limit: 20, before: $before) { time open high low close } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_history_is_fetched_once() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[]).await;
    let vars = json!({ "before": "2025-01-01T00:00:00Z" });
    let first = app.data(None, KLINES, vars.clone()).await;
    let second = app.data(None, KLINES, vars).await;
    assert_eq!(first, second);
    let kline_calls = fake.requests().into_iter().filter(|(path, _)| path.ends_with("/kline")).count();
    assert_eq!(kline_calls, 1, "closed bars are history: the second query makes no upstream call");
    let bars = first["klines"].as_array().unwrap();
    let times: Vec<&str> = bars.iter().map(|b| b["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
}

/// A window ending at a bar's exact start holds `limit` bars, the last the bar before it, whether
/// the upstream's `et` includes the bar starting at it or not (iTick does not say). It used to
/// hold `limit - 1` from an inclusive upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_ending_at_a_bar_start_holds_limit_bars_whatever_et_means() {
    for through_et in [false, true] {
        let fake = FakeItick::start().await;
        fake.serve_klines_through_et(through_et);
        let app = app_on(&fake, &[]).await;
        let data = app.data(None, KLINES, json!({ "before": "2025-01-01T00:00:00Z" })).await;
        let times: Vec<&str> = data["klines"].as_array().unwrap().iter().map(|b| b["time"].as_str().unwrap()).collect();
        assert_eq!(times.len(), 20, "et inclusive: {through_et}: {times:?}");
        assert!(times.last().unwrap().starts_with("2024-12-31T00:00:00"), "et inclusive: {through_et}: {times:?}");
        assert!(times.first().unwrap().starts_with("2024-12-12T00:00:00"), "et inclusive: {through_et}: {times:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bars_from_the_source_are_not_served() {
    let fake = FakeItick::start().await;
    fake.serve_invalid_bar(true);
    let app = app_on(&fake, &[]).await;
    let data = app.data(None, KLINES, json!({ "before": "2025-01-01T00:00:00Z" })).await;
    for bar in data["klines"].as_array().unwrap() {
        let high: rust_decimal::Decimal = bar["high"].as_str().unwrap().parse().unwrap();
        let low: rust_decimal::Decimal = bar["low"].as_str().unwrap().parse().unwrap();
        assert!(high >= low, "{bar}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_source_answers_when_the_first_fails_and_says_so() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[("FINQL_MARKET_SOURCE", "itick,simulated"), ("FINQL_QUOTE_TTL_MS", "1")]).await;
    let first = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(first["quotes"][0]["source"], "ITICK");
    fake.set_down(true);
    // Real time: the quote cache's TTL (moka's own clock) is what must pass; nothing shows it.
    tokio::time::sleep(Duration::from_millis(20)).await; // let the 1 ms quote TTL pass
    let fallback = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(fallback["quotes"][0]["source"], "SIMULATED");
    assert_eq!(fallback["quotes"][0]["stale"], false);
    fake.set_down(false);
    tokio::time::sleep(Duration::from_millis(20)).await; // the fallback's quote expires (real TTL)
    let back = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(back["quotes"][0]["source"], "ITICK");
}

fn calls_to(fake: &FakeItick, endpoint: &str) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|(path, _)| path.rsplit('/').next() == Some(endpoint))
        .map(|(path, query)| format!("{path}?region={}", query.get("region").cloned().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_books_and_latest_klines_of_many_securities_are_batched_per_region() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[]).await;
    let query = r#"{ securities(region: US, assetClass: STOCK, first: 25) { nodes { symbol
        orderBook(levels: 2) { bids { price } asks { price } }
        klines(interval: ONE_DAY, limit: 3) { time close } } } }"#;
    let data = app.data(None, query, json!({})).await;
    let nodes = data["securities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 25);
    for node in nodes {
        assert_eq!(node["orderBook"]["bids"].as_array().unwrap().len(), 2, "{node}");
        assert_eq!(node["orderBook"]["asks"].as_array().unwrap().len(), 2, "{node}");
        assert_eq!(node["klines"].as_array().unwrap().len(), 3, "{node}");
    }
    assert_eq!(calls_to(&fake, "depths"), ["/stock/depths?region=US"]);
    assert_eq!(calls_to(&fake, "klines"), ["/stock/klines?region=US"]);
    assert!(calls_to(&fake, "depth").is_empty() && calls_to(&fake, "kline").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_order_books_batch_per_region_and_a_lone_one_uses_the_single_endpoint() {
    let fake = FakeItick::start().await;
    let app = app_on(&fake, &[]).await;
    let query = r#"{
        a: orderBook(symbol: "AAPL.US", levels: 1) { bids { price } }
        m: orderBook(symbol: "MSFT.US", levels: 1) { bids { price } }
        t: orderBook(symbol: "700.HK", levels: 1) { bids { price } }
        x: orderBook(symbol: "NOPE.US", levels: 1) { bids { price } } }"#;
    let body = app.gql(None, query, json!({})).await;
    assert_eq!(body["data"]["a"]["bids"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"]["t"]["bids"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    assert_eq!(calls_to(&fake, "depths"), ["/stock/depths?region=US"]);
    assert_eq!(calls_to(&fake, "depth"), ["/stock/depth?region=HK"]);
}
