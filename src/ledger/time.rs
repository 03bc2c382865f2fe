//! When a transaction may have happened, and time bounds over transactions.
//!
//! `occurredAt` is a date a person typed or a bank reported: anything before the Unix epoch or
//! from the 22nd century on is a typo or an attack, never a payment. Refusing it at the edge
//! also keeps every timestamp, and every cursor built from one, inside the range that SQLite's
//! text form and PostgreSQL's `timestamptz` both sort and store exactly (PostgreSQL refuses
//! years beyond 294276, and chrono parses far beyond, so a crafted cursor used to reach the
//! database and come back `INTERNAL`).
//!
//! One rule for writes, filters, analytics and cursors: a moment is accepted in
//! `[1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z)`; a range bound may also be exactly
//! `2100-01-01T00:00:00Z`, so that "everything" can be said as an exclusive `to`.

use chrono::{DateTime, Utc};

use crate::error::{AppError, AppResult};

/// The earliest `occurredAt`: the Unix epoch (no bank record predates it in this ledger).
pub const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The end of the accepted range, exclusive for `occurredAt`: 2100-01-01T00:00:00Z.
pub fn latest() -> DateTime<Utc> {
    // 4102444800 s after the epoch is 2100-01-01T00:00:00Z.
    DateTime::from_timestamp(4_102_444_800, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a transaction happened: within the accepted range, to the microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OccurredAt(DateTime<Utc>);

impl OccurredAt {
    /// Checks the range and truncates to the microsecond (storage precision).
    pub fn parse(at: DateTime<Utc>, field: &'static str) -> AppResult<Self> {
        if at < EARLIEST || at >= latest() {
            return Err(out_of_range(field));
        }
        Ok(Self(truncate_micros(at)))
    }

    /// A stored or cursor timestamp in microseconds since the epoch.
    pub fn from_micros(micros: i64, field: &'static str) -> AppResult<Self> {
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(|| out_of_range(field))?;
        Self::parse(at, field)
    }

    pub fn now() -> Self {
        Self(truncate_micros(Utc::now()))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// A bound of a time range (`from`, `to`): within the accepted range or exactly its end,
/// rounded up to the microsecond (see [`ceil_micros`]).
pub fn range_bound(at: DateTime<Utc>, field: &'static str) -> AppResult<DateTime<Utc>> {
    if at < EARLIEST || at > latest() {
        return Err(out_of_range(field));
    }
    Ok(ceil_micros(at))
}

/// A time range's rule: `from` must not be after `to` (`BAD_USER_INPUT` on `from`).
pub fn check_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> AppResult<()> {
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(AppError::bad_field("from", "`from` must not be after `to`"));
    }
    Ok(())
}

fn out_of_range(field: &'static str) -> AppError {
    AppError::bad_field(
        field,
        format!("`{field}` must be from 1970-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"),
    )
}

/// Timestamps are kept to the microsecond, PostgreSQL's precision, so that a value reads back
/// exactly as written on every backend (cursors depend on it).
pub fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// A time bound on microsecond-precise rows, rounded up to the next microsecond: for stored
/// `t`, `t >= bound` and `t >= ceil(bound)` agree (likewise `<`), and the database never sees
/// a precision it would cut silently (PostgreSQL truncates nanoseconds).
pub fn ceil_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = truncate_micros(at);
    if truncated < at { truncated + chrono::Duration::microseconds(1) } else { truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn occurred_at_is_1970_to_2099() {
        assert!(OccurredAt::parse(at("1970-01-01T00:00:00Z"), "occurredAt").is_ok());
        assert!(OccurredAt::parse(at("2099-12-31T23:59:59.999999Z"), "occurredAt").is_ok());
        assert!(OccurredAt::parse(at("1969-12-31T23:59:59.999999Z"), "occurredAt").is_err());
        assert!(OccurredAt::parse(at("2100-01-01T00:00:00Z"), "occurredAt").is_err());
        assert!(OccurredAt::parse(at("9999-12-31T23:59:59Z"), "occurredAt").is_err());
        assert!(OccurredAt::from_micros(-8_210_298_412_800_000_000, "after").is_err());
        assert!(OccurredAt::from_micros(i64::MAX, "after").is_err());
        assert_eq!(latest(), at("2100-01-01T00:00:00Z"));
    }

    #[test]
    fn range_bounds_may_be_the_end() {
        assert!(range_bound(at("2100-01-01T00:00:00Z"), "to").is_ok());
        assert!(range_bound(at("2100-01-01T00:00:00.000001Z"), "to").is_err());
        assert!(range_bound(at("1969-12-31T23:59:59Z"), "from").is_err());
    }

    #[test]
    fn a_range_may_be_empty_but_not_reversed() {
        let (earlier, later) = (at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"));
        assert!(check_range(Some(earlier), Some(later)).is_ok());
        assert!(check_range(Some(earlier), Some(earlier)).is_ok());
        assert!(check_range(Some(earlier), None).is_ok());
        let reversed = check_range(Some(later), Some(earlier)).unwrap_err();
        assert!(matches!(reversed, AppError::BadUserInput { field: Some("from"), .. }), "{:?}", reversed.message());
    }
}
