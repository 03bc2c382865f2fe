//! The paging rules of `klines` (`market::window`), over GraphQL:
//! - neither cursor: the latest `limit` bars, the one in progress last;
//! - `before`: the last `limit` bars that end at or before it (the bar containing `before` is
//!   left out, even when `before` falls inside it);
//! - `after`, alone or with `before`: the first `limit` bars starting strictly after it, even
//!   when more than `limit` lie before `before`, and even across gaps where the market is closed.
//!
//! Hourly bars of a crypto pair (which trades every hour) give exact expectations; the gaps come
//! from the fake iTick serving no weekend bars.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

const KLINES: &str = "query($s: String!, $i: KlineInterval!, $limit: Int, $before: DateTime, $after: DateTime) {
  klines(symbol: $s, interval: $i, limit: $limit, before: $before, after: $after) { time } }";
const SECURITY_KLINES: &str = "query($s: String!, $limit: Int, $before: DateTime, $after: DateTime) {
  security(symbol: $s) { klines(interval: ONE_HOUR, limit: $limit, before: $before, after: $after) { time } } }";

async fn times(
    app: &TestApp,
    symbol: &str,
    interval: &str,
    limit: i32,
    before: Option<&str>,
    after: Option<&str>,
) -> Vec<String> {
    let vars = json!({ "s": symbol, "i": interval, "limit": limit, "before": before, "after": after });
    let data = app.data(None, KLINES, vars).await;
    hours_of(&data["klines"])
}

fn hours_of(bars: &Value) -> Vec<String> {
    let utc = |t: &str| t.parse::<DateTime<Utc>>().unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    bars.as_array().unwrap().iter().map(|b| utc(b["time"].as_str().unwrap())).collect()
}

/// `2026-10-05T{h}:00:00Z` for each hour.
fn at(day: &str, hours: impl IntoIterator<Item = u32>) -> Vec<String> {
    hours.into_iter().map(|h| format!("{day}T{h:02}:00:00Z")).collect()
}

const BTC: &str = "CRYPTO:BTCUSDT";
const DAY: &str = "2026-10-05";

crate::backend_tests!(
    before_leaves_out_the_bar_containing_it,
    after_gives_the_first_bars_of_a_longer_span,
    neither_and_future_cursors
);

async fn before_leaves_out_the_bar_containing_it(app: TestApp) {
    let expected = at(DAY, 7..10);
    // Inside the 10:00 bar: that bar reaches past `before`, so it is not returned.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 3, Some("2026-10-05T10:30:00Z"), None).await, expected);
    // At a bar's start (the usual cursor: the oldest bar held): the bars before it.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 3, Some("2026-10-05T10:00:00Z"), None).await, expected);
    // One second after a bar ends: that bar is in.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 3, Some("2026-10-05T10:00:01Z"), None).await, expected);
    assert_eq!(
        times(&app, BTC, "ONE_HOUR", 3, Some("2026-10-05T11:00:00Z"), None).await,
        at(DAY, 8..11),
        "the 10:00 bar ends at 11:00"
    );
    // Days: before noon on the 5th, the 5th's bar is not whole yet.
    let days = times(&app, BTC, "ONE_DAY", 2, Some("2026-10-05T12:00:00Z"), None).await;
    assert_eq!(days, ["2026-10-03T00:00:00Z", "2026-10-04T00:00:00Z"]);
    // Security.klines pages the same way.
    let vars = json!({ "s": BTC, "limit": 3, "before": "2026-10-05T10:30:00Z" });
    let data = app.data(None, SECURITY_KLINES, vars).await;
    assert_eq!(hours_of(&data["security"]["klines"]), at(DAY, 7..10));
}

async fn after_gives_the_first_bars_of_a_longer_span(app: TestApp) {
    let (after, before) = (Some("2026-10-05T00:00:00Z"), Some("2026-10-06T00:00:00Z"));
    // 23 bars lie strictly between them; `limit` 5 gives the first five, not the last.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 5, before, after).await, at(DAY, 1..6));
    // Paging on from the last bar's time walks the span in order, and ends with an empty page.
    let mut paged = Vec::new();
    let mut cursor = after.unwrap().to_owned();
    loop {
        let page = times(&app, BTC, "ONE_HOUR", 5, before, Some(&cursor)).await;
        let Some(last) = page.last() else { break };
        cursor = last.clone();
        paged.extend(page);
    }
    assert_eq!(paged, at(DAY, 1..24), "the whole span, once each, in order");
    assert_eq!(times(&app, BTC, "ONE_HOUR", 100, before, after).await, paged, "one big page is the same");
    // `after` inside a bar: that bar started before `after`, so it is left out.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 2, before, Some("2026-10-05T00:30:00Z")).await, at(DAY, 1..3));
    // `after` alone: the same first bars.
    assert_eq!(times(&app, BTC, "ONE_HOUR", 5, None, after).await, at(DAY, 1..6));
    // `after` must be earlier than `before`.
    let vars = json!({ "s": BTC, "i": "ONE_HOUR", "after": "2026-10-05T00:00:00Z", "before": "2026-10-05T00:00:00Z" });
    let body = app.gql(None, KLINES, vars).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{body}");
}

async fn neither_and_future_cursors(app: TestApp) {
    let current = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    let latest = times(&app, BTC, "ONE_HOUR", 3, None, None).await;
    let parse = |t: &String| t.parse::<DateTime<Utc>>().unwrap();
    // The bar in progress is the last one (unless the hour turned during the request).
    let last = parse(latest.last().unwrap());
    assert!(last == current || last == current + Duration::hours(1), "{latest:?} at {current}");
    assert_eq!(latest.len(), 3);
    // `before` in a later hour: the bar in progress ends by then, so it is in.
    let later = (current + Duration::hours(3)).to_rfc3339();
    let with_future = times(&app, BTC, "ONE_HOUR", 3, Some(&later), None).await;
    assert!(parse(with_future.last().unwrap()) >= current, "{with_future:?}");
    // `after` an hour ago: the bars since, the one in progress included.
    let hour_ago = (current - Duration::minutes(30)).to_rfc3339();
    let since = times(&app, BTC, "ONE_HOUR", 10, None, Some(&hour_ago)).await;
    assert!(!since.is_empty() && since.len() <= 2, "{since:?}");
    assert!(since.iter().all(|t| parse(t) >= current), "{since:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_pages_forward_across_closed_weekends() {
    let fake = FakeItick::start().await;
    fake.serve_weekend_gaps(true);
    let base = fake.base_url();
    let vars = [("FINQL_MARKET_SOURCE", "itick"), ("ITICK_BASE_URL", base.as_str()), ("ITICK_TOKEN", TOKEN)];
    let app = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    // Friday 2026-10-09 20:00: the next five bars are 21:00–23:00 Friday and 00:00–01:00
    // Monday, 48 empty slots later.
    let bars = times(&app, "AAPL.US", "ONE_HOUR", 5, None, Some("2026-10-09T20:00:00Z")).await;
    let mut expected = at("2026-10-09", 21..24);
    expected.extend(at("2026-10-12", 0..2));
    assert_eq!(bars, expected);
    // A hundred days from 1 July: a full page, though 101 calendar days hold only ~72 weekdays.
    let days = times(&app, "AAPL.US", "ONE_DAY", 100, None, Some("2026-07-01T00:00:00Z")).await;
    assert_eq!(days.len(), 100, "{days:?}");
    assert_eq!(days[0], "2026-07-02T00:00:00Z");
    assert!(days.windows(2).all(|w| w[0] < w[1]), "{days:?}");
    // And `before` pages back across a weekend the same way.
    let back = times(&app, "AAPL.US", "ONE_HOUR", 3, Some("2026-10-12T01:00:00Z"), None).await;
    assert_eq!(back, ["2026-10-09T22:00:00Z", "2026-10-09T23:00:00Z", "2026-10-12T00:00:00Z"]);
}
