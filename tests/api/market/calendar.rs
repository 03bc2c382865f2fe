//! `marketStatus(region, at)` at chosen instants: half-days, holidays, year ends, the projected
//! Chinese calendar, and `at` outside the calendar data.

use serde_json::{Value, json};

use crate::helpers::*;

const STATUS_AT: &str = "query($r: Region!, $at: DateTime) { marketStatus(region: $r, at: $at) {
  region state localTime sessions { open close } nextOpen nextClose
  calendarValidThrough calendarPublishedThrough provisional } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn christmas_eve_afternoon_in_new_york_is_not_open() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    // 15:30 EST on Thursday 24 December 2026: the NYSE closed at 13:00.
    let status =
        app.data(None, STATUS_AT, json!({ "r": "US", "at": "2026-12-24T20:30:00Z" })).await["marketStatus"].clone();
    assert_eq!(status["state"], "POST_MARKET", "{status}");
    assert_eq!(status["localTime"], "2026-12-24T15:30:00-05:00", "{status}");
    assert_eq!(status["sessions"], json!([{ "open": "09:30", "close": "13:00" }]), "{status}");
    assert_eq!(status["nextOpen"], "2026-12-28T14:30:00.000000Z", "Christmas Day closed: {status}");
    assert_eq!(status["nextClose"], "2026-12-28T21:00:00.000000Z", "{status}");
    assert_eq!(status["provisional"], false, "{status}");
    assert_eq!(status["calendarValidThrough"], "2030-12-31", "{status}");
    assert_eq!(status["calendarPublishedThrough"], "2030-12-31", "{status}");

    // The same morning it was open, closing at 13:00.
    let morning =
        app.data(None, STATUS_AT, json!({ "r": "US", "at": "2026-12-24T17:00:00Z" })).await["marketStatus"].clone();
    assert_eq!(morning["state"], "OPEN", "{morning}");
    assert_eq!(morning["nextClose"], "2026-12-24T18:00:00.000000Z", "{morning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hong_kong_and_china_skip_new_years_day_2027() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let hk =
        app.data(None, STATUS_AT, json!({ "r": "HK", "at": "2026-12-31T05:30:00Z" })).await["marketStatus"].clone();
    assert_eq!(hk["state"], "CLOSED", "a half-day has no afternoon: {hk}");
    assert_eq!(hk["sessions"], json!([{ "open": "09:30", "close": "12:00" }]), "{hk}");
    assert_eq!(hk["nextOpen"], "2027-01-04T01:30:00.000000Z", "{hk}");

    let cn =
        app.data(None, STATUS_AT, json!({ "r": "CN", "at": "2026-12-31T08:00:00Z" })).await["marketStatus"].clone();
    assert_eq!(cn["nextOpen"], "2027-01-04T01:30:00.000000Z", "{cn}");
    assert_eq!(cn["provisional"], false, "{cn}");
    assert_eq!(cn["calendarPublishedThrough"], "2026-12-31", "{cn}");
    assert_eq!(cn["calendarValidThrough"], "2030-12-31", "{cn}");

    // Spring Festival 2027, as projected: closed, and said to be projected.
    let festival =
        app.data(None, STATUS_AT, json!({ "r": "CN", "at": "2027-02-08T02:00:00Z" })).await["marketStatus"].clone();
    assert_eq!(festival["state"], "CLOSED", "{festival}");
    assert_eq!(festival["provisional"], true, "{festival}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_must_fall_within_the_calendar_data() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    for at in ["1999-12-31T12:00:00Z", "2031-01-01T12:00:00Z"] {
        let body = app.gql(None, STATUS_AT, json!({ "r": "JP", "at": at })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "at", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("2000-01-01 to 2030-12-31"), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
    }
    // The bound is the market's local day: 2030-12-31T16:00Z is already 2031 in Tokyo.
    let body = app.gql(None, STATUS_AT, json!({ "r": "JP", "at": "2030-12-31T16:00:00Z" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let last =
        app.data(None, STATUS_AT, json!({ "r": "US", "at": "2030-12-31T16:00:00Z" })).await["marketStatus"].clone();
    assert_eq!(last["state"], "OPEN", "{last}");
    // Crypto and FX follow a weekly rule: any instant, no calendar data.
    let fx =
        app.data(None, STATUS_AT, json!({ "r": "FX", "at": "2040-06-06T12:00:00Z" })).await["marketStatus"].clone();
    assert_eq!(fx["state"], "OPEN", "{fx}");
    assert_eq!((&fx["calendarValidThrough"], &fx["provisional"]), (&Value::Null, &json!(false)), "{fx}");
    // A malformed instant is the GraphQL scalar's error.
    let body = app.gql(None, STATUS_AT, json!({ "r": "US", "at": "yesterday" })).await;
    assert!(body["errors"].is_array(), "{body}");
}
