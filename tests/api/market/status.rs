//! `marketStatus(region)` (`market::graphql::status`) through the API. These tests run at whatever
//! time it is, so they check only what holds at every instant; the calendar itself (sessions, DST,
//! holidays) is unit-tested at fixed instants in `market::calendar`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::*;

const STATUS: &str = "query($r: Region!) { marketStatus(region: $r) {
  region timezone state localTime sessions { open close } nextOpen nextClose } }";

const REGIONS: [(&str, &str); 8] = [
    ("US", "America/New_York"),
    ("HK", "Asia/Hong_Kong"),
    ("CN", "Asia/Shanghai"),
    ("JP", "Asia/Tokyo"),
    ("GB", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("GLOBAL", "UTC"),
    ("FX", "America/New_York"),
];

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a DateTime expected, got {v}")).parse().unwrap()
}

/// `HH:MM`, `24:00` included.
fn is_hh_mm(s: &str) -> bool {
    match s.split_once(':') {
        Some((h, m)) if h.len() == 2 && m.len() == 2 => match (h.parse::<u32>(), m.parse::<u32>()) {
            (Ok(h), Ok(m)) => (h < 24 && m < 60) || (h, m) == (24, 0),
            _ => false,
        },
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_region_answers_with_a_consistent_status() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    for (region, timezone) in REGIONS {
        let before = Utc::now();
        let status = app.data(None, STATUS, json!({ "r": region })).await["marketStatus"].clone();
        let after = Utc::now();
        assert_eq!(status["region"], region, "{status}");
        assert_eq!(status["timezone"], timezone, "{status}");

        let state = status["state"].as_str().unwrap();
        assert!(["PRE_MARKET", "OPEN", "LUNCH_BREAK", "POST_MARKET", "CLOSED"].contains(&state), "{status}");

        // The local time is now, with the market's offset.
        let local = DateTime::parse_from_rfc3339(status["localTime"].as_str().unwrap()).unwrap();
        let local_utc = local.with_timezone(&Utc);
        assert!(before - chrono::TimeDelta::seconds(1) <= local_utc && local_utc <= after, "{status}");

        let sessions = status["sessions"].as_array().unwrap();
        for session in sessions {
            let (open, close) = (session["open"].as_str().unwrap(), session["close"].as_str().unwrap());
            assert!(is_hh_mm(open) && is_hh_mm(close) && open < close, "{status}");
        }
        assert!(sessions.windows(2).all(|w| w[0]["close"].as_str() <= w[1]["open"].as_str()), "{status}");
        if state != "CLOSED" {
            assert!(!sessions.is_empty(), "a market is only ever not closed on a trading day: {status}");
        }

        if region == "GLOBAL" {
            assert_eq!(state, "OPEN");
            assert_eq!(status["sessions"], json!([{ "open": "00:00", "close": "24:00" }]));
            assert_eq!((&status["nextOpen"], &status["nextClose"]), (&Value::Null, &Value::Null));
            continue;
        }
        let (next_open, next_close) = (instant(&status["nextOpen"]), instant(&status["nextClose"]));
        assert!(next_open > before && next_close > before, "both are ahead: {status}");
        if state == "OPEN" {
            assert!(next_close < next_open, "an open market closes before it opens again: {status}");
        } else {
            assert!(next_open < next_close, "a market not open opens before it closes: {status}");
        }
        if state == "LUNCH_BREAK" {
            assert!(["HK", "CN", "JP"].contains(&region), "{status}");
        }
        if state == "POST_MARKET" {
            assert_eq!(region, "US", "{status}");
        }
        if state == "PRE_MARKET" {
            assert!(["US", "HK", "CN"].contains(&region), "{status}");
        }
    }
}

/// `Region` is an enum: a region outside it (or not in its upper-case spelling) is refused
/// before anything runs, naming the value and the type. An enum literal works like a
/// variable, and so does a string literal (async-graphql accepts one for an enum), as
/// queries written when `region` was a `String` did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_region_is_refused_by_validation() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    for asked in ["MARS", "us", "U\u{0}S", ""] {
        let body = app.gql(None, STATUS, json!({ "r": asked })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{asked}: {body}");
        assert!(body["data"].is_null(), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("enumeration type \"Region\""), "{asked}: {message}");
    }
    let body = app.gql(None, STATUS, json!({ "r": "MARS" })).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("\"MARS\""), "{body}");
    for literal in ["{ marketStatus(region: HK) { region } }", "{ marketStatus(region: \"HK\") { region } }"] {
        let data = app.data(None, literal, json!({})).await;
        assert_eq!(data["marketStatus"]["region"], "HK", "{literal}");
    }
}
