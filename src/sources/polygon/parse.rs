//! Polygon's wire format as domain types (`shared/polygon.md`). Pure functions over
//! `serde_json::Value`, each ending with `market::validate`, so what they return is both
//! well-formed and valid.
//!
//! What the protocol makes easy to get wrong, and how each reader handles it:
//! - **Time units are mixed**: the stock snapshot's `updated`, `lastTrade.t` and `lastQuote.t`,
//!   v2 last trade/NBBO `t`, v3 trades' `sip_timestamp` and the v3 snapshots' `last_updated` are
//!   nanoseconds; bar `t`, the forex and crypto snapshots' times and the legacy v1 endpoints are
//!   milliseconds. Each reader names its unit; both are read as integers, never through `f64`.
//! - **Fields are optional**: `lastTrade`/`lastQuote` depend on the plan, a volume may be a
//!   float (`642646396.0`), `c` may be null. Absent means unknown, never zero, except where a
//!   session has not traded yet (the snapshot's `day` before the open is all zeros).
//! - **Numbers are exact**: `sources::wire` reads them through their shortest text.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::{
    market::{
        types::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick, TradingStatus},
        validate,
    },
    sources::wire::{decimal, millis, nanos, optional_decimal, required_decimal},
};

/// This source's name on every value it produces.
pub const SOURCE: &str = "polygon";

/// A time field in `unit`: nanoseconds or milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Nanos,
    Millis,
}

fn time(object: &Value, field: &str, unit: Unit) -> Option<DateTime<Utc>> {
    let value = object.get(field)?;
    match unit {
        Unit::Nanos => nanos(value),
        Unit::Millis => millis(value),
    }
}

/// A positive number at `field`, if there is one (zeros mean "nothing yet" in snapshots).
fn positive(object: Option<&Value>, field: &str) -> Option<Decimal> {
    object?.get(field).and_then(decimal).filter(|d| *d > Decimal::ZERO)
}

/// One item of the v2 snapshots (stocks, forex, crypto): `{ticker, day, prevDay, min?,
/// lastTrade?, lastQuote?, updated}`. `unit` is the unit of its times: nanoseconds for stocks,
/// milliseconds for forex and crypto.
///
/// The last price is the last trade's, else (forex) the last quote's mid, else the latest
/// minute's close, else the day's close, else (before the day's first trade) the previous
/// close. Open, high and low are the day's (zero before its first trade, as the domain allows).
pub fn snapshot_quote(raw: &Value, instrument: &Instrument, unit: Unit, now: DateTime<Utc>) -> Result<Quote, String> {
    let day = raw.get("day");
    let prev = raw.get("prevDay");
    let last_trade = raw.get("lastTrade");
    let last_quote = raw.get("lastQuote");
    let mid = last_quote.and_then(|q| Some((positive(Some(q), "a")? + positive(Some(q), "b")?) / Decimal::TWO));
    let last = positive(last_trade, "p")
        .or(mid)
        .or_else(|| positive(raw.get("min"), "c"))
        .or_else(|| positive(day, "c"))
        .or_else(|| positive(prev, "c"))
        .ok_or("no last price (no trade, quote, bar or previous close)")?;
    let day_value = |field: &str| day.and_then(|d| d.get(field)).and_then(decimal).unwrap_or(Decimal::ZERO);
    let volume = day_value("v");
    // VWAP × volume is the money traded (VWAP's definition); unknown without a VWAP.
    let turnover = day.and_then(|d| d.get("vw")).and_then(decimal).map(|vw| (vw * volume).round_dp(4));
    let timestamp = time(raw, "updated", unit)
        .or_else(|| last_trade.and_then(|t| time(t, "t", unit)))
        .or_else(|| last_quote.and_then(|q| time(q, "t", unit)))
        .ok_or("no time (`updated`, `lastTrade.t` or `lastQuote.t`)")?;
    let quote = Quote {
        symbol: instrument.symbol.clone(),
        last,
        open: day_value("o"),
        high: day_value("h"),
        low: day_value("l"),
        prev_close: prev.and_then(|p| p.get("c")).and_then(decimal).unwrap_or(Decimal::ZERO),
        volume: Some(volume),
        turnover,
        timestamp,
        trading_status: TradingStatus::Normal,
        source: SOURCE,
        stale: false,
    };
    validate::quote(&quote, now)?;
    Ok(quote)
}

/// One item of the v3 indices snapshot: `{ticker, value, last_updated (ns), session: {open,
/// high, low, close, previous_close}}`. Indices trade no volume.
pub fn index_quote(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Quote, String> {
    let session = raw.get("session");
    let field = |name: &str| session.and_then(|s| s.get(name)).and_then(decimal).unwrap_or(Decimal::ZERO);
    let quote = Quote {
        symbol: instrument.symbol.clone(),
        last: required_decimal(raw, "value")?,
        open: field("open"),
        high: field("high"),
        low: field("low"),
        prev_close: field("previous_close"),
        volume: None,
        turnover: None,
        timestamp: time(raw, "last_updated", Unit::Nanos).ok_or("missing `last_updated`")?,
        trading_status: TradingStatus::Normal,
        source: SOURCE,
        stale: false,
    };
    validate::quote(&quote, now)?;
    Ok(quote)
}

/// One aggregate bar `{o, h, l, c, v?, vw?, t (ms)}` of `interval`. Polygon starts day, week
/// and month bars at midnight New York time (04:00 or 05:00 UTC; weeks possibly on Sunday),
/// finql at midnight UTC (weeks on Monday): such a bar is placed in the finql bar holding a
/// moment well inside it. Indices' bars carry no volume.
pub fn bar(raw: &Value, interval: Interval, now: DateTime<Utc>) -> Result<Kline, String> {
    let start = time(raw, "t", Unit::Millis).ok_or("missing `t`")?;
    let inside = match interval {
        Interval::OneDay | Interval::OneMonth => Duration::hours(12),
        Interval::OneWeek => Duration::hours(36),
        _ => Duration::zero(),
    };
    let volume = raw.get("v").and_then(decimal);
    let kline = Kline {
        time: interval.bar_start(start + inside),
        open: required_decimal(raw, "o")?,
        high: required_decimal(raw, "h")?,
        low: required_decimal(raw, "l")?,
        close: required_decimal(raw, "c")?,
        volume,
        turnover: raw.get("vw").and_then(decimal).zip(volume).map(|(vw, v)| (vw * v).round_dp(4)),
        source: SOURCE,
    };
    validate::kline(&kline, now)?;
    Ok(kline)
}

/// One v3 trade: `{price, size, sip_timestamp (ns), participant_timestamp?}`.
pub fn trade(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Tick, String> {
    let tick = Tick {
        symbol: instrument.symbol.clone(),
        price: required_decimal(raw, "price")?,
        volume: optional_decimal(raw, "size", Decimal::ZERO)?,
        timestamp: time(raw, "sip_timestamp", Unit::Nanos)
            .or_else(|| time(raw, "participant_timestamp", Unit::Nanos))
            .ok_or("missing `sip_timestamp`")?,
        direction: None,
        source: SOURCE,
    };
    validate::tick(&tick, now)?;
    Ok(tick)
}

/// The v2 NBBO `{P, S, p, s, t (ns)}` (ask and bid price and size) as a book of one level a side.
pub fn nbbo(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<OrderBook, String> {
    let level = |price: &str, size: &str| -> Result<Vec<BookLevel>, String> {
        match positive(Some(raw), price) {
            Some(price) => {
                Ok(vec![BookLevel { price, volume: optional_decimal(raw, size, Decimal::ZERO)?, orders: None }])
            }
            None => Ok(Vec::new()),
        }
    };
    let book = OrderBook {
        symbol: instrument.symbol.clone(),
        bids: level("p", "s")?,
        asks: level("P", "S")?,
        timestamp: time(raw, "t", Unit::Nanos).ok_or("missing `t`")?,
    };
    validate::order_book(&book, now)?;
    Ok(book)
}

/// The legacy forex last quote `{ask, bid, timestamp (ms)}` as a book of one level a side (forex
/// quotes carry no sizes).
pub fn forex_last(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<OrderBook, String> {
    let level = |field: &str| {
        positive(Some(raw), field)
            .map(|price| BookLevel { price, volume: Decimal::ZERO, orders: None })
            .into_iter()
            .collect()
    };
    let book = OrderBook {
        symbol: instrument.symbol.clone(),
        bids: level("bid"),
        asks: level("ask"),
        timestamp: time(raw, "timestamp", Unit::Millis).ok_or("missing `timestamp`")?,
    };
    validate::order_book(&book, now)?;
    Ok(book)
}
