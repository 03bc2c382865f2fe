//! `orderBook` (`market::graphql::books`) on the embedded simulated market: levels ordered,
//! straddling the last price, and the depth limit.

use rust_decimal::Decimal;
use serde_json::json;

use super::{app, dec};
use crate::helpers::*;

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
