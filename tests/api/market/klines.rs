//! `klines` (`market::graphql::klines`) on the embedded simulated market: deterministic history,
//! oldest first and well formed, every interval agreeing, paging forward and the limits.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{app, dec};
use crate::helpers::*;

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
    assert_eq!(day[0]["time"], "2025-03-12T00:00:00.000000Z");
    assert_eq!(hours[0]["time"], "2025-03-12T13:00:00.000000Z");
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
            "2025-01-06T11:00:00.000000Z",
            "2025-01-06T12:00:00.000000Z",
            "2025-01-06T13:00:00.000000Z",
            "2025-01-06T14:00:00.000000Z",
            "2025-01-06T15:00:00.000000Z"
        ]
    );
    for limit in [0, 1001] {
        let body = app.gql(None, KLINES, json!({ "s": "AAPL.US", "i": "ONE_DAY", "limit": limit })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "limit {limit}");
    }
    let live = bars(&app.data(None, KLINES, json!({ "s": "AAPL.US", "i": "ONE_MINUTE", "limit": 3 })).await);
    assert_eq!(live.len(), 3, "the latest bars, the last one in progress");
}
