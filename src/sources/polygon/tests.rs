//! Unit tests of `sources::polygon`: the wire format, with the variants `shared/polygon.md`
//! lists. The HTTP side is tested against a fake Polygon in `tests/api/sources/polygon`.

use rust_decimal::Decimal;
use serde_json::json;

use super::{
    rest::{next_page, open_envelope, results},
    *,
};
use crate::{market::TradingStatus, reference::service::AssetClass, sources::http::Attempt};

/// A US-market instrument (Polygon's region for all but forex and crypto, which ignore it).
fn instrument(symbol: &str, class: AssetClass, code: &str) -> Instrument {
    crate::sources::tests::instrument(symbol, class, "US", code)
}

fn aapl() -> Instrument {
    instrument("AAPL.US", AssetClass::Stock, "AAPL")
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000).unwrap()
}

/// The SDK's recorded stock snapshot (trimmed), times in nanoseconds.
fn stock_snapshot() -> Value {
    json!({"ticker": "AAPL",
        "day": {"o": 161.84, "h": 166.2, "l": 159.8, "c": 160.315, "v": 68840127, "vw": 162.7124},
        "lastQuote": {"P": 159.99, "S": 5, "p": 159.98, "s": 3, "t": 1_651_251_948_407_646_487i64},
        "lastTrade": {"c": null, "i": "121351", "p": 159.99, "s": 200, "t": 1_651_251_948_294_080_343i64, "x": 12},
        "min": {"av": 68834255, "o": 160.71, "h": 160.71, "l": 160.3, "c": 160.3, "v": 197226, "t": 1_684_428_600_000i64},
        "prevDay": {"o": 159.25, "h": 164.515, "l": 158.93, "c": 163.64, "v": 130149192, "vw": 161.8622},
        "todaysChange": -3.65, "todaysChangePerc": -2.231, "updated": 1_651_251_948_294_080_343i64})
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[test]
fn a_stock_snapshot_is_a_quote_with_nanosecond_times() {
    let quote = parse::snapshot_quote(&stock_snapshot(), &aapl(), Unit::Nanos, now()).unwrap();
    assert_eq!(quote.last, d("159.99"), "the last trade");
    assert_eq!((quote.open, quote.high, quote.low), (d("161.84"), d("166.2"), d("159.8")));
    assert_eq!(quote.prev_close, d("163.64"));
    assert_eq!(quote.volume, Some(d("68840127")));
    assert_eq!(quote.turnover, Some(d("11201142280.4748")), "VWAP times volume, exact");
    assert_eq!(quote.timestamp.timestamp_nanos_opt(), Some(1_651_251_948_294_080_343), "not rounded through f64");
    assert_eq!((quote.source, quote.trading_status), ("polygon", TradingStatus::Normal));
}

#[test]
fn before_the_open_a_snapshot_quotes_the_previous_close() {
    // Cleared overnight: the day is zeros, no trade yet on a plan without trades.
    let raw = json!({"ticker": "AAPL", "day": {"o": 0, "h": 0, "l": 0, "c": 0, "v": 0, "vw": 0},
        "prevDay": {"o": 159.25, "h": 164.515, "l": 158.93, "c": 163.64, "v": 130149192.0},
        "updated": 1_651_251_948_294_080_343i64});
    let quote = parse::snapshot_quote(&raw, &aapl(), Unit::Nanos, now()).unwrap();
    assert_eq!((quote.last, quote.prev_close, quote.open), (d("163.64"), d("163.64"), Decimal::ZERO));
    assert_eq!(quote.change(), Decimal::ZERO);
    // Nothing to quote at all is refused, never a zero price.
    let empty = json!({"ticker": "AAPL", "updated": 1});
    assert!(parse::snapshot_quote(&empty, &aapl(), Unit::Nanos, now()).is_err());
}

#[test]
fn forex_snapshots_quote_the_mid_in_milliseconds() {
    let eur = instrument("FX:EURUSD", AssetClass::Forex, "EURUSD");
    let raw = json!({"ticker": "C:EURUSD", "day": {"o": 1.0801, "h": 1.0856, "l": 1.0795, "c": 1.0849, "v": 161345},
        "lastQuote": {"a": 1.08501, "b": 1.08497, "t": 1_699_999_990_000i64, "x": 48},
        "prevDay": {"c": 1.0801}, "updated": 1_699_999_990_000i64});
    let quote = parse::snapshot_quote(&raw, &eur, Unit::Millis, now()).unwrap();
    assert_eq!(quote.last, d("1.08499"));
    assert_eq!(quote.turnover, None, "no VWAP, no turnover");
    assert_eq!(quote.timestamp.timestamp_millis(), 1_699_999_990_000);
    // Read as nanoseconds the same number would be 1970: the unit is the reader's.
    assert!(parse::snapshot_quote(&raw, &eur, Unit::Nanos, now()).unwrap().timestamp.timestamp() < 2_000);
}

#[test]
fn index_snapshots_carry_no_volume() {
    let spx = instrument("IDX:SPX", AssetClass::Index, "SPX");
    let raw = json!({"ticker": "I:SPX", "value": 4512.25, "last_updated": 1_699_999_000_000_000_000i64,
        "timeframe": "REAL-TIME", "session": {"open": 4500.1, "high": 4520.0, "low": 4490.5, "close": 4512.25,
        "previous_close": 4495.0}});
    let quote = parse::index_quote(&raw, &spx, now()).unwrap();
    assert_eq!((quote.last, quote.prev_close, quote.volume), (d("4512.25"), d("4495"), None));
}

#[test]
fn bars_are_exact_and_placed_in_finqls_bars() {
    let raw = json!({"o": 74.06, "h": 75.15, "l": 73.7975, "c": 74.3575, "v": 108872000.0, "vw": 74.6099,
        "t": 1_578_114_000_000i64, "n": 1});
    // 2020-01-04 05:00 UTC, midnight in New York: the UTC day bar of 2020-01-04.
    let bar = parse::bar(&raw, Interval::OneDay, now()).unwrap();
    assert_eq!(bar.time.to_rfc3339(), "2020-01-04T00:00:00+00:00");
    assert_eq!((bar.open, bar.close, bar.volume), (d("74.06"), d("74.3575"), Some(d("108872000"))));
    // A week starting Sunday midnight in New York is finql's week of the Monday after.
    let sunday = json!({"o": 1, "h": 2, "l": 1, "c": 2, "t": 1_578_200_400_000i64});
    assert_eq!(parse::bar(&sunday, Interval::OneWeek, now()).unwrap().time.to_rfc3339(), "2020-01-06T00:00:00+00:00");
    // A minute bar keeps its start; an index bar has no volume.
    let minute = json!({"o": 1, "h": 2, "l": 1, "c": 2, "t": 1_578_114_060_000i64});
    let bar = parse::bar(&minute, Interval::OneMinute, now()).unwrap();
    assert_eq!((bar.time.timestamp_millis(), bar.volume, bar.turnover), (1_578_114_060_000, None, None));
    // A high below the close is refused.
    let bad = json!({"o": 1, "h": 1.5, "l": 1, "c": 2, "t": 1_578_114_060_000i64});
    assert!(parse::bar(&bad, Interval::OneMinute, now()).is_err());
}

#[test]
fn trades_nbbo_and_forex_books() {
    let trade = json!({"conditions": [12, 37], "exchange": 11, "id": "1", "price": 171.55, "size": 100,
        "sip_timestamp": 1_699_999_999_123_456_789i64, "participant_timestamp": 1_699_999_999_123_000_000i64});
    let tick = parse::trade(&trade, &aapl(), now()).unwrap();
    assert_eq!((tick.price, tick.volume), (d("171.55"), d("100")));
    assert_eq!(tick.timestamp.timestamp_nanos_opt(), Some(1_699_999_999_123_456_789));

    let nbbo = json!({"T": "AAPL", "P": 171.56, "S": 300, "p": 171.55, "s": 200, "t": 1_699_999_999_000_000_000i64});
    let book = parse::nbbo(&nbbo, &aapl(), now()).unwrap();
    assert_eq!((book.bids[0].price, book.bids[0].volume), (d("171.55"), d("200")));
    assert_eq!((book.asks[0].price, book.asks[0].volume), (d("171.56"), d("300")));

    let eur = instrument("FX:EURUSD", AssetClass::Forex, "EURUSD");
    let last = json!({"ask": 0.73124, "bid": 0.73122, "exchange": 48, "timestamp": 1_605_557_756_000i64});
    let book = parse::forex_last(&last, &eur, now()).unwrap();
    assert_eq!((book.bids[0].price, book.asks[0].price), (d("0.73122"), d("0.73124")));
    assert_eq!(book.timestamp.timestamp_millis(), 1_605_557_756_000);
}

#[test]
fn envelopes_succeed_on_ok_delayed_and_legacy_success() {
    for status in ["OK", "DELAYED", "success"] {
        assert!(open_envelope(json!({"status": status, "results": []})).is_ok(), "{status}");
    }
    assert!(open_envelope(json!({"market": "open", "serverTime": "…"})).is_ok(), "no envelope");
    let fail = |body: Value| match open_envelope(body) {
        Err(Attempt::Fail(e)) => e,
        _ => panic!("expected a failure"),
    };
    assert!(matches!(
        fail(json!({"status": "NOT_AUTHORIZED", "message": "You are not entitled to this data."})),
        SourceError::Unauthorized(m) if m.contains("not entitled")
    ));
    assert!(matches!(fail(json!({"status": "ERROR", "error": "bad"})), SourceError::Invalid(m) if m.contains("bad")));
}

#[test]
fn results_and_pages() {
    assert_eq!(results(&mut json!({"status": "OK", "results": [1, 2]})), [json!(1), json!(2)]);
    assert_eq!(results(&mut json!({"status": "OK", "results": {"T": "AAPL"}})), [json!({"T": "AAPL"})]);
    assert!(results(&mut json!({"status": "OK", "queryCount": 0, "resultsCount": 0})).is_empty());
    let body = json!({"next_url": "https://api.massive.com/v3/reference/splits?cursor=bGltaXQ9MiZzb3J0PWFzYw"});
    assert_eq!(next_page(&body).as_deref(), Some("/v3/reference/splits?cursor=bGltaXQ9MiZzb3J0PWFzYw"));
    assert_eq!(next_page(&json!({"status": "OK"})), None);
}

#[test]
fn splits_and_dividends_become_corporate_actions() {
    let action =
        split(&json!({"id": "x", "ticker": "AAPL", "execution_date": "2020-08-31", "split_from": 1, "split_to": 4}));
    assert_eq!(
        action,
        Some(CorporateAction {
            ex_date: NaiveDate::from_ymd_opt(2020, 8, 31).unwrap(),
            kind: ActionKind::Split { from: d("1"), to: d("4") }
        })
    );
    assert_eq!(split(&json!({"execution_date": "2020-08-31", "split_from": 0, "split_to": 4})), None);
    let paid = dividend(
        &json!({"cash_amount": 0.24, "currency": "usd", "ex_dividend_date": "2023-11-10", "dividend_type": "CD"}),
        "USD",
    );
    assert_eq!(paid.map(|a| a.kind), Some(ActionKind::Dividend { amount: d("0.24"), currency: "USD".into() }));
    assert_eq!(dividend(&json!({"cash_amount": 0.24, "ex_dividend_date": "soon"}), "USD"), None);
}

#[test]
fn kline_windows_reach_back_far_enough() {
    let end = now();
    assert_eq!(end - window_start(Interval::OneMinute, end, 100), chrono::Duration::minutes(600));
    assert_eq!(end - window_start(Interval::OneDay, end, 100), chrono::Duration::days(200));
    assert_eq!(window_start(Interval::OneMonth, end, 1_000_000), DateTime::UNIX_EPOCH, "never before 1970");
    assert_eq!(range(Interval::FourHours), (4, "hour"));
    assert_eq!(aggregates_limit(Interval::OneMinute, 100), 100);
    assert_eq!(aggregates_limit(Interval::FiveMinutes, 100), 500);
    assert_eq!(aggregates_limit(Interval::FourHours, 1000), 50_000);
    assert_eq!(aggregates_limit(Interval::OneDay, 10), 50_000);
}

#[test]
fn a_config_must_be_usable() {
    let mut config = PolygonConfig::new("key");
    assert!(PolygonSource::new(config.clone()).is_ok());
    config.base_url = "ftp://example.com".into();
    assert!(PolygonSource::new(config.clone()).is_err());
    config.base_url = DEFAULT_BASE_URL.into();
    config.api_key = Secret::new(" ".into());
    assert!(PolygonSource::new(config.clone()).is_err());
    config.api_key = Secret::new("line\nbreak".into());
    assert!(PolygonSource::new(config).is_err());
}
