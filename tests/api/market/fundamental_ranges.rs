//! Fundamentals ranges (issue 11): a day's figures are the same whatever range asks for it
//! (alone, inside a month, a year, or a five-year band read page by page), ranges hold trading
//! days only, and they are paged with `first`/`after` like the catalog.

use chrono::{Days, NaiveDate, Utc};
use finql::market::calendar;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    market::precision::{date, page, spread, stocks},
};

/// The point of `day` as the range `from..=to` serves it, found through the cursor (the day
/// before it) rather than by reading the whole range: `after` and `first: 1`.
async fn point_in(app: &TestApp, symbol: &str, from: NaiveDate, to: NaiveDate, day: NaiveDate) -> Value {
    let cursor = (day - Days::new(1)).to_string();
    let found = page(app, symbol, from, to, Some(1), Some(&cursor)).await;
    found["nodes"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_has_one_value_whatever_the_range() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let today = Utc::now().date_naive();
    let mut compared = 0;
    for (i, (symbol, region)) in stocks(&app).await.iter().enumerate().step_by(4) {
        // A spread of past trading days, and the latest one (whose price is live).
        let mut days: Vec<NaiveDate> = (0..3).map(|k| spread(i, k)).collect();
        days.push(today);
        for day in days.into_iter().filter(|d| calendar::is_trading_day(*region, *d)) {
            let alone = page(&app, symbol, day, day, None, None).await["nodes"].clone();
            let Some(alone) = alone.as_array().and_then(|nodes| nodes.first()).cloned() else { continue };
            assert_eq!(date(&alone["date"]), day);
            let month = point_in(&app, symbol, day - Days::new(15), (day + Days::new(15)).min(today), day).await;
            let band = point_in(&app, symbol, day - Days::new(5 * 365), day, day).await;
            let year = point_in(&app, symbol, day - Days::new(200), day + Days::new(165), day).await;
            assert_eq!(alone, month, "{symbol} {day}: alone vs a month");
            assert_eq!(alone, band, "{symbol} {day}: alone vs five years");
            assert_eq!(alone, year, "{symbol} {day}: alone vs a year");
            compared += 1;
        }
    }
    // Some spread days precede a stock's listing (no point, nothing to compare); 23 stocks × 4
    // days still leave well over 30 that must agree.
    assert!(compared >= 30, "{compared} days compared");
}

/// Today's point carries the live price of its moment: asked alone, and seconds later inside a
/// month and a five-year band, it is still the same point (the 209.24 vs 209.42: each
/// range used to be priced at the moment it was first asked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_point_is_the_same_in_ranges_asked_seconds_apart() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let today = Utc::now().date_naive();
    let mut alone = Vec::new();
    for (symbol, _) in stocks(&app).await.into_iter().step_by(3) {
        let nodes = page(&app, &symbol, today, today, None, None).await["nodes"].clone();
        if let Some(point) = nodes.as_array().and_then(|nodes| nodes.first()).cloned() {
            alone.push((symbol, point));
        }
    }
    // Across a second boundary: a live price would have moved.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    for (symbol, point) in &alone {
        let month = point_in(&app, symbol, today - Days::new(30), today, today).await;
        let band = point_in(&app, symbol, today - Days::new(5 * 365), today, today).await;
        assert_eq!(*point, month, "{symbol}: today alone vs a month");
        assert_eq!(*point, band, "{symbol}: today alone vs five years");
    }
}

/// A non-trading day asked alone has no point; a range's points are its trading days, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_hold_trading_days_only() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    for (i, (symbol, region)) in stocks(&app).await.iter().enumerate().step_by(6) {
        let to = spread(i, 5);
        let from = to - Days::new(120);
        let nodes = page(&app, symbol, from, to, None, None).await["nodes"].as_array().unwrap().clone();
        let dates: Vec<NaiveDate> = nodes.iter().map(|p| date(&p["date"])).collect();
        if dates.is_empty() {
            continue; // listed after the range (`listedAt`): nothing before it
        }
        assert!(dates.windows(2).all(|w| w[0] < w[1]), "{symbol}: oldest first, one a day");
        let trading: Vec<NaiveDate> =
            from.iter_days().take_while(|d| *d <= to).filter(|d| calendar::is_trading_day(*region, *d)).collect();
        // Every trading day from the first point on (a stock listed inside the range starts late).
        let listed: Vec<NaiveDate> = trading.iter().copied().skip_while(|d| Some(d) < dates.first()).collect();
        assert_eq!(dates, listed, "{symbol} {from}..{to}: exactly the trading days of the range");
        let closed =
            from.iter_days().take_while(|d| *d <= to).find(|d| !calendar::is_trading_day(*region, *d)).unwrap();
        let alone = page(&app, symbol, closed, closed, None, None).await;
        assert_eq!(alone["nodes"], json!([]), "{symbol} {closed}: the market was closed");
    }
}

/// Pages of any size, followed by their cursors, are the whole range; `pageInfo` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_their_cursors_to_the_whole_range() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let (from, to) = (NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(), NaiveDate::from_ymd_opt(2023, 9, 30).unwrap());
    for symbol in ["600519.SH", "AAPL.US", "700.HK"] {
        let whole = page(&app, symbol, from, to, None, None).await;
        assert_eq!(whole["nodes"].as_array().unwrap().len(), 1000, "the default page is the maximum, 1000");
        assert_eq!(whole["pageInfo"]["hasNextPage"], true, "four and a half years are more than a page");
        assert_eq!(whole["pageInfo"]["hasPreviousPage"], false);
        for size in [1000, 377, 64] {
            let (mut all, mut after, mut pages) = (Vec::new(), None::<String>, 0);
            loop {
                let p = page(&app, symbol, from, to, Some(size), after.as_deref()).await;
                let nodes = p["nodes"].as_array().unwrap();
                let cursors: Vec<&Value> = p["edges"].as_array().unwrap().iter().map(|e| &e["cursor"]).collect();
                assert_eq!(cursors, nodes.iter().map(|n| &n["date"]).collect::<Vec<_>>(), "a cursor is its date");
                assert_eq!(p["pageInfo"]["hasPreviousPage"], after.is_some());
                assert_eq!(p["pageInfo"]["endCursor"], nodes.last().map_or(Value::Null, |n| n["date"].clone()));
                all.extend(nodes.iter().cloned());
                pages += 1;
                if p["pageInfo"]["hasNextPage"] != true {
                    break;
                }
                assert_eq!(nodes.len() as i64, size, "a page before the last is full");
                after = p["pageInfo"]["endCursor"].as_str().map(String::from);
            }
            assert!(pages > 1, "{symbol} {size}");
            assert_eq!(all[..1000], whole["nodes"].as_array().unwrap()[..], "{symbol} {size}: the same points");
            assert!(date(&all.last().unwrap()["date"]) <= to);
            assert!(all.len() > 1000);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paging_arguments_are_bad_user_input() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let query = crate::market::precision::FUNDAMENTALS;
    for (first, after) in [(json!(1001), Value::Null), (json!(-1), Value::Null), (json!(10), json!("yesterday"))] {
        let vars = json!({ "s": "AAPL.US", "from": "2024-01-01", "to": "2024-12-31", "first": first, "after": after });
        let body = app.gql(None, query, vars).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{first} {after}: {body}");
    }
    // `first: 0` answers no points but says whether there are any.
    let empty = page(
        &app,
        "AAPL.US",
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        Some(0),
        None,
    )
    .await;
    assert_eq!(empty["nodes"], json!([]));
    assert_eq!(empty["pageInfo"]["hasNextPage"], true);
}
