//! The instrument catalog (`market::graphql::securities`): `security`, `securities`, symbols,
//! and the market data a security links to.

use rust_decimal::Decimal;
use serde_json::json;

use super::{app, dec};
use crate::helpers::*;

const SECURITY: &str = "query($s: String!) { security(symbol: $s) { symbol assetClass name region exchange currency lotSize sector industry } }";

crate::backend_tests!(
    looks_up_by_canonical_symbol,
    symbols_are_canonicalised,
    malformed_and_unknown_symbols_are_named,
    stock_and_future_do_not_collide,
    search_matches_symbol_and_name_case_insensitively,
    filters_by_region_and_asset_class,
    paginates_the_whole_catalog,
);

async fn looks_up_by_canonical_symbol(app: TestApp) {
    let data = app.data(None, SECURITY, json!({ "s": "AAPL.US" })).await;
    assert_eq!(
        data["security"],
        json!({
            "symbol": "AAPL.US", "assetClass": "STOCK", "name": "Apple Inc.", "region": "US", "exchange": "XNAS",
            "currency": "USD", "lotSize": "1", "sector": "Information Technology",
            "industry": "Technology Hardware, Storage & Peripherals"
        })
    );
    let moutai = app.data(None, SECURITY, json!({ "s": "600519.SH" })).await;
    assert_eq!(moutai["security"]["currency"], "CNY");
    assert_eq!(moutai["security"]["lotSize"], "100");
    let eurusd = app.data(None, SECURITY, json!({ "s": "FX:EURUSD" })).await;
    assert_eq!(eurusd["security"]["assetClass"], "FOREX");
    assert_eq!(eurusd["security"]["exchange"], json!(null));
}

async fn symbols_are_canonicalised(app: TestApp) {
    for (input, canonical) in [("0700.hk", "700.HK"), (" aapl.us ", "AAPL.US"), ("crypto:btcusdt", "CRYPTO:BTCUSDT")] {
        let data = app.data(None, SECURITY, json!({ "s": input })).await;
        assert_eq!(data["security"]["symbol"], canonical, "{input}");
    }
}

async fn malformed_and_unknown_symbols_are_named(app: TestApp) {
    for bad in ["AAPL", "AAPL.XX", "FX:EUR", "70A.HK", "BOGUS:X"] {
        let body = app.gql(None, SECURITY, json!({ "s": bad })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(&format!("`{bad}`")), "{body}");
    }
    let body = app.gql(None, SECURITY, json!({ "s": "ZZZZ.US" })).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("`ZZZZ.US`"), "{body}");
}

async fn stock_and_future_do_not_collide(app: TestApp) {
    let future = app.data(None, SECURITY, json!({ "s": "FUT:CL.US" })).await;
    assert_eq!(future["security"]["assetClass"], "FUTURE");
    assert_eq!(future["security"]["exchange"], "XNYM");
    // No stock trades as CL on a US exchange in the catalog: the stock form is unknown.
    let stock = app.gql(None, SECURITY, json!({ "s": "CL.US" })).await;
    assert_eq!(error_code(&stock), "NOT_FOUND");
}

const SEARCH: &str = "query($search: String, $region: Region, $assetClass: AssetClass, $first: Int, $after: String) {
  securities(search: $search, region: $region, assetClass: $assetClass, first: $first, after: $after) {
    totalCount nodes { symbol region assetClass } pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}";

fn symbols(data: &serde_json::Value) -> Vec<String> {
    data["securities"]["nodes"].as_array().unwrap().iter().map(|n| n["symbol"].as_str().unwrap().to_owned()).collect()
}

async fn search_matches_symbol_and_name_case_insensitively(app: TestApp) {
    let by_name = app.data(None, SEARCH, json!({ "search": "MOUTAI" })).await;
    assert_eq!(symbols(&by_name), ["600519.SH"]);
    let by_symbol = app.data(None, SEARCH, json!({ "search": "700.hk" })).await;
    assert_eq!(symbols(&by_symbol), ["700.HK"]);
    let tencent = app.data(None, SEARCH, json!({ "search": "tencent" })).await;
    assert_eq!(symbols(&tencent), ["700.HK"]);
    // LIKE wildcards in the input are literal characters.
    let wildcard = app.data(None, SEARCH, json!({ "search": "%" })).await;
    assert_eq!(wildcard["securities"]["totalCount"], 0);
    let too_long = app.gql(None, SEARCH, json!({ "search": "x".repeat(101) })).await;
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT");
}

async fn filters_by_region_and_asset_class(app: TestApp) {
    let hk = app.data(None, SEARCH, json!({ "region": "HK", "assetClass": "STOCK", "first": 100 })).await;
    let nodes = hk["securities"]["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 15, "at least 15 Hong Kong stocks: {}", nodes.len());
    assert!(nodes.iter().all(|n| n["region"] == "HK" && n["assetClass"] == "STOCK"));
    let crypto = app.data(None, SEARCH, json!({ "assetClass": "CRYPTO", "first": 100 })).await;
    assert!(symbols(&crypto).contains(&"CRYPTO:BTCUSDT".to_owned()));
    assert!(symbols(&crypto).iter().all(|s| s.starts_with("CRYPTO:")));
}

async fn paginates_the_whole_catalog(app: TestApp) {
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let page = app.data(None, SEARCH, json!({ "first": 25, "after": after })).await;
        let connection = &page["securities"];
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], !seen.is_empty());
        seen.extend(symbols(&page));
        if connection["pageInfo"]["hasNextPage"] == false {
            assert_eq!(connection["totalCount"].as_u64().unwrap() as usize, seen.len());
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert!(seen.len() >= 100, "the catalog ships at least 100 instruments: {}", seen.len());
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ordered by symbol, no duplicates");
    let too_many = app.gql(None, SEARCH, json!({ "first": 101 })).await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
    let bad_cursor = app.gql(None, SEARCH, json!({ "after": "garbage" })).await;
    assert_eq!(error_code(&bad_cursor), "BAD_USER_INPUT");
}

/// Every catalog row's symbol is already in canonical form, and parses as its asset class.
#[test]
fn catalog_symbols_are_canonical() {
    let catalog = include_str!("../../../migration/src/catalog.csv");
    let mut count = 0;
    for line in catalog.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let symbol = line.split(',').next().unwrap();
        let parsed = finql::reference::Symbol::parse(symbol).unwrap_or_else(|e| panic!("{symbol}: {e:?}"));
        assert_eq!(parsed.as_str(), symbol, "catalog symbols are canonical");
        count += 1;
    }
    assert!(count >= 100, "{count} instruments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn securities_link_to_their_market_data() {
    let app = app().await;
    let query =
        r#"{ securities(region: US, assetClass: STOCK, first: 50) { nodes { symbol quote { symbol last } } } }"#;
    let data = app.data(None, query, json!({})).await;
    let nodes = data["securities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert!(nodes.iter().all(|n| n["quote"]["symbol"] == n["symbol"] && dec(&n["quote"]["last"]) > Decimal::ZERO));
    let one = r#"{ security(symbol: "FUT:GC.US") { klines(interval: ONE_WEEK, limit: 4) { time close } orderBook(levels: 2) { bids { price } } } }"#;
    let data = app.data(None, one, json!({})).await;
    assert_eq!(data["security"]["klines"].as_array().unwrap().len(), 4);
    assert_eq!(data["security"]["orderBook"]["bids"].as_array().unwrap().len(), 2);
}
