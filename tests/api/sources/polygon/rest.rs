//! Market data through the GraphQL API on the Polygon source, against a fake Polygon: batching
//! by market, exact values and their source, cursor pages re-aimed at the configured host with
//! the key, retries, and a rejected key falling through to the next source.

use serde_json::json;

use super::fake_rest::{FakePolygon, KEY, LAST_BAR_MS, price_of};
use crate::helpers::*;

async fn app_on(fake: &FakePolygon, key: &str) -> TestApp {
    let base = fake.base_url();
    let vars = [
        // Polygon's stream is not wired yet: live data comes from the simulated market.
        ("FINQL_MARKET_SOURCE", "polygon,simulated"),
        ("POLYGON_BASE_URL", base.as_str()),
        ("POLYGON_API_KEY", key),
        ("POLYGON_MAX_RETRIES", "2"),
        ("POLYGON_TIMEOUT_MS", "2000"),
    ];
    spawn_app(Backend::Sqlite, &vars).await.unwrap()
}

const QUOTES: &str = "query($s: [String!]!) { quotes(symbols: $s) { symbol last prevClose source timestamp } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_come_from_one_snapshot_call_per_market_with_their_source() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, KEY).await;
    let symbols = json!(["AAPL.US", "MSFT.US", "FX:EURUSD", "IDX:SPX", "IDX:IXIC"]);
    let data = app.data(None, QUOTES, json!({ "s": symbols })).await;
    let quotes = data["quotes"].as_array().unwrap();
    let tickers = ["AAPL", "MSFT", "C:EURUSD", "I:SPX", "I:COMP"];
    for (quote, ticker) in quotes.iter().zip(tickers) {
        assert_eq!(quote["source"], "POLYGON", "{quote}");
        assert_eq!(
            quote["last"].as_str().unwrap().parse::<f64>().unwrap().to_string(),
            price_of(ticker).parse::<f64>().unwrap().to_string(),
            "{ticker}"
        );
    }
    assert_eq!(quotes[0]["prevClose"], "100.5");
    // Nanoseconds on the stock snapshot, microseconds kept (`DateTime` has six digits).
    assert_eq!(quotes[0]["timestamp"], "2025-11-03T00:00:00.123456Z");
    let mut paths = fake.paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/v2/snapshot/locale/global/markets/forex/tickers",
            "/v2/snapshot/locale/us/markets/stocks/tickers",
            "/v3/snapshot/indices",
        ]
    );
    let indices = fake.requests().into_iter().find(|(p, _)| p == "/v3/snapshot/indices").unwrap().1;
    let mut asked: Vec<&str> = indices["ticker.any_of"].split(',').collect();
    asked.sort_unstable();
    assert_eq!(asked, ["I:COMP", "I:SPX"], "both indices in one call");
    assert!(fake.authorizations().iter().all(|a| a.as_deref() == Some("Bearer test-key")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klines_follow_cursor_pages_on_the_configured_host_until_the_bars_are_in() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, KEY).await;
    let query = r#"{ klines(symbol: "AAPL.US", interval: ONE_MINUTE, limit: 150, before: "2025-11-03T00:01:00Z") { time close source } }"#;
    let data = app.data(None, query, json!({})).await;
    let bars = data["klines"].as_array().unwrap();
    assert_eq!(bars.len(), 150);
    assert!(bars.iter().all(|bar| bar["source"] == "POLYGON"), "each bar says its source");
    let last = chrono::DateTime::from_timestamp_millis(LAST_BAR_MS).unwrap();
    assert_eq!(bars[149]["time"], last.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "the newest bar last");
    let first = last - chrono::Duration::minutes(149);
    assert_eq!(bars[0]["time"], first.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "oldest first, no gap");
    let pages: Vec<_> =
        fake.requests().into_iter().filter(|(p, _)| p.starts_with("/v2/aggs/ticker/AAPL/range/1/minute/")).collect();
    assert_eq!(pages.len(), 2, "two pages of 100 hold 150 bars: no third is read");
    assert_eq!(pages[0].1["sort"], "desc");
    assert_eq!(pages[0].1["adjusted"], "true");
    assert_eq!(pages[1].1["cursor"], "100", "the next_url's query, sent here rather than to its host");
    assert!(fake.authorizations().iter().all(|a| a.as_deref() == Some("Bearer test-key")), "the key put back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_trades_and_corporate_actions() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, KEY).await;
    let query = r#"{
        orderBook(symbol: "AAPL.US") { bids { price volume } asks { price volume } }
        ticks(symbol: "AAPL.US", limit: 3) { price volume timestamp source }
        security(symbol: "AAPL.US") { corporateActions { kind exDate ratio amount currency } }
    }"#;
    let data = app.data(None, query, json!({})).await;
    let book = &data["orderBook"];
    assert_eq!(book["bids"], json!([{ "price": price_of("AAPL"), "volume": "200" }]));
    assert_eq!(book["asks"], json!([{ "price": "999.99", "volume": "300" }]));
    let ticks = data["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 3);
    assert!(ticks.windows(2).all(|w| w[0]["timestamp"].as_str() < w[1]["timestamp"].as_str()), "newest last");
    assert_eq!(ticks[2]["volume"], "10", "the newest trade");
    assert!(ticks.iter().all(|tick| tick["source"] == "POLYGON"));
    let actions = data["security"]["corporateActions"].as_array().unwrap();
    let summary: Vec<(String, String)> = actions
        .iter()
        .map(|a| {
            (a["exDate"].as_str().unwrap().to_owned(), a["ratio"].as_str().or(a["amount"].as_str()).unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2014-06-09".to_owned(), "7:1".to_owned()),
            ("2020-08-31".to_owned(), "4:1".to_owned()),
            ("2025-08-11".to_owned(), "0.26".to_owned())
        ],
        "both pages of splits, then the dividend"
    );
    let second = fake.requests().into_iter().find(|(p, q)| p == "/v3/reference/splits" && q.contains_key("cursor"));
    assert_eq!(second.map(|(_, q)| q["cursor"].clone()).as_deref(), Some("page2"));
}

/// An item Polygon sends that cannot be read is left out, and counted per source and kind
/// beside the values validation refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_item_is_left_out_and_counted() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, KEY).await;
    // A split of zero shares, and one readable: every reference answer is this page.
    fake.set_body(
        r#"{"status": "OK", "request_id": "r", "results": [
            {"ticker": "AAPL", "execution_date": "2020-08-31", "split_from": 0, "split_to": 4},
            {"ticker": "AAPL", "execution_date": "2014-06-09", "split_from": 1, "split_to": 7}]}"#,
    );
    let data =
        app.data(None, r#"{ security(symbol: "AAPL.US") { corporateActions { exDate ratio } } }"#, json!({})).await;
    let splits: Vec<&serde_json::Value> =
        data["security"]["corporateActions"].as_array().unwrap().iter().filter(|a| a["ratio"].is_string()).collect();
    assert_eq!(splits, [&json!({ "exDate": "2014-06-09", "ratio": "7:1" })]);
    let text = app.client.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    let metrics = crate::metrics::exposition::Exposition::parse(&text);
    let rejected = metrics.sum("finql_upstream_rejected_values_total", &[("source", "polygon"), ("kind", "split")]);
    assert_eq!(rejected, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, KEY).await;
    fake.fail_next(1, 429);
    fake.fail_next(1, 503);
    let data = app.data(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(data["quotes"][0]["source"], "POLYGON");
    assert_eq!(fake.paths().len(), 3, "a 429, a 503, then the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_not_retried_and_the_next_source_answers() {
    let fake = FakePolygon::start().await;
    let app = app_on(&fake, "wrong-key-12345").await;
    let body = app.gql(None, QUOTES, json!({ "s": ["AAPL.US"] })).await;
    assert_eq!(body["data"]["quotes"][0]["source"], "SIMULATED", "the fallback source: {body}");
    assert!(!body.to_string().contains("wrong-key-12345"), "no secret in the answer: {body}");
    let snapshot_calls = fake.paths().iter().filter(|p| p.contains("/snapshot/")).count();
    assert_eq!(snapshot_calls, 1, "a 401 is final");
}
