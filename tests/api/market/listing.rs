//! Listing dates: `Security.listedAt` for the whole catalog, and market data that never goes
//! back past it (a window entirely before it is an empty list, answered without the source).

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

const CATALOG_PAGE: &str = "query($after: String) { securities(first: 100, after: $after) {
  nodes { symbol assetClass listedAt } pageInfo { hasNextPage endCursor } } }";
const KLINES: &str = "query($s: String!, $i: KlineInterval!, $limit: Int, $before: DateTime, $after: DateTime) {
  klines(symbol: $s, interval: $i, limit: $limit, before: $before, after: $after) { time } }";

async fn catalog(app: &TestApp) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(None, CATALOG_PAGE, json!({ "after": after })).await["securities"].clone();
        nodes.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

fn dates(bars: &Value) -> Vec<String> {
    bars.as_array().unwrap().iter().map(|b| b["time"].as_str().unwrap()[..10].to_owned()).collect()
}

crate::backend_tests!(every_instrument_has_a_plausible_listing_date, no_bars_before_listing);

async fn every_instrument_has_a_plausible_listing_date(app: TestApp) {
    let nodes = catalog(&app).await;
    assert_eq!(nodes.len(), 140);
    let listed = |symbol: &str| nodes.iter().find(|n| n["symbol"] == symbol).unwrap()["listedAt"].clone();
    assert_eq!(listed("AAPL.US"), "1980-12-12");
    assert_eq!(listed("700.HK"), "2004-06-16");
    assert_eq!(listed("600519.SH"), "2001-08-27");
    assert_eq!(listed("FX:EURUSD"), "1999-01-04");
    assert_eq!(listed("IDX:SPX"), "1957-03-04");
    assert_eq!(listed("CRYPTO:BTCUSDT"), "2017-08-17");
    assert_eq!(listed("FUT:ES.US"), "1997-09-09");
    let unknown: Vec<&str> =
        nodes.iter().filter(|n| n["listedAt"].is_null()).map(|n| n["symbol"].as_str().unwrap()).collect();
    assert_eq!(unknown, ["BAC.US", "JPM.US", "WFC.US"], "null only where the date is not on record");
    for node in &nodes {
        let index_symbol = node["symbol"].as_str().unwrap().starts_with("IDX:");
        assert_eq!(index_symbol, node["assetClass"] == "INDEX", "the IDX: namespace is the INDEX class: {node}");
    }
    let today = Utc::now().date_naive();
    for node in nodes.iter().filter(|n| !n["listedAt"].is_null()) {
        let day: NaiveDate = node["listedAt"].as_str().unwrap().parse().unwrap();
        assert!(day <= today, "{node}");
        // Exchanges open on weekdays: only crypto trades at weekends.
        if node["assetClass"] != "CRYPTO" {
            assert!(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun), "listed on a weekend: {node}");
        }
    }
    let aapl = app.data(None, "{ security(symbol: \"AAPL.US\") { listedAt } }", json!({})).await;
    assert_eq!(aapl["security"]["listedAt"], "1980-12-12");
}

async fn no_bars_before_listing(app: TestApp) {
    let ask = |interval: &str, limit: i32, before: Option<&str>, after: Option<&str>| json!({ "s": "AAPL.US", "i": interval, "limit": limit, "before": before, "after": after });
    // Entirely before the listing day: an empty list, not an error.
    for vars in [
        ask("ONE_DAY", 10, Some("1980-12-12T00:00:00Z"), None),
        ask("ONE_DAY", 10, Some("1975-06-01T00:00:00Z"), Some("1975-01-01T00:00:00Z")),
        ask("ONE_HOUR", 10, Some("1980-12-11T23:00:00Z"), None),
        ask("ONE_MONTH", 10, Some("1980-12-01T00:00:00Z"), None),
    ] {
        let bars = app.data(None, KLINES, vars.clone()).await["klines"].clone();
        assert_eq!(bars, json!([]), "{vars}");
    }
    // Straddling it: the first bar is the listing day's.
    let first_days = app.data(None, KLINES, ask("ONE_DAY", 3, None, Some("1980-01-01T00:00:00Z"))).await;
    assert_eq!(dates(&first_days["klines"])[0], "1980-12-12", "{first_days}");
    let back = app.data(None, KLINES, ask("ONE_DAY", 10, Some("1980-12-15T00:00:00Z"), None)).await;
    let back = dates(&back["klines"]);
    assert_eq!(back.first().map(String::as_str), Some("1980-12-12"), "{back:?}");
    // A week or month that holds the listing day is kept: the instrument traded in it.
    let week = app.data(None, KLINES, ask("ONE_WEEK", 2, None, Some("1980-01-01T00:00:00Z"))).await;
    assert_eq!(dates(&week["klines"])[0], "1980-12-08", "{week}");
    let month = app.data(None, KLINES, ask("ONE_MONTH", 2, Some("1981-02-01T00:00:00Z"), None)).await;
    assert_eq!(dates(&month["klines"]), ["1980-12-01", "1981-01-01"], "{month}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_before_listing_asks_no_source() {
    let fake = FakeItick::start().await;
    let base = fake.base_url();
    let vars = [("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", TOKEN)];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let before_listing = json!({ "s": "700.HK", "i": "ONE_DAY", "limit": 5, "before": "2004-06-16T00:00:00Z" });
    assert_eq!(app.data(None, KLINES, before_listing).await["klines"], json!([]));
    assert_eq!(fake.total_calls(), 0, "{:?}", fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_the_catalog_the_first_bar_is_on_or_after_the_listing_day() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    for node in catalog(&app).await.iter().filter(|n| !n["listedAt"].is_null()) {
        let (symbol, listed) = (node["symbol"].as_str().unwrap(), node["listedAt"].as_str().unwrap());
        let before = format!("{listed}T00:00:00Z");
        let none = app.data(None, KLINES, json!({ "s": symbol, "i": "ONE_DAY", "limit": 5, "before": before })).await;
        assert_eq!(none["klines"], json!([]), "{symbol}: nothing before {listed}");
        let first = app
            .data(None, KLINES, json!({ "s": symbol, "i": "ONE_DAY", "limit": 2, "after": "1890-01-01T00:00:00Z" }))
            .await;
        let days = dates(&first["klines"]);
        assert!(!days.is_empty(), "{symbol}: {first}");
        assert!(days[0].as_str() >= listed, "{symbol}: first bar {} before listing {listed}", days[0]);
    }
}
