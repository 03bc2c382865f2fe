//! JSON values as providers send them, read exactly: numbers as decimals through their shortest
//! round-trip text (never arithmetic on `f64`), epoch times as integers (nanoseconds exceed
//! 2^53, so never through `f64` either), numbers that some answers quote as strings. And what
//! happens to an item that cannot be read: `rejected`.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

/// An item of a provider's answer that could not be read (a field missing, a ratio not
/// positive): logged and counted in `finql_upstream_rejected_values_total{source, kind}`, like
/// the values market validation refuses, so a provider changing its format shows on the
/// dashboard and not only in logs. The rest of the answer is used.
pub fn rejected(source: &'static str, kind: &'static str, symbol: &str, why: &str) {
    metrics::counter!("finql_upstream_rejected_values_total", "source" => source, "kind" => kind).increment(1);
    tracing::warn!(source, %symbol, kind, why, "rejected an item from the provider");
}

/// An exact decimal from a JSON number or numeric string. JSON numbers are printed by serde_json
/// as the shortest text that round-trips (189.98 prints `189.98`), so no binary noise creeps in.
pub fn decimal(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).ok().map(|d| d.normalize())
}

/// Milliseconds since the epoch (number or numeric string) as UTC.
pub fn millis(value: &Value) -> Option<DateTime<Utc>> {
    let ms = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64))?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    DateTime::from_timestamp_millis(ms)
}

/// An integer from a JSON number (a float only when whole) or numeric string.
pub fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Nanoseconds since the epoch (an integer or numeric string) as UTC. A float is refused: at
/// this magnitude it has already lost the last digits.
pub fn nanos(value: &Value) -> Option<DateTime<Utc>> {
    let ns = match value {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    Some(DateTime::from_timestamp_nanos(ns))
}

/// A field that must hold a number.
pub fn required_decimal(object: &Value, field: &str) -> Result<Decimal, String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(format!("missing `{field}`")),
        Some(v) => decimal(v).ok_or_else(|| format!("`{field}` is not a number: {v}")),
    }
}

/// An optional field: absent or null means `default`; present but unreadable is an error.
pub fn optional_decimal(object: &Value, field: &str, default: Decimal) -> Result<Decimal, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => decimal(v).ok_or_else(|| format!("`{field}` is not a number: {v}")),
    }
}
