//! Reading usage back: which hours a range covers, hours folded into UTC days, and the bounds
//! that keep a report's size reasonable.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, TimeDelta, Utc};

use super::{Counts, meter::hour_of};
use crate::error::{AppError, AppResult};

/// Hourly reports span at most this many days (744 hours per actor: a month of detail).
pub const MAX_HOURLY_DAYS: i64 = 31;
/// Daily reports span at most this many days (a leap year: a yearly invoice in one call).
pub const MAX_DAILY_DAYS: i64 = 366;
/// Rows one report returns at most: the range times the actors active in it. Past this the
/// caller narrows the range (or asks for days), rather than the server building a huge answer.
pub const MAX_ROWS: usize = 20_000;

/// How a report groups hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One row per actor and UTC hour (as stored).
    Hour,
    /// One row per actor and UTC day.
    Day,
}

impl Granularity {
    /// The start of the period `hour` falls in.
    fn period_of(self, hour: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hour => hour,
            Self::Day => hour.date_naive().and_time(chrono::NaiveTime::MIN).and_utc(),
        }
    }

    fn max_days(self) -> i64 {
        match self {
            Self::Hour => MAX_HOURLY_DAYS,
            Self::Day => MAX_DAILY_DAYS,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// A checked report range: `from <= t < to`, on period boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
}

impl Range {
    /// Widens `[from, to)` outwards to whole periods (a period partly in the range is reported
    /// whole: usage is stored per hour and cannot be split finer), and refuses an empty,
    /// reversed or too long range.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, granularity: Granularity) -> AppResult<Self> {
        if to <= from {
            return Err(AppError::bad_field("to", "`to` must be after `from`"));
        }
        let start = granularity.period_of(hour_of(from));
        let last = granularity.period_of(hour_of(to - TimeDelta::nanoseconds(1)));
        let end = match granularity {
            Granularity::Hour => last + TimeDelta::hours(1),
            Granularity::Day => last.checked_add_days(Days::new(1)).unwrap_or(last),
        };
        let max = granularity.max_days();
        if end - start > TimeDelta::days(max) {
            return Err(AppError::bad_field(
                "to",
                format!("a {} report spans at most {max} days", granularity.as_str()),
            ));
        }
        Ok(Self { from: start, to: end, granularity })
    }
}

/// One row of a report: an actor's usage in one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsagePeriod {
    /// The start of the UTC hour or day.
    pub start: DateTime<Utc>,
    /// `user:<id>`, `key:<prefix>` or `overflow`.
    pub actor: String,
    pub counts: Counts,
}

/// Folds stored hourly rows into periods, in period then actor order.
#[derive(Default)]
pub struct Aggregate {
    periods: BTreeMap<(DateTime<Utc>, String), Counts>,
}

impl Aggregate {
    pub fn add(&mut self, granularity: Granularity, row: entity::usage_hourly::Model) -> AppResult<()> {
        let n = |value: i64| u64::try_from(value).unwrap_or(0);
        let counts = Counts {
            requests: n(row.requests),
            cost: n(row.cost),
            errors: n(row.errors),
            rate_limited: n(row.rate_limited),
            response_bytes: n(row.response_bytes),
            subscription_seconds: n(row.subscription_seconds),
        };
        let key = (granularity.period_of(row.hour), row.actor);
        if !self.periods.contains_key(&key) && self.periods.len() >= MAX_ROWS {
            return Err(AppError::bad_input(format!(
                "the report would exceed {MAX_ROWS} rows: narrow the range or report by day"
            )));
        }
        self.periods.entry(key).or_default().add(&counts);
        Ok(())
    }

    pub fn rows(self) -> Vec<UsagePeriod> {
        self.periods.into_iter().map(|((start, actor), counts)| UsagePeriod { start, actor, counts }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges_widen_to_whole_periods() {
        let r = Range::new(at("2026-12-01T05:30:00Z"), at("2026-12-01T07:00:00Z"), Granularity::Hour).unwrap();
        assert_eq!((r.from, r.to), (at("2026-12-01T05:00:00Z"), at("2026-12-01T07:00:00Z")));
        let r = Range::new(at("2026-12-01T05:30:00Z"), at("2026-12-01T07:00:01Z"), Granularity::Hour).unwrap();
        assert_eq!(r.to, at("2026-12-01T08:00:00Z"));
        let r = Range::new(at("2026-12-01T05:30:00Z"), at("2026-12-03T00:00:00Z"), Granularity::Day).unwrap();
        assert_eq!((r.from, r.to), (at("2026-12-01T00:00:00Z"), at("2026-12-03T00:00:00Z")));
    }

    #[test]
    fn empty_reversed_and_long_ranges_are_refused() {
        let t = at("2026-12-01T00:00:00Z");
        assert!(Range::new(t, t, Granularity::Hour).is_err());
        assert!(Range::new(t, t - TimeDelta::hours(1), Granularity::Day).is_err());
        assert!(Range::new(t, t + TimeDelta::days(31), Granularity::Hour).is_ok());
        assert!(Range::new(t, t + TimeDelta::days(32), Granularity::Hour).is_err());
        assert!(Range::new(t, t + TimeDelta::days(366), Granularity::Day).is_ok());
        assert!(Range::new(t, t + TimeDelta::days(367), Granularity::Day).is_err());
    }

    #[test]
    fn hours_fold_into_utc_days_per_actor() {
        let row = |hour: &str, actor: &str, requests: i64| entity::usage_hourly::Model {
            tenant_id: uuid::Uuid::nil(),
            hour: at(hour),
            actor: actor.into(),
            requests,
            cost: 1,
            errors: 0,
            rate_limited: 0,
            response_bytes: 10,
            subscription_seconds: 0,
        };
        let mut days = Aggregate::default();
        for r in [
            row("2026-12-01T00:00:00Z", "key:a", 1),
            row("2026-12-01T23:00:00Z", "key:a", 2),
            row("2026-12-01T23:00:00Z", "key:b", 4),
            row("2026-12-02T00:00:00Z", "key:a", 8),
        ] {
            days.add(Granularity::Day, r).unwrap();
        }
        let rows = days.rows();
        let summary: Vec<(String, &str, u64, u64)> = rows
            .iter()
            .map(|r| (r.start.to_rfc3339(), r.actor.as_str(), r.counts.requests, r.counts.response_bytes))
            .collect();
        assert_eq!(
            summary,
            [
                ("2026-12-01T00:00:00+00:00".to_owned(), "key:a", 3, 20),
                ("2026-12-01T00:00:00+00:00".to_owned(), "key:b", 4, 10),
                ("2026-12-02T00:00:00+00:00".to_owned(), "key:a", 8, 10),
            ]
        );
    }
}
