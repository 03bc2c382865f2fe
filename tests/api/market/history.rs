//! Kline history kept in the database (`market::history`), against the fake iTick server: a closed
//! range is fetched once (and survives a restart), a later window fetches only the bars storage
//! lacks, and the window up to now fetches only the bars since the last stored one.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

const KLINES: &str = "query($s: String!, $n: Int, $b: DateTime) {
  klines(symbol: $s, interval: ONE_HOUR, limit: $n, before: $b) { time open high low close volume turnover } }";

async fn app_on(fake: &FakeItick, backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let base = fake.base_url();
    let mut vars = vec![
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_BASE_URL", base.as_str()),
        ("ITICK_TOKEN", TOKEN),
        ("ITICK_MAX_RETRIES", "0"),
    ];
    vars.extend_from_slice(extra);
    spawn_app(backend, &vars).await
}

/// `(limit, et)` of every kline call the fake received since the last reset.
fn kline_calls(fake: &FakeItick) -> Vec<(String, Option<String>)> {
    fake.requests()
        .into_iter()
        .filter(|(path, _)| path == "/stock/kline")
        .map(|(_, query): (String, HashMap<String, String>)| {
            (query.get("limit").cloned().unwrap_or_default(), query.get("et").cloned())
        })
        .collect()
}

/// A closed hour ten days back, where every window in these tests ends.
fn anchor() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::days(10)
}

/// The `et` asked for hourly bars starting before `before`: one ms into the last of them (so
/// that the answer ends with it whether the upstream's `et` is inclusive or not).
fn et(before: DateTime<Utc>) -> Option<String> {
    Some(((before - Duration::hours(1)).timestamp_millis() + 1).to_string())
}

async fn klines(app: &TestApp, before: Option<DateTime<Utc>>, limit: i64) -> Vec<Value> {
    let data = app.data(None, KLINES, json!({ "s": "AAPL.US", "n": limit, "b": before })).await;
    data["klines"].as_array().unwrap().clone()
}

fn times(bars: &[Value]) -> Vec<DateTime<Utc>> {
    bars.iter().map(|bar| bar["time"].as_str().unwrap().parse().unwrap()).collect()
}

/// Hourly bar starts `[from, to)`.
fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        out.push(at);
        at += Duration::hours(1);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_range_is_fetched_once_and_survives_a_restart() {
    let fake = FakeItick::start().await;
    let db_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/history.db?mode=rwc", db_dir.path().display());
    let end = anchor();

    let app = app_on(&fake, Backend::Sqlite, &[("DATABASE_URL", &url)]).await.unwrap();
    let first = klines(&app, Some(end), 100).await;
    assert_eq!(times(&first), hours(end - Duration::hours(100), end));
    assert_eq!(kline_calls(&fake), [("100".to_owned(), et(end))]);

    // A window inside the stored range (another cache key): served from the database.
    let inner = klines(&app, Some(end - Duration::hours(10)), 50).await;
    assert_eq!(inner, first[40..90]);
    assert_eq!(kline_calls(&fake).len(), 1, "no upstream call for a stored range");
    drop(app);

    // A new process on the same database: still no upstream call.
    fake.reset_calls();
    let restarted = app_on(&fake, Backend::Sqlite, &[("DATABASE_URL", &url)]).await.unwrap();
    assert_eq!(klines(&restarted, Some(end), 100).await, first);
    assert_eq!(kline_calls(&fake), []);
}

async fn only_the_missing_part_goes_upstream(backend: Backend) {
    let fake = FakeItick::start().await;
    let Some(app) = app_on(&fake, backend, &[]).await else {
        return eprintln!("skipped: TEST_DATABASE_URL is not set");
    };
    let end = anchor();
    klines(&app, Some(end), 10).await;
    assert_eq!(kline_calls(&fake), [("10".to_owned(), et(end))]);

    // Five hours later: only those five bars are fetched.
    fake.reset_calls();
    let later = end + Duration::hours(5);
    let bars = klines(&app, Some(later), 10).await;
    assert_eq!(times(&bars), hours(later - Duration::hours(10), later));
    assert_eq!(kline_calls(&fake), [("5".to_owned(), et(later))]);

    // Further back than stored: only the older part, before the first stored bar.
    fake.reset_calls();
    let longer = klines(&app, Some(later), 30).await;
    assert_eq!(times(&longer), hours(later - Duration::hours(30), later));
    assert_eq!(kline_calls(&fake), [("15".to_owned(), et(end - Duration::hours(10)))]);
    assert_eq!(longer[20..], bars[..], "stored and fetched bars are the same bars");

    // And every bar equals what a fresh server (nothing stored) fetches in one call.
    let fresh = app_on(&fake, Backend::Sqlite, &[]).await.unwrap();
    assert_eq!(klines(&fresh, Some(later), 30).await, longer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_missing_part_goes_upstream_sqlite() {
    only_the_missing_part_goes_upstream(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_missing_part_goes_upstream_postgres() {
    only_the_missing_part_goes_upstream(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_history_starts_is_remembered() {
    let fake = FakeItick::start().await;
    let end = anchor();
    let start = end - Duration::hours(5);
    fake.set_history_start(start.timestamp_millis());
    let app = app_on(&fake, Backend::Sqlite, &[]).await.unwrap();
    assert_eq!(times(&klines(&app, Some(end), 10).await), hours(start, end));
    assert_eq!(kline_calls(&fake).len(), 1);
    // Longer and shorter windows: nothing older exists, and storage knows it.
    assert_eq!(times(&klines(&app, Some(end), 20).await), hours(start, end));
    assert_eq!(times(&klines(&app, Some(end), 3).await), hours(end - Duration::hours(3), end));
    assert_eq!(kline_calls(&fake).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_up_to_now_fetches_only_the_newest_bars() {
    let fake = FakeItick::start().await;
    // The bar in progress is cached for a millisecond only, so the second query goes upstream.
    let app = app_on(&fake, Backend::Sqlite, &[("FINQL_QUOTE_TTL_MS", "1")]).await.unwrap();
    let first = klines(&app, None, 48).await;
    assert_eq!(first.len(), 48);
    assert_eq!(kline_calls(&fake), [("48".to_owned(), None)]);
    // Real time: the bar in progress is cached for 1 ms (moka's own clock), and must expire.
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;

    fake.reset_calls();
    let second = klines(&app, None, 48).await;
    let calls = kline_calls(&fake);
    assert_eq!(calls.len(), 1, "{calls:?}");
    // The bar in progress (and one more if the hour turned between the two queries).
    assert!(["1", "2"].contains(&calls[0].0.as_str()), "{calls:?}");
    let current = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    assert_eq!(times(&second), hours(current - Duration::hours(47), current + Duration::hours(1)));
    // Stored and fetched bars agree with the first answer wherever both have a bar.
    let earlier: HashMap<String, &Value> = first.iter().map(|bar| (bar["time"].to_string(), bar)).collect();
    let common = second.iter().filter(|bar| earlier.get(&bar["time"].to_string()) == Some(bar)).count();
    assert!(common >= 46, "{common} of 48 bars agree");
}
