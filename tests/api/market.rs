//! Market data on the embedded simulated market: quotes, klines, order books, ticks.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::*;

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}")).parse().unwrap()
}

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, &[]).await.unwrap()
}

const QUOTE: &str = "query($s: String!) { quote(symbol: $s) {
  symbol last open high low prevClose change changePercent volume turnover timestamp tradingStatus source stale } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_is_consistent_and_says_where_it_came_from() {
    let app = app().await;
    let quote = app.data(None, QUOTE, json!({ "s": "aapl.us" })).await["quote"].clone();
    assert_eq!(quote["symbol"], "AAPL.US");
    assert_eq!(quote["source"], "simulated");
    assert_eq!(quote["stale"], false);
    assert_eq!(quote["tradingStatus"], "NORMAL");
    let (last, high, low, prev) =
        (dec(&quote["last"]), dec(&quote["high"]), dec(&quote["low"]), dec(&quote["prevClose"]));
    assert!(last > Decimal::ZERO && low <= last && last <= high, "{quote}");
    assert_eq!(dec(&quote["change"]), last - prev);
    let expected_pct = ((last - prev) * Decimal::ONE_HUNDRED / prev).round_dp(4);
    assert_eq!(dec(&quote["changePercent"]), expected_pct);
    // Prices are exact strings with the instrument's tick, not floats.
    assert!(quote["last"].as_str().unwrap().split('.').nth(1).is_none_or(|f| f.len() <= 2), "{quote}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_keep_the_order_asked_and_name_bad_symbols() {
    let app = app().await;
    let query = "query($s: [String!]!) { quotes(symbols: $s) { symbol source } }";
    let symbols = json!(["700.HK", "FX:EURUSD", "AAPL.US", "CRYPTO:BTCUSDT", "IDX:SPX", "FUT:CL.US", "600519.SH"]);
    let data = app.data(None, query, json!({ "s": symbols })).await;
    let got: Vec<&str> = data["quotes"].as_array().unwrap().iter().map(|q| q["symbol"].as_str().unwrap()).collect();
    assert_eq!(got, ["700.HK", "FX:EURUSD", "AAPL.US", "CRYPTO:BTCUSDT", "IDX:SPX", "FUT:CL.US", "600519.SH"]);
    let bad = app.gql(None, query, json!({ "s": ["AAPL.US", "NOPE"] })).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert!(bad["errors"][0]["message"].as_str().unwrap().contains("`NOPE`"), "{bad}");
    let unknown = app.gql(None, query, json!({ "s": ["AAPL.US", "ZZZZ.US"] })).await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    assert!(unknown["errors"][0]["message"].as_str().unwrap().contains("`ZZZZ.US`"), "{unknown}");
    let too_many: Vec<String> = (0..501).map(|i| format!("S{i}.US")).collect();
    let body = app.gql(None, query, json!({ "s": too_many })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_give_per_symbol_errors() {
    let app = app().await;
    let body = app
        .gql(None, r#"{ a: quote(symbol: "AAPL.US") { symbol } b: quote(symbol: "ZZZZ.US") { symbol } }"#, json!({}))
        .await;
    assert_eq!(body["data"]["a"]["symbol"], "AAPL.US");
    assert_eq!(body["errors"][0]["path"], json!(["b"]));
    assert_eq!(error_code(&body), "NOT_FOUND");
}

const KLINES: &str = "query($s: String!, $i: KlineInterval!, $limit: Int, $before: DateTime, $after: DateTime) {
  klines(symbol: $s, interval: $i, limit: $limit, before: $before, after: $after) { time open high low close volume turnover } }";

fn bars(data: &Value) -> Vec<Value> {
    data["klines"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_deterministic_oldest_first_and_well_formed() {
    let app = app().await;
    let vars = json!({ "s": "600519.SH", "i": "ONE_DAY", "limit": 30, "before": "2025-06-01T00:00:00Z" });
    let first = bars(&app.data(None, KLINES, vars.clone()).await);
    let again = bars(&app.data(None, KLINES, vars).await);
    assert_eq!(first.len(), 30);
    assert_eq!(first, again, "the same range twice gives the same bars");
    let other = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let elsewhere = bars(
        &other
            .data(
                None,
                KLINES,
                json!({ "s": "600519.SH", "i": "ONE_DAY", "limit": 30, "before": "2025-06-01T00:00:00Z" }),
            )
            .await,
    );
    assert_eq!(first, elsewhere, "another server computes the same history");
    let times: Vec<&str> = first.iter().map(|b| b["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert!(*times.last().unwrap() < "2025-06-01", "all before `before`");
    for bar in &first {
        let (o, h, l, c) = (dec(&bar["open"]), dec(&bar["high"]), dec(&bar["low"]), dec(&bar["close"]));
        assert!(l > Decimal::ZERO && l <= o.min(c) && h >= o.max(c), "{bar}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bars_of_every_interval_agree() {
    let app = app().await;
    // 2025-03-12 (UTC): its day bar and its 7 hourly bars (the session is 13:30–20:00 UTC).
    let day = bars(
        &app.data(
            None,
            KLINES,
            json!({ "s": "AAPL.US", "i": "ONE_DAY", "limit": 1, "before": "2025-03-13T00:00:00Z" }),
        )
        .await,
    );
    let hours = bars(
        &app.data(
            None,
            KLINES,
            json!({ "s": "AAPL.US", "i": "ONE_HOUR", "limit": 7, "before": "2025-03-13T00:00:00Z" }),
        )
        .await,
    );
    assert_eq!(day.len(), 1);
    assert_eq!(hours.len(), 7);
    assert_eq!(day[0]["time"], "2025-03-12T00:00:00+00:00");
    assert_eq!(hours[0]["time"], "2025-03-12T13:00:00+00:00");
    assert_eq!(day[0]["open"], hours[0]["open"]);
    assert_eq!(day[0]["close"], hours[6]["close"]);
    let high = hours.iter().map(|b| dec(&b["high"])).max().unwrap();
    let low = hours.iter().map(|b| dec(&b["low"])).min().unwrap();
    let volume: Decimal = hours.iter().map(|b| dec(&b["volume"])).sum();
    assert_eq!(dec(&day[0]["high"]), high);
    assert_eq!(dec(&day[0]["low"]), low);
    assert_eq!(dec(&day[0]["volume"]), volume);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_pages_forward_and_limits_are_checked() {
    let app = app().await;
    let after = bars(
        &app.data(
            None,
            KLINES,
            json!({ "s": "FX:EURUSD", "i": "ONE_HOUR", "limit": 5, "after": "2025-01-06T10:30:00Z" }),
        )
        .await,
    );
    let times: Vec<&str> = after.iter().map(|b| b["time"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2025-01-06T11:00:00+00:00",
            "2025-01-06T12:00:00+00:00",
            "2025-01-06T13:00:00+00:00",
            "2025-01-06T14:00:00+00:00",
            "2025-01-06T15:00:00+00:00"
        ]
    );
    for limit in [0, 1001] {
        let body = app.gql(None, KLINES, json!({ "s": "AAPL.US", "i": "ONE_DAY", "limit": limit })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "limit {limit}");
    }
    let live = bars(&app.data(None, KLINES, json!({ "s": "AAPL.US", "i": "ONE_MINUTE", "limit": 3 })).await);
    assert_eq!(live.len(), 3, "the latest bars, the last one in progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_books_are_ordered_and_straddle_the_last_price() {
    let app = app().await;
    let query = r#"{ orderBook(symbol: "700.HK", levels: 5) { symbol bids { price volume orders } asks { price volume orders } timestamp } }"#;
    let book = app.data(None, query, json!({})).await["orderBook"].clone();
    let bids: Vec<Decimal> = book["bids"].as_array().unwrap().iter().map(|l| dec(&l["price"])).collect();
    let asks: Vec<Decimal> = book["asks"].as_array().unwrap().iter().map(|l| dec(&l["price"])).collect();
    assert_eq!((bids.len(), asks.len()), (5, 5));
    assert!(bids.windows(2).all(|w| w[0] > w[1]), "bids best (highest) first: {bids:?}");
    assert!(asks.windows(2).all(|w| w[0] < w[1]), "asks best (lowest) first: {asks:?}");
    assert!(bids[0] < asks[0], "no crossed book");
    let body = app.gql(None, r#"{ orderBook(symbol: "700.HK", levels: 51) { symbol } }"#, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_are_recent_trades_newest_last() {
    let app = app().await;
    let data = app
        .data(
            None,
            r#"{ ticks(symbol: "CRYPTO:BTCUSDT", limit: 10) { symbol price volume timestamp direction } }"#,
            json!({}),
        )
        .await;
    let ticks = data["ticks"].as_array().unwrap();
    assert!(!ticks.is_empty() && ticks.len() <= 10);
    let times: Vec<&str> = ticks.iter().map(|t| t["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "newest last: {times:?}");
    assert!(ticks.iter().all(|t| dec(&t["price"]) > Decimal::ZERO && dec(&t["volume"]) > Decimal::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn securities_link_to_their_market_data() {
    let app = app().await;
    let query =
        r#"{ securities(region: "US", assetClass: STOCK, first: 50) { nodes { symbol quote { symbol last } } } }"#;
    let data = app.data(None, query, json!({})).await;
    let nodes = data["securities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert!(nodes.iter().all(|n| n["quote"]["symbol"] == n["symbol"] && dec(&n["quote"]["last"]) > Decimal::ZERO));
    let one = r#"{ security(symbol: "FUT:GC.US") { klines(interval: ONE_WEEK, limit: 4) { time close } orderBook(levels: 2) { bids { price } } } }"#;
    let data = app.data(None, one, json!({})).await;
    assert_eq!(data["security"]["klines"].as_array().unwrap().len(), 4);
    assert_eq!(data["security"]["orderBook"]["bids"].as_array().unwrap().len(), 2);
}
