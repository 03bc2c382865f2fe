//! Unit tests of `sources::itick`.

use serde_json::json;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{parse::*, rest::open_envelope, symbols::*, *};
use crate::{
    market::{TickDirection, TradingStatus},
    reference::service::AssetClass,
    sources::http::Attempt,
    sources::tests::instrument,
};

fn aapl() -> Instrument {
    instrument("AAPL.US", AssetClass::Stock, "US", "AAPL")
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_764_000_000_000).unwrap()
}

fn quote_json(t: i64) -> Value {
    json!({"s": "AAPL", "ld": 189.98, "o": 188.5, "h": 190.25, "l": 187.75, "p": 187.1, "t": t,
           "v": 51234567, "tu": 9.7e9, "ts": 0, "ch": 2.88, "chp": 1.54})
}

fn expect_fail(result: Result<Value, Attempt>) -> SourceError {
    match result {
        Err(Attempt::Fail(e)) => e,
        Err(Attempt::Retry { why, .. }) => panic!("expected a failure, got a retry: {why}"),
        Ok(v) => panic!("expected a failure, got {v}"),
    }
}

#[test]
fn numbers_become_exact_decimals() {
    let parse = |text: &str| decimal(&serde_json::from_str::<Value>(text).unwrap()).map(|d| d.to_string());
    assert_eq!(parse("189.98").as_deref(), Some("189.98"));
    assert_eq!(parse("0.1").as_deref(), Some("0.1"));
    assert_eq!(parse("1.10").as_deref(), Some("1.1"));
    assert_eq!(parse("42").as_deref(), Some("42"));
    assert_eq!(parse("-3.5").as_deref(), Some("-3.5"));
    assert_eq!(parse("1e-7").as_deref(), Some("0.0000001"));
    assert_eq!(parse("9.7e9").as_deref(), Some("9700000000"));
    assert_eq!(parse("0.000012345").as_deref(), Some("0.000012345"));
    assert_eq!(parse("64123.45678912").as_deref(), Some("64123.45678912"));
    assert_eq!(parse("\" 189.98 \"").as_deref(), Some("189.98"));
    assert_eq!(parse("\"abc\"").as_deref(), None);
    assert_eq!(parse("\"\"").as_deref(), None);
    assert_eq!(parse("null").as_deref(), None);
    assert_eq!(parse("true").as_deref(), None);
    // 0.1 + 0.2 as a double would print 0.30000000000000004: decimals add exactly.
    assert_eq!(
        (parse("0.1").unwrap().parse::<Decimal>().unwrap() + Decimal::from_str("0.2").unwrap()).to_string(),
        "0.3"
    );
}

#[test]
fn milliseconds_become_utc() {
    assert_eq!(millis(&json!(1_764_000_000_000i64)).unwrap().to_rfc3339(), "2025-11-24T16:00:00+00:00");
    assert_eq!(millis(&json!("1764000000000")).unwrap(), now());
    assert_eq!(millis(&json!(1_764_000_000_000.0)).unwrap(), now());
    assert!(millis(&json!("soon")).is_none());
}

#[test]
fn envelope_success_and_errors() {
    assert_eq!(open_envelope(json!({"code": 0, "msg": null, "data": {"x": 1}})).ok(), Some(json!({"x": 1})));
    assert_eq!(open_envelope(json!({"code": "0", "msg": "ok", "data": [1]})).ok(), Some(json!([1])));
    assert_eq!(open_envelope(json!({"code": 0})).ok(), Some(Value::Null));
    assert!(matches!(
        expect_fail(open_envelope(json!({"code": 1, "msg": "E001 not found this produce", "data": null}))),
        SourceError::NotFound(_)
    ));
    let auth = expect_fail(open_envelope(json!({"code": 1, "msg": "E002 auth failed"})));
    assert!(matches!(&auth, SourceError::Unauthorized(m) if m.contains("ITICK_TOKEN")), "{auth:?}");
    assert!(matches!(expect_fail(open_envelope(json!({"code": 403, "msg": null}))), SourceError::Unauthorized(_)));
    assert!(matches!(
        expect_fail(open_envelope(json!({"code": 3, "msg": "E003 exceeding the maximum subscription limit"}))),
        SourceError::Unavailable(_)
    ));
    assert!(matches!(
        expect_fail(open_envelope(json!({"code": 500, "msg": "internal error"}))),
        SourceError::Unavailable(m) if m.contains("internal error")
    ));
    assert!(matches!(open_envelope(json!({"code": 429, "msg": "too many requests"})), Err(Attempt::Retry { .. })));
    assert!(matches!(expect_fail(open_envelope(json!([1, 2]))), SourceError::Invalid(_)));
    assert!(matches!(expect_fail(open_envelope(json!({"data": 1}))), SourceError::Invalid(_)));
}

#[test]
fn quotes_map_by_code_with_variants() {
    let now_ms = now().timestamp_millis();
    let q = |s: &str| json!({"s": s, "ld": "10.5", "t": now_ms});
    let plain = json!({"AAPL": q("AAPL"), "msft": q("MSFT")});
    let keyed = json!({"AAPL$US": q("AAPL"), "MSFT$US": q("MSFT")});
    let array = json!([q("AAPL"), q("msft"), {"ld": 1}]);
    for data in [plain, keyed, array] {
        let index = index_by_code(&data, false);
        assert!(index.contains_key("AAPL") && index.contains_key("MSFT"), "{data}");
        assert_eq!(index.len(), 2, "{data}");
    }
    let hk = json!({"00700": q("00700")});
    assert!(index_by_code(&hk, false).contains_key(&normalize_code("700")));
    // A lone quote object, as a single-code call may answer.
    let lone = json!({"ld": 1, "t": now_ms});
    assert!(index_by_code(&lone, true).contains_key(SOLE));
    assert!(index_by_code(&lone, false).is_empty());
    assert!(index_by_code(&json!({"s": "AAPL", "ld": 1, "t": 1}), false).contains_key("AAPL"));
    assert!(index_by_code(&Value::Null, true).is_empty());
    assert_eq!(normalize_code("brk.b$us"), "BRK.B");
    assert_eq!(normalize_code("000001"), "1");
    assert_eq!(normalize_code("0000"), "0");
}

#[test]
fn quote_mapping_and_defaults() {
    let quote = parse_quote(&quote_json(now().timestamp_millis()), &aapl(), now()).unwrap();
    assert_eq!(quote.last.to_string(), "189.98");
    assert_eq!(quote.open.to_string(), "188.5");
    assert_eq!(quote.prev_close.to_string(), "187.1");
    assert_eq!(quote.turnover.unwrap().to_string(), "9700000000");
    assert_eq!(quote.volume.unwrap().to_string(), "51234567");
    assert_eq!(quote.timestamp, now());
    assert_eq!(quote.trading_status, TradingStatus::Normal);
    assert_eq!(quote.source, "itick");
    assert!(!quote.stale);
    assert_eq!(quote.change().to_string(), "2.88");

    let minimal = json!({"ld": "1.25", "t": now().timestamp_millis(), "ts": 1});
    let quote = parse_quote(&minimal, &aapl(), now()).unwrap();
    assert_eq!(quote.turnover, Some(Decimal::ZERO));
    assert_eq!(quote.trading_status, TradingStatus::Suspended);
    assert_eq!(quote.change_percent(), None);
    for (ts, status) in [(2, TradingStatus::Delisted), (3, TradingStatus::CircuitBreaker), (9, TradingStatus::Normal)] {
        let raw = json!({"ld": 1, "t": now().timestamp_millis(), "ts": ts});
        assert_eq!(parse_quote(&raw, &aapl(), now()).unwrap().trading_status, status);
    }
}

#[test]
fn quote_validation() {
    let t = now().timestamp_millis();
    let bad = |patch: Value| {
        let mut raw = quote_json(t);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                raw.as_object_mut().unwrap().remove(k);
            } else {
                raw[k] = v.clone();
            }
        }
        parse_quote(&raw, &aapl(), now()).err()
    };
    assert!(bad(json!({})).is_none());
    assert!(bad(json!({"ld": null})).unwrap().contains("missing `ld`"));
    assert!(bad(json!({"t": null})).unwrap().contains("missing `t`"));
    assert!(bad(json!({"ld": 0})).is_some());
    assert!(bad(json!({"ld": -1})).is_some());
    assert!(bad(json!({"ld": "n/a"})).is_some());
    assert!(bad(json!({"h": 180})).unwrap().contains("below low"));
    assert!(bad(json!({"o": 200})).unwrap().contains("outside"));
    assert!(bad(json!({"v": -1})).is_some());
    assert!(bad(json!({"t": t + 5_001})).unwrap().contains("future"));
    assert!(bad(json!({"t": t + 4_999})).is_none(), "within the clock-skew allowance");
    // Before the first trade of the session, open/high/low are 0.
    assert!(bad(json!({"o": 0, "h": 0, "l": 0})).is_none());
}

#[test]
fn kline_validation() {
    let t = now().timestamp_millis() - 60_000;
    let bar = |o: f64, h: f64, l: f64, c: f64| json!({"t": t, "o": o, "h": h, "l": l, "c": c, "v": 10, "tu": 1000.5});
    let good = parse_kline(&bar(10.0, 11.0, 9.5, 10.5), now()).unwrap();
    assert_eq!(good.turnover.unwrap().to_string(), "1000.5");
    assert_eq!(good.time.timestamp_millis(), t);
    assert!(parse_kline(&bar(10.0, 9.0, 9.5, 9.6), now()).unwrap_err().contains("below low"));
    assert!(parse_kline(&bar(10.0, 10.2, 9.5, 10.5), now()).is_err(), "close above high");
    assert!(parse_kline(&bar(9.0, 11.0, 9.5, 10.5), now()).is_err(), "open below low");
    assert!(parse_kline(&bar(0.0, 11.0, 0.0, 10.5), now()).is_err(), "zero price");
    assert!(parse_kline(&json!({"t": t, "o": 1, "h": 1, "l": 1}), now()).unwrap_err().contains("missing `c`"));
    let future = json!({"t": now().timestamp_millis() + 60_000, "o": 1, "h": 1, "l": 1, "c": 1});
    assert!(parse_kline(&future, now()).unwrap_err().contains("future"));
    let no_volume = json!({"t": t, "o": 1, "h": 1, "l": 1, "c": 1});
    assert_eq!(parse_kline(&no_volume, now()).unwrap().volume, Some(Decimal::ZERO));
}

#[test]
fn depth_levels_and_ticks() {
    let level = parse_level(&json!({"po": 1, "p": 10.01, "v": 300, "o": 4})).unwrap();
    assert_eq!(
        (level.price.to_string(), level.volume.to_string(), level.orders),
        ("10.01".into(), "300".into(), Some(4))
    );
    assert_eq!(parse_level(&json!({"p": "10.01", "v": 1})).unwrap().orders, None);
    assert!(parse_level(&json!({"p": 0, "v": 1})).is_err());
    assert!(parse_level(&json!({"v": 1})).is_err());

    let t = now().timestamp_millis();
    let tick =
        parse_tick(&json!({"s": "AAPL", "ld": 189.98, "t": t, "v": 100, "te": 0, "d": 1}), &aapl(), now()).unwrap();
    assert_eq!(tick.price.to_string(), "189.98");
    assert_eq!(tick.direction, Some(TickDirection::Sell));
    assert_eq!(parse_tick(&json!({"ld": 1, "t": t}), &aapl(), now()).unwrap().direction, None);
    assert!(parse_tick(&json!({"ld": -1, "t": t}), &aapl(), now()).is_err());
}

#[test]
fn single_items_unwrapped() {
    let book = json!({"s": "AAPL", "a": [], "b": []});
    assert_eq!(unwrap_single(&book, &aapl(), "a"), Some(&book));
    let wrapped = json!({"AAPL$US": book.clone()});
    assert_eq!(unwrap_single(&wrapped, &aapl(), "a"), Some(&book));
    let listed = json!([book.clone()]);
    assert_eq!(unwrap_single(&listed, &aapl(), "a"), Some(&book));
    assert_eq!(unwrap_single(&json!({"MSFT": book}), &aapl(), "a"), None);
}

#[test]
fn asset_prefixes() {
    assert_eq!(asset_prefix(AssetClass::Stock), "stock");
    assert_eq!(asset_prefix(AssetClass::Fund), "fund");
    assert_eq!(asset_prefix(AssetClass::Forex), "forex");
    assert_eq!(asset_prefix(AssetClass::Index), "indices");
    assert_eq!(asset_prefix(AssetClass::Crypto), "crypto");
    assert_eq!(asset_prefix(AssetClass::Future), "future");
}

#[test]
fn config_is_checked_and_the_token_never_prints() {
    let mut config = ItickConfig::new("secret-token-value");
    assert!(!format!("{config:?}").contains("secret-token-value"));
    let source = ItickSource::new(config.clone()).unwrap();
    assert!(!format!("{source:?}").contains("secret-token-value"));
    assert_eq!(source.name(), "itick");
    assert_eq!(source.batch_limit(), BATCH_LIMIT);
    assert_eq!(source.rejected(), 0);
    config.base_url = "ftp://example.com".into();
    assert!(ItickSource::new(config.clone()).is_err());
    config.base_url = DEFAULT_BASE_URL.into();
    config.requests_per_minute = 0;
    assert!(ItickSource::new(config.clone()).is_err());
    config.requests_per_minute = 5;
    config.token = Secret::new("line\nbreak".into());
    assert!(ItickSource::new(config).is_err());
}
