//! Adjusted aggregates (issue 11): a week or month of a `FORWARD` or `BACKWARD` series is the
//! exact aggregate of its adjusted days (first open, highest high, lowest low, last close, sums
//! of volume and turnover), around every split of the catalog's stocks and at a spread of other
//! dates. Adjusted volumes of whole shares stay whole.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    market::precision::{date, dec, places, spread, stocks},
};

const QUERY: &str = "query($s: String!, $i: KlineInterval!, $n: Int!, $before: DateTime, $adjust: KlineAdjust) {
  klines(symbol: $s, interval: $i, limit: $n, before: $before, adjust: $adjust) {
    time open high low close volume turnover } }";

async fn bars(
    app: &TestApp,
    symbol: &str,
    interval: &str,
    n: usize,
    before: DateTime<Utc>,
    adjust: &str,
) -> Vec<Value> {
    let vars = json!({ "s": symbol, "i": interval, "n": n, "before": before.to_rfc3339(), "adjust": adjust });
    app.data(None, QUERY, vars).await["klines"].as_array().unwrap().clone()
}

fn time(bar: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(bar["time"].as_str().unwrap()).unwrap().to_utc()
}

fn next_start(interval: &str, start: DateTime<Utc>) -> DateTime<Utc> {
    match interval {
        "ONE_WEEK" => start + Days::new(7),
        _ => start + Months::new(1),
    }
}

/// Checks that every bar of `interval` before `before` is the aggregate of its days; returns how
/// many bars had days.
async fn check(app: &TestApp, symbol: &str, interval: &str, before: DateTime<Utc>, adjust: &str) -> usize {
    let (n, days_per_bar) = if interval == "ONE_WEEK" { (8, 7) } else { (3, 31) };
    let series = bars(app, symbol, interval, n, before, adjust).await;
    let Some(last) = series.last() else { return 0 };
    let end = next_start(interval, time(last));
    let days = bars(app, symbol, "ONE_DAY", n * days_per_bar + 7, end, adjust).await;
    let mut checked = 0;
    for bar in &series {
        let (start, next) = (time(bar), next_start(interval, time(bar)));
        let inside: Vec<&Value> = days.iter().filter(|d| time(d) >= start && time(d) < next).collect();
        let (Some(first), Some(last)) = (inside.first(), inside.last()) else { continue };
        let context = format!("{symbol} {interval} {adjust} {start}");
        assert_eq!(bar["open"], first["open"], "{context}");
        assert_eq!(bar["close"], last["close"], "{context}");
        assert_eq!(dec(&bar["high"]), inside.iter().map(|d| dec(&d["high"])).max().unwrap(), "{context}");
        assert_eq!(dec(&bar["low"]), inside.iter().map(|d| dec(&d["low"])).min().unwrap(), "{context}");
        assert_eq!(dec(&bar["volume"]), inside.iter().map(|d| dec(&d["volume"])).sum::<Decimal>(), "{context}");
        assert_eq!(dec(&bar["turnover"]), inside.iter().map(|d| dec(&d["turnover"])).sum::<Decimal>(), "{context}");
        for day in &inside {
            assert_eq!(places(&day["volume"]), places(&bar["volume"]), "{context}: one volume scale");
        }
        checked += 1;
    }
    checked
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// Around every split of the catalog (the weeks and months straddling it and those before and
/// after), both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_weeks_and_months_are_their_adjusted_days_around_splits() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let query = "query($s: String!) { security(symbol: $s) { corporateActions { kind exDate } } }";
    let (mut splits, mut checked) = (0, 0);
    for (symbol, _) in stocks(&app).await {
        let actions = app.data(None, query, json!({ "s": symbol })).await["security"]["corporateActions"].clone();
        for split in actions.as_array().unwrap().iter().filter(|a| a["kind"] == "SPLIT") {
            let ex = date(&split["exDate"]);
            // Ending a few weeks after the ex-date, so that the window straddles it.
            let before = midnight(ex + Days::new(24)).min(midnight(Utc::now().date_naive()));
            for adjust in ["FORWARD", "BACKWARD"] {
                for interval in ["ONE_WEEK", "ONE_MONTH"] {
                    checked += check(&app, &symbol, interval, before, adjust).await;
                }
            }
            splits += 1;
        }
    }
    // Each split: 8 weeks and 3 months, both ways (22 bars), all with days.
    assert!(splits >= 10 && checked >= splits * 20, "{splits} splits, {checked} bars");
}

/// At a spread of dates over many stocks (dividends restate every bar of a payer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_weeks_and_months_are_their_adjusted_days_at_any_date() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let mut checked = 0;
    for (i, (symbol, _)) in stocks(&app).await.iter().enumerate().step_by(5) {
        let day = spread(i, 2);
        let before = midnight(day.with_day(1).unwrap_or(day));
        for (adjust, interval) in
            [("FORWARD", "ONE_WEEK"), ("BACKWARD", "ONE_MONTH"), ("BACKWARD", "ONE_WEEK"), ("FORWARD", "ONE_MONTH")]
        {
            checked += check(&app, symbol, interval, before, adjust).await;
        }
    }
    assert!(checked > 150, "{checked} bars");
}
