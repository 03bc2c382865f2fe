//! `quote` and `quotes` (`market::graphql::quotes`) on the embedded simulated market: consistent
//! quotes that name their source, the order asked kept, and errors per symbol.

use rust_decimal::Decimal;
use serde_json::json;

use super::{app, dec};
use crate::helpers::*;

const QUOTE: &str = "query($s: String!) { quote(symbol: $s) {
  symbol last open high low prevClose change changePercent volume turnover timestamp tradingStatus source stale } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_is_consistent_and_says_where_it_came_from() {
    let app = app().await;
    let quote = app.data(None, QUOTE, json!({ "s": "aapl.us" })).await["quote"].clone();
    assert_eq!(quote["symbol"], "AAPL.US");
    assert_eq!(quote["source"], "SIMULATED");
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
