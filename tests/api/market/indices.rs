//! Indices in the catalog: a computed level, not something that trades. No order book (asked for
//! one, the client is told so before any source is called) and no volume or turnover (null in
//! quotes and klines, whatever the source reports), on the simulated market and through iTick.

use serde_json::{Value, json};

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

const BOOK: &str = "query($s: String!) { orderBook(symbol: $s, levels: 3) { symbol bids { price } } }";
const SECURITY_BOOK: &str = "query($s: String!) { security(symbol: $s) { symbol orderBook(levels: 3) { symbol } } }";
const VOLUMES: &str = "query($s: String!) {
  quote(symbol: $s) { symbol volume turnover }
  klines(symbol: $s, interval: ONE_DAY, limit: 3) { time close volume turnover }
  before: klines(symbol: $s, interval: ONE_HOUR, limit: 3, before: \"2026-11-02T00:00:00Z\") { time volume turnover }
}";
const INDICES: &str = "{ securities(assetClass: INDEX, first: 100) { nodes { symbol } } }";

fn index_symbols(data: &Value) -> Vec<String> {
    data["securities"]["nodes"].as_array().unwrap().iter().map(|n| n["symbol"].as_str().unwrap().to_owned()).collect()
}

fn assert_no_book(body: &Value, symbol: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{symbol}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(symbol) && message.contains("indices have no order book"), "{message}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "symbol", "{body}");
}

crate::backend_tests!(every_index_refuses_an_order_book_and_has_no_volume);

async fn every_index_refuses_an_order_book_and_has_no_volume(app: TestApp) {
    let indices = index_symbols(&app.data(None, INDICES, json!({})).await);
    assert_eq!(indices.len(), 12, "{indices:?}");
    for symbol in &indices {
        assert!(symbol.starts_with("IDX:"), "the INDEX class is the IDX: namespace: {symbol}");
        assert_no_book(&app.gql(None, BOOK, json!({ "s": symbol })).await, symbol);
        assert_no_book(&app.gql(None, SECURITY_BOOK, json!({ "s": symbol })).await, symbol);
        let data = app.data(None, VOLUMES, json!({ "s": symbol })).await;
        assert_eq!((&data["quote"]["volume"], &data["quote"]["turnover"]), (&json!(null), &json!(null)), "{data}");
        for series in ["klines", "before"] {
            let bars = data[series].as_array().unwrap();
            assert!(!bars.is_empty(), "{symbol} {series}: {data}");
            assert!(bars.iter().all(|b| b["volume"].is_null() && b["turnover"].is_null()), "{symbol}: {data}");
        }
    }
    // Everything else still has its book and volumes: the rule is about indices only.
    let stock = app.data(None, VOLUMES, json!({ "s": "AAPL.US" })).await;
    assert!(stock["quote"]["volume"].is_string() && stock["quote"]["turnover"].is_string(), "{stock}");
    assert!(stock["klines"].as_array().unwrap().iter().all(|b| b["volume"].is_string()), "{stock}");
    for symbol in ["AAPL.US", "SPY.US", "FUT:ES.US", "CRYPTO:BTCUSDT"] {
        let book = app.data(None, BOOK, json!({ "s": symbol })).await;
        assert_eq!(book["orderBook"]["symbol"], symbol);
    }
    // An unknown index is unknown, not bookless.
    assert_eq!(error_code(&app.gql(None, BOOK, json!({ "s": "IDX:NOPE" })).await), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_itick_an_index_book_makes_no_call_and_its_volume_is_dropped() {
    let fake = FakeItick::start().await;
    let base = fake.base_url();
    let vars = [("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", TOKEN)];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    assert_no_book(&app.gql(None, BOOK, json!({ "s": "IDX:HSI" })).await, "IDX:HSI");
    // A batch of books: the index answers its error, the stock its book.
    let both = "{ a: orderBook(symbol: \"IDX:SPX\") { symbol } b: orderBook(symbol: \"AAPL.US\") { symbol } }";
    let body = app.gql(None, both, json!({})).await;
    assert_eq!(body["data"]["b"]["symbol"], "AAPL.US", "{body}");
    assert!(body["data"]["a"].is_null(), "{body}");
    let depth_paths: Vec<String> =
        fake.requests().into_iter().map(|(path, _)| path).filter(|path| path.contains("depth")).collect();
    assert_eq!(depth_paths, ["/stock/depth"], "no depth call for an index");
    assert!(fake.requests().iter().all(|(path, _)| !path.starts_with("/indices/")), "{:?}", fake.requests());

    // The fake reports a volume for indices, as iTick does; finql serves none.
    let quotes = "{ quotes(symbols: [\"IDX:SPX\", \"AAPL.US\"]) { symbol volume turnover } }";
    let data = app.data(None, quotes, json!({})).await;
    assert_eq!(data["quotes"][0]["volume"], json!(null), "{data}");
    assert_eq!(data["quotes"][0]["turnover"], json!(null), "{data}");
    assert!(data["quotes"][1]["volume"].is_string(), "{data}");
    let raw: Vec<_> = fake.requests().into_iter().filter(|(path, _)| path.starts_with("/indices/quote")).collect();
    assert!(!raw.is_empty(), "the index quote did come from the fake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_index_bars_are_served_without_volume() {
    use sea_orm::{ConnectionTrait, Statement};

    let fake = FakeItick::start().await;
    let base = fake.base_url();
    let vars = [("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", TOKEN)];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let query = "query($limit: Int) { klines(symbol: \"IDX:SPX\", interval: ONE_HOUR, limit: $limit,
      before: \"2026-11-02T00:00:00Z\") { time volume turnover } }";
    let first = app.data(None, query, json!({ "limit": 5 })).await;
    assert!(first["klines"].as_array().unwrap().iter().all(|b| b["volume"].is_null()), "{first}");
    let db = &app.state.db;
    let sql = |text: &str| Statement::from_string(db.get_database_backend(), text.to_owned());
    // Stored as "no volume".
    let stored = db.query_all_raw(sql("SELECT volume FROM klines WHERE symbol = 'IDX:SPX'")).await.unwrap();
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|row| row.try_get_by_index::<String>(0).unwrap().is_empty()));
    // Rows an earlier release stored with the source's volume are served without it too.
    db.execute_raw(sql("UPDATE klines SET volume = '123', turnover = '456' WHERE symbol = 'IDX:SPX'")).await.unwrap();
    fake.reset_calls();
    let again = app.data(None, query, json!({ "limit": 3 })).await;
    assert_eq!(fake.total_calls(), 0, "served from storage");
    let bars = again["klines"].as_array().unwrap();
    assert_eq!(bars.len(), 3);
    assert!(bars.iter().all(|b| b["volume"].is_null() && b["turnover"].is_null()), "{again}");
}
