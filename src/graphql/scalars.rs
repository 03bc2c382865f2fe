//! Custom scalars: `Decimal`, `Date` and `DateTime`. Each one's schema description states its
//! wire format and links (`@specifiedBy`) to where it is specified; `docs/scalars.md` is that
//! specification for `Decimal` and the reference for all three, and what codegen tools should
//! map them to.
//!
//! `DateTime` is ours rather than async-graphql's chrono scalar: that one writes as many
//! fraction digits as the value has (none, 3, 6 or 9), so the same instant could come back
//! in different shapes depending on where it was read from; clients that compare or sort
//! the strings, or parse them with a fixed pattern, need one shape.

use std::str::FromStr;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalString(pub Decimal);

/// Digits allowed in the integer and fraction parts (rust_decimal holds 28-29 significant).
const MAX_INT_DIGITS: usize = 18;
const MAX_FRACTION_DIGITS: usize = 10;

/// An exact decimal number as a JSON string, in plain notation: an optional sign, at least
/// one integer digit, and an optional `.` followed by at least one digit (`"2500.89"`,
/// `"-0.5"`, `"500"`). No exponent, no thousands separator, no spaces; at most 18 integer and
/// 10 fraction digits on input. A JSON number is refused (most JSON parsers read it as a binary
/// float). Money amounts have exactly their currency's ISO 4217 minor-unit digits on output
/// (`"42.00"` USD, `"500"` JPY, `"1.250"` BHD) and at most those on input (`"12.345"` USD is an
/// error, never rounded). Prices keep the source's digits; derived figures have the fixed
/// number of decimals their field states.
// `@specifiedBy`: the numeric-string syntax of the General Decimal Arithmetic specification
// (the one IEEE 754-2008's decimal strings follow), of which this notation is the subset
// without exponents, infinities or NaNs; `docs/scalars.md` states the rest (the digit limits,
// minor units). There is no published GraphQL decimal-as-string scalar to point to
// (ChilliCream's `Decimal` is a JSON number), and finql has no public address of its own.
#[Scalar(name = "Decimal", specified_by_url = "https://speleotrove.com/decimal/daconvs.html#refnumsyn")]
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

/// A calendar date without a time zone, `YYYY-MM-DD` (RFC 3339 `full-date`, e.g.
/// `"2026-12-01"`). Which calendar day it names (UTC, or a market's local day) is stated by
/// each field.
#[Scalar(name = "Date", specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339#section-5.6")]
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

/// An instant, always in UTC (`DateTime` in the schema). Written to the microsecond; read with
/// whatever precision the client gave (up to nanoseconds), because rounding is the domain's
/// call: a stored `occurredAt` is truncated to the microsecond storage keeps, while a range
/// bound is rounded up so that `to: …00.0000015Z` still includes a row at `…00.000001Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

/// An instant as an RFC 3339 `date-time` string. Always written in UTC with exactly six
/// fraction digits and `Z`: `"2026-12-01T05:01:26.123456Z"`. Read with any offset
/// (`"2026-12-01T13:01:26+08:00"`, `"2026-12-01T05:01:26Z"`, up to nine fraction digits) and
/// normalised to UTC. finql stores microseconds: a finer instant is stored truncated, and a
/// finer range bound is compared exactly.
#[Scalar(name = "DateTime", specified_by_url = "https://scalars.graphql.org/andimarek/date-time")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(raw) = &value else {
            return Err(InputValueError::custom(
                "DateTime must be an RFC 3339 string such as \"2026-12-01T05:01:26.123456Z\"",
            ));
        };
        parse_timestamp(raw).map(Timestamp).map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::String(format_timestamp(self.0))
    }
}

/// An RFC 3339 `date-time` with any offset, as a UTC instant (nanoseconds kept).
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        format!(
            "`{raw}` is not an RFC 3339 date-time (expected e.g. \"2026-12-01T05:01:26.123456Z\" or \
             \"2026-12-01T13:01:26+08:00\")"
        )
    })
}

/// The one output shape: UTC, six fraction digits (truncated, never rounded up into the next
/// second), `Z`. chrono's fixed RFC 3339 writer, not a `format` string: that one is parsed
/// again for every value, a visible share of a 50-row page's CPU in the ledger benchmark.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::{format_timestamp, parse_decimal, parse_timestamp};

    #[test]
    fn timestamps_are_utc_with_six_fraction_digits() {
        // Read exactly, written truncated (never rounded up into the next second).
        assert_eq!(parse_timestamp("2026-12-01T23:59:59.9999999Z").unwrap().timestamp_subsec_nanos(), 999_999_900);
        assert_eq!(
            format_timestamp(parse_timestamp("2026-12-01T23:59:59.9999999Z").unwrap()),
            "2026-12-01T23:59:59.999999Z"
        );
        let t = |raw: &str| format_timestamp(parse_timestamp(raw).unwrap());
        assert_eq!(t("2026-12-01T05:01:26Z"), "2026-12-01T05:01:26.000000Z");
        assert_eq!(t("2026-12-01T05:01:26.5Z"), "2026-12-01T05:01:26.500000Z");
        assert_eq!(t("2026-12-01T05:01:26.123456789Z"), "2026-12-01T05:01:26.123456Z");
        assert_eq!(t("2026-12-01T13:01:26.123456+08:00"), "2026-12-01T05:01:26.123456Z");
        assert_eq!(t("2026-12-01T00:30:00-05:30"), "2026-12-01T06:00:00.000000Z");
        assert_eq!(t("2026-12-01t05:01:26z"), "2026-12-01T05:01:26.000000Z");
        for bad in ["", "2026-12-01", "2026-12-01T05:01:26", "05:01:26Z", "2026-13-01T00:00:00Z", "1764565286"] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

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
