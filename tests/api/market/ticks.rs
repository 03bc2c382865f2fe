//! `ticks` (`market::graphql::ticks`) on the embedded simulated market: recent trades, newest
//! last.

use rust_decimal::Decimal;
use serde_json::json;

use super::{app, dec};

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
