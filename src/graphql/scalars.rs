//! Custom scalars.

use std::str::FromStr;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// An exact decimal number, as a string: `"2500.89"`.
///
/// Only strings are accepted: a JSON number goes through a binary float in most JSON parsers
/// (9007199254740993 becomes ...992), which is unacceptable for money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalString(pub Decimal);

/// Digits allowed in the integer and fraction parts (rust_decimal holds 28-29 significant).
const MAX_INT_DIGITS: usize = 18;
const MAX_FRACTION_DIGITS: usize = 10;

#[Scalar(name = "Decimal")]
impl ScalarType for DecimalString {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(raw) = &value else {
            return Err(InputValueError::custom("Decimal must be a string such as \"2500.89\", not a JSON number"));
        };
        parse_decimal(raw).map(DecimalString).map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// Plain decimal notation only: optional sign, digits, optional fraction. No exponents, no
/// thousands separators, no surrounding spaces.
pub fn parse_decimal(raw: &str) -> Result<Decimal, String> {
    let invalid = || format!("`{raw}` is not a decimal number (expected e.g. \"2500.89\")");
    let unsigned = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) || (unsigned.contains('.') && frac.is_empty()) {
        return Err(invalid());
    }
    if int.len() > MAX_INT_DIGITS || frac.len() > MAX_FRACTION_DIGITS {
        return Err(format!("`{raw}` has too many digits"));
    }
    Decimal::from_str(raw).map_err(|_| invalid())
}

/// A calendar date, `YYYY-MM-DD` (ledger days, fundamentals, corporate actions). Here, in the
/// GraphQL kit, so that domains share it without importing one another.
#[derive(Clone, Copy)]
pub struct Date(pub NaiveDate);

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Self(d)
    }
}

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_decimal;

    #[test]
    fn strict_plain_decimals() {
        assert_eq!(parse_decimal("2500.89").unwrap().to_string(), "2500.89");
        assert_eq!(parse_decimal("-0.5").unwrap().to_string(), "-0.5");
        for bad in ["", ".5", "5.", "1e3", "1,000", " 1", "NaN", "0x10", "1.2.3", "--1"] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
        assert!(parse_decimal("1234567890123456789").is_err());
    }
}
