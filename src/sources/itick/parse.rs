//! iTick's wire format as domain types: shared by the REST adapter and the stream, so a value
//! reads the same whichever way it came. Pure functions over `serde_json::Value`.
//!
//! Parsing is the provider's (fields, units, the tolerated variants of each answer); whether the
//! value makes sense is the domain's: every `parse_*` ends with `market::validate`, so what it
//! returns is both well-formed and valid.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::symbols::normalize_code;
use crate::market::{
    types::{BookLevel, Instrument, Kline, Quote, Tick, TickDirection, TradingStatus},
    validate,
};

pub use crate::sources::wire::{decimal, int, millis};
use crate::sources::wire::{optional_decimal, required_decimal};

pub(crate) fn required_time(object: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(format!("missing `{field}`")),
        Some(v) => millis(v).ok_or_else(|| format!("`{field}` is not a time in ms: {v}")),
    }
}

/// Key under which a lone quote object (not wrapped in a map) is indexed.
pub(crate) const SOLE: &str = "\u{0}sole";

/// Indexes a batch answer by normalised code. Tolerates the documented map `code -> item`, maps
/// keyed `CODE$REGION`, arrays of items carrying `s`, and (when one code was asked for) the bare
/// item itself.
pub(crate) fn index_by_code(data: &Value, single: bool) -> HashMap<String, &Value> {
    let mut index = HashMap::new();
    let symbol_of = |item: &Value| item.get("s").and_then(Value::as_str).map(normalize_code);
    match data {
        Value::Object(map) if looks_like_item(map) => {
            match symbol_of(data) {
                Some(code) => index.insert(code, data),
                None if single => index.insert(SOLE.to_owned(), data),
                None => None,
            };
        }
        Value::Object(map) => {
            for (key, item) in map {
                if item.is_object() {
                    index.insert(normalize_code(key), item);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Some(code) = symbol_of(item) {
                    index.insert(code, item);
                }
            }
        }
        _ => {}
    }
    index
}

/// A quote or tick itself rather than a map of them (codes are upper case; `ld` is a number).
fn looks_like_item(map: &serde_json::Map<String, Value>) -> bool {
    map.get("ld").is_some_and(|v| !v.is_object())
}

/// A quote (`ld` last, `t` time, the rest optional: 0 before the session's first trade).
pub(crate) fn parse_quote(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Quote, String> {
    let trading_status = match raw.get("ts").and_then(int) {
        Some(1) => TradingStatus::Suspended,
        Some(2) => TradingStatus::Delisted,
        Some(3) => TradingStatus::CircuitBreaker,
        _ => TradingStatus::Normal,
    };
    let quote = Quote {
        symbol: instrument.symbol.clone(),
        last: required_decimal(raw, "ld")?,
        open: optional_decimal(raw, "o", Decimal::ZERO)?,
        high: optional_decimal(raw, "h", Decimal::ZERO)?,
        low: optional_decimal(raw, "l", Decimal::ZERO)?,
        prev_close: optional_decimal(raw, "p", Decimal::ZERO)?,
        volume: Some(optional_decimal(raw, "v", Decimal::ZERO)?),
        turnover: Some(optional_decimal(raw, "tu", Decimal::ZERO)?),
        timestamp: required_time(raw, "t")?,
        trading_status,
        source: "itick",
        stale: false,
    };
    validate::quote(&quote, now)?;
    Ok(quote)
}

/// A bar (`t` start, `o h l c`, optional `v tu`).
pub(crate) fn parse_kline(raw: &Value, now: DateTime<Utc>) -> Result<Kline, String> {
    let kline = Kline {
        time: required_time(raw, "t")?,
        open: required_decimal(raw, "o")?,
        high: required_decimal(raw, "h")?,
        low: required_decimal(raw, "l")?,
        close: required_decimal(raw, "c")?,
        volume: Some(optional_decimal(raw, "v", Decimal::ZERO)?),
        turnover: Some(optional_decimal(raw, "tu", Decimal::ZERO)?),
        source: "itick",
    };
    validate::kline(&kline, now)?;
    Ok(kline)
}

/// One depth level (`p` price, `v` size, `o` orders).
pub(crate) fn parse_level(raw: &Value) -> Result<BookLevel, String> {
    let level = BookLevel {
        price: required_decimal(raw, "p")?,
        volume: optional_decimal(raw, "v", Decimal::ZERO)?,
        orders: raw.get("o").and_then(int),
    };
    validate::book_level(&level)?;
    Ok(level)
}

/// The time of a depth item: `t` when present, else `now` (iTick's depth often has none).
pub(crate) fn book_time(raw: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match raw.get("t") {
        Some(t) if !t.is_null() => required_time(raw, "t"),
        _ => Ok(now),
    }
}

/// A trade (`ld` price, `t` time, `v` size, `d` direction).
pub(crate) fn parse_tick(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Tick, String> {
    let direction = match raw.get("d").and_then(int) {
        Some(0) => Some(TickDirection::Neutral),
        Some(1) => Some(TickDirection::Sell),
        Some(2) => Some(TickDirection::Buy),
        _ => None,
    };
    let tick = Tick {
        symbol: instrument.symbol.clone(),
        price: required_decimal(raw, "ld")?,
        volume: optional_decimal(raw, "v", Decimal::ZERO)?,
        timestamp: required_time(raw, "t")?,
        direction,
        source: "itick",
    };
    validate::tick(&tick, now)?;
    Ok(tick)
}

/// The single item of a single-instrument answer; tolerates it wrapped in a one-entry map or
/// array (as batch endpoints answer).
pub(crate) fn unwrap_single<'a>(data: &'a Value, instrument: &Instrument, item_key: &str) -> Option<&'a Value> {
    match data {
        Value::Object(map) if map.get(item_key).is_some_and(|v| !v.is_object()) => Some(data),
        Value::Object(map) => {
            let wanted = normalize_code(&instrument.code);
            map.iter().find(|(k, _)| normalize_code(k) == wanted).map(|(_, v)| v)
        }
        Value::Array(items) => items.iter().find(|item| item.get(item_key).is_some()),
        _ => None,
    }
}
