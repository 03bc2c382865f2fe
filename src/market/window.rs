//! The kline window a request asks for. A rule of the market domain, shared by `Query.klines`,
//! `Security.klines` and adjusted klines; the resolvers only translate their arguments.
//!
//! Bars are oldest first, and `before` and `after` are cursors on time, meant to be given a
//! bar's `time` (its start) to page from:
//!
//! - **neither**: the latest `limit` bars, the one in progress included.
//! - **`before` alone** (paging back): the last `limit` bars that end at or before `before`. A
//!   bar ends where the next one starts, so the bar *containing* `before` is left out, even
//!   when `before` falls inside it: a backtest asking for "the bars before 10:30" never sees the
//!   10:00–11:00 bar, whose high, low and close come from after 10:30. Given a bar's start, this
//!   is simply "the bars starting before it". The bar in progress counts as ending at its
//!   scheduled end.
//! - **`after`** (paging forward), alone or with `before`: the first `limit` bars that start
//!   strictly after `after` (so the bar containing `after`, or starting at it, is left out),
//!   and, with `before`, end at or before `before`. When more than `limit` bars lie between
//!   `after` and `before`, these are the *first* `limit` of them: page on with `after` = the
//!   last bar's `time` until a page is empty. `after` must be earlier than `before`.
//!
//! No bars precede the instrument's listing date (`Security.listedAt`): a window entirely
//! before it is an empty list, answered without asking the source; one that straddles it
//! starts at the first bar in which the instrument traded.
//!
//! Sources only answer "the last n bars before t", so a forward page is found by walking
//! windows forward from `after` (from the listing day when `after` is earlier) until `limit`
//! bars are in hand or the window reaches `before` (or now): markets close at night, at
//! weekends and on holidays, so a window of `limit` bar slots may hold fewer than `limit` bars.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    limits::MAX_KLINES,
    service::MarketService,
    types::{Interval, Kline},
};
use crate::{error::AppError, reference::Symbol};

/// Windows a forward page walks at most. Each spans up to `MAX_KLINES` bar slots, so eight
/// cover 5.5 days of 1-minute bars, more than the longest market closure finql models (a
/// holiday weekend); a longer gap (a suspension of months, at 1-minute bars) ends the page
/// early, and the next page, from the last bar returned, walks on.
const MAX_FORWARD_WINDOWS: usize = 8;

impl MarketService {
    /// Klines of the `before`/`after` window (see the module docs): `BAD_USER_INPUT` on `after`
    /// unless it is earlier than `before`.
    pub async fn klines_window(
        &self,
        symbol: &Symbol,
        interval: Interval,
        limit: usize,
        before: Option<DateTime<Utc>>,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Kline>, AppError> {
        if let (Some(before), Some(after)) = (before, after)
            && after >= before
        {
            return Err(AppError::bad_field("after", "`after` must be earlier than `before`"));
        }
        let listed = self.instrument(symbol).await?.listed_at.map(start_of_day);
        if let (Some(listed), Some(before)) = (listed, before)
            && before <= listed
        {
            return Ok(Vec::new());
        }
        let keep = |bar: &Kline| {
            before.is_none_or(|before| ends_by(interval, bar, before))
                && after.is_none_or(|after| bar.time > after)
                && listed.is_none_or(|listed| interval.next_start(bar.time) > listed)
        };
        let Some(after) = after else {
            // The service's window already ends at the start of the bar containing `before`.
            let bars = self.klines(symbol, interval, before, limit).await?;
            let kept: Vec<Kline> = bars.iter().filter(|bar| keep(bar)).cloned().collect();
            let skip = kept.len().saturating_sub(limit);
            return Ok(kept.into_iter().skip(skip).collect());
        };
        let now = Utc::now();
        let cap = before.map_or(now, |before| before.min(now));
        let mut from = interval.bar_start(listed.map_or(after, |listed| after.max(listed)));
        let mut span = (limit + 1).min(MAX_KLINES as usize);
        let mut found: Vec<Kline> = Vec::new();
        for _ in 0..MAX_FORWARD_WINDOWS {
            let mut end = from;
            for _ in 0..span {
                end = interval.next_start(end);
            }
            let reaches_cap = end >= cap;
            // A window past now is the latest bars, the one in progress included.
            let window_end = if end > now { before.filter(|before| *before <= now) } else { Some(end) };
            let bars = self.klines(symbol, interval, window_end, span).await?;
            let last = found.last().map(|bar| bar.time);
            found.extend(bars.iter().filter(|bar| keep(bar) && last.is_none_or(|last| bar.time > last)).cloned());
            if found.len() >= limit || reaches_cap {
                break;
            }
            from = end;
            span = MAX_KLINES as usize;
        }
        found.truncate(limit);
        Ok(found)
    }
}

/// Whether the bar ends at or before `at` (a bar ends where the next one starts).
fn ends_by(interval: Interval, bar: &Kline, at: DateTime<Utc>) -> bool {
    interval.next_start(bar.time) <= at
}

/// The listing day's first instant, UTC.
fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn bar(time: &str) -> Kline {
        let one = Decimal::ONE;
        Kline {
            time: t(time),
            open: one,
            high: one,
            low: one,
            close: one,
            volume: Some(one),
            turnover: Some(one),
            source: "simulated",
        }
    }

    #[test]
    fn a_bar_ends_where_the_next_starts() {
        let hour = bar("2026-11-25T10:00:00Z");
        assert!(!ends_by(Interval::OneHour, &hour, t("2026-11-25T10:30:00Z")), "contains `before`");
        assert!(ends_by(Interval::OneHour, &hour, t("2026-11-25T11:00:00Z")));
        let month = bar("2026-02-01T00:00:00Z");
        assert!(!ends_by(Interval::OneMonth, &month, t("2026-02-28T23:59:59Z")));
        assert!(ends_by(Interval::OneMonth, &month, t("2026-03-01T00:00:00Z")));
    }

    #[test]
    fn the_listing_day_starts_at_midnight_utc() {
        let day = NaiveDate::from_ymd_opt(1980, 12, 12).unwrap();
        assert_eq!(start_of_day(day), t("1980-12-12T00:00:00Z"));
    }
}
