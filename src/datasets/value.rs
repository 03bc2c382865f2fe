//! A field's value, typed by its manifest: read from a CSV cell or a JSON value, bound into SQL,
//! read back from a row.
//!
//! Exactness rules, as for market data: a decimal is parsed from its text and never passes
//! through a float (in JSON Lines a decimal is a string, or a whole number); an integer is a
//! GraphQL `Int` (32 bits, so every client reads it exactly; a wider figure is a decimal); an
//! instant is stored in UTC to the microsecond, like every other time finql keeps.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rust_decimal::Decimal;
use sea_orm::{QueryResult, sea_query};

use super::manifest::FieldType;

/// One typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Decimal(Decimal),
    Integer(i32),
    Text(String),
    Boolean(bool),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
}

/// The longest text value, in bytes: a dataset holds figures and labels, not documents.
pub const MAX_TEXT: usize = 4096;

impl Value {
    /// A CSV cell as a value of `ty`; `Ok(None)` for an empty cell.
    pub fn from_cell(ty: FieldType, cell: &str) -> Result<Option<Self>, String> {
        if cell.is_empty() {
            return Ok(None);
        }
        let value = match ty {
            FieldType::Decimal => Self::Decimal(decimal(cell)?),
            FieldType::Integer => Self::Integer(
                cell.trim().parse().map_err(|_| format!("`{}` is not an integer within ±2147483647", shown(cell)))?,
            ),
            FieldType::Text => Self::Text(text(cell)?),
            FieldType::Boolean => Self::Boolean(match cell.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(format!("`{}` is not a boolean (true/false, 1/0, yes/no)", shown(cell))),
            }),
            FieldType::Date => Self::Date(date(cell)?),
            FieldType::Datetime => Self::Datetime(instant(cell)?),
        };
        Ok(Some(value))
    }

    /// A JSON Lines value as a value of `ty`; `Ok(None)` for `null`.
    pub fn from_json(ty: FieldType, json: &serde_json::Value) -> Result<Option<Self>, String> {
        use serde_json::Value as J;
        match (ty, json) {
            (_, J::Null) => Ok(None),
            (FieldType::Boolean, J::Bool(b)) => Ok(Some(Self::Boolean(*b))),
            (FieldType::Integer, J::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| Some(Self::Integer(n)))
                .ok_or_else(|| format!("{n} is not an integer within ±2147483647")),
            // A whole number is exact in JSON; a fraction may already have been rounded by
            // whatever wrote it as a float.
            (FieldType::Decimal, J::Number(n)) if n.is_i64() || n.is_u64() => {
                decimal(&n.to_string()).map(|d| Some(Self::Decimal(d)))
            }
            (FieldType::Decimal, J::Number(n)) => {
                Err(format!("{n}: give a decimal with a fraction as a string (\"{n}\") to keep it exact"))
            }
            (FieldType::Decimal | FieldType::Text | FieldType::Date | FieldType::Datetime, J::String(s)) => {
                Self::from_cell(ty, s)
            }
            (_, other) => Err(format!("a {ty} cannot be {}", kind(other))),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Self::Decimal(_) => FieldType::Decimal,
            Self::Integer(_) => FieldType::Integer,
            Self::Text(_) => FieldType::Text,
            Self::Boolean(_) => FieldType::Boolean,
            Self::Date(_) => FieldType::Date,
            Self::Datetime(_) => FieldType::Datetime,
        }
    }

    /// The value bound into a statement (`None`: SQL NULL of `ty`'s column type).
    pub fn bind(ty: FieldType, value: Option<&Self>) -> sea_query::Value {
        use sea_query::Value as V;
        match (ty, value) {
            (_, Some(Self::Decimal(d))) => V::String(Some(d.to_string())),
            (_, Some(Self::Integer(n))) => V::Int(Some(*n)),
            (_, Some(Self::Text(s))) => V::String(Some(s.clone())),
            (_, Some(Self::Boolean(b))) => V::Bool(Some(*b)),
            (_, Some(Self::Date(d))) => V::ChronoDate(Some(*d)),
            (_, Some(Self::Datetime(t))) => V::ChronoDateTimeUtc(Some(*t)),
            (FieldType::Decimal | FieldType::Text, None) => V::String(None),
            (FieldType::Integer, None) => V::Int(None),
            (FieldType::Boolean, None) => V::Bool(None),
            (FieldType::Date, None) => V::ChronoDate(None),
            (FieldType::Datetime, None) => V::ChronoDateTimeUtc(None),
        }
    }

    /// Column `column` of `row`, as a value of `ty`.
    pub fn read(row: &QueryResult, column: &str, ty: FieldType) -> Result<Option<Self>, sea_orm::DbErr> {
        Ok(match ty {
            FieldType::Decimal => match row.try_get::<Option<String>>("", column)? {
                Some(text) => Some(Self::Decimal(Decimal::from_str(&text).map_err(|err| {
                    sea_orm::DbErr::Type(format!("column {column}: stored decimal `{text}` is unreadable: {err}"))
                })?)),
                None => None,
            },
            FieldType::Integer => row.try_get::<Option<i32>>("", column)?.map(Self::Integer),
            FieldType::Text => row.try_get::<Option<String>>("", column)?.map(Self::Text),
            FieldType::Boolean => row.try_get::<Option<bool>>("", column)?.map(Self::Boolean),
            FieldType::Date => row.try_get::<Option<NaiveDate>>("", column)?.map(Self::Date),
            FieldType::Datetime => row.try_get::<Option<DateTime<Utc>>>("", column)?.map(Self::Datetime),
        })
    }
}

/// An exact decimal: digits as written (trailing zeros kept), never rounded.
fn decimal(cell: &str) -> Result<Decimal, String> {
    let text = cell.trim();
    if text.contains(['e', 'E']) {
        return Err(format!("`{}`: write decimals without an exponent", shown(cell)));
    }
    Decimal::from_str_exact(text).map_err(|_| format!("`{}` is not a decimal number", shown(cell)))
}

fn text(cell: &str) -> Result<String, String> {
    if cell.len() > MAX_TEXT {
        return Err(format!("text longer than {MAX_TEXT} bytes"));
    }
    if cell.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("text with control characters".into());
    }
    Ok(cell.to_owned())
}

fn date(cell: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(cell.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{}` is not a date (YYYY-MM-DD)", shown(cell)))
}

/// An instant: RFC 3339 with any offset, or a date (its midnight UTC); kept to the microsecond.
pub fn instant(cell: &str) -> Result<DateTime<Utc>, String> {
    let cell = cell.trim();
    if let Ok(day) = NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(cell)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| format!("`{}` is neither an RFC 3339 date-time nor a date (YYYY-MM-DD)", shown(cell)))
}

/// The start of a cell for an error message: the caller's text, cut short.
pub(super) fn shown(cell: &str) -> String {
    cell.chars().take(40).collect()
}

fn kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_parse_exactly_or_say_why_not() {
        let cell = |ty, s: &str| Value::from_cell(ty, s);
        assert_eq!(cell(FieldType::Decimal, "210.50").unwrap(), Some(Value::Decimal(Decimal::new(21050, 2))));
        assert_eq!(cell(FieldType::Decimal, "").unwrap(), None);
        assert!(cell(FieldType::Decimal, "1e3").unwrap_err().contains("exponent"));
        assert!(cell(FieldType::Decimal, "12,5").unwrap_err().contains("not a decimal"));
        assert!(cell(FieldType::Decimal, "0.1234567890123456789012345678901").is_err(), "never rounded");
        assert_eq!(cell(FieldType::Integer, "-7").unwrap(), Some(Value::Integer(-7)));
        assert!(cell(FieldType::Integer, "2147483648").unwrap_err().contains("within"));
        assert_eq!(cell(FieldType::Boolean, "Yes").unwrap(), Some(Value::Boolean(true)));
        assert!(cell(FieldType::Boolean, "maybe").is_err());
        assert!(cell(FieldType::Text, "a\u{0}b").unwrap_err().contains("control"));
        assert!(cell(FieldType::Text, &"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(cell(FieldType::Date, "2026-02-30").is_err());
        let t = cell(FieldType::Datetime, "2026-12-01T13:00:00.1234567+08:00").unwrap();
        assert_eq!(t, Some(Value::Datetime("2026-12-01T05:00:00.123456Z".parse().unwrap())));
        let midnight = cell(FieldType::Datetime, "2026-12-01").unwrap();
        assert_eq!(midnight, Some(Value::Datetime("2026-12-01T00:00:00Z".parse().unwrap())));
    }

    #[test]
    fn json_values_keep_decimals_exact() {
        let j = |ty, v| Value::from_json(ty, &v);
        assert_eq!(j(FieldType::Decimal, json!("0.10")).unwrap(), Some(Value::Decimal(Decimal::new(10, 2))));
        assert_eq!(j(FieldType::Decimal, json!(12)).unwrap(), Some(Value::Decimal(Decimal::new(12, 0))));
        assert!(j(FieldType::Decimal, json!(0.1)).unwrap_err().contains("as a string"));
        assert_eq!(j(FieldType::Integer, json!(3)).unwrap(), Some(Value::Integer(3)));
        assert!(j(FieldType::Integer, json!(1.5)).is_err());
        assert!(j(FieldType::Integer, json!("3")).unwrap_err().contains("cannot be a string"));
        assert_eq!(j(FieldType::Boolean, json!(null)).unwrap(), None);
        assert!(j(FieldType::Text, json!(["a"])).unwrap_err().contains("an array"));
    }
}
