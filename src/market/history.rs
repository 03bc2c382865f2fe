//! Kline history in the database: closed bars fetched once are served from storage forever
//! after, and only the part of a window not yet stored goes upstream.
//!
//! A closed bar never changes, while upstream plans allow a few hundred calls a minute, so
//! history is the one kind of market data worth keeping. Bars alone cannot say whether a range
//! is complete (markets close at night, at weekends and on holidays: gaps are normal), so each
//! fetch also records the range it proves complete in `kline_coverage`. The upstream only
//! answers "the last `n` bars before `end`", so a fetch of `n` bars that returns `n` covers
//! `[first bar, end)`, and one that returns fewer covers everything before `end`: history starts
//! there.
//!
//! Rows are keyed by source name, so switching `FINQL_MARKET_SOURCE` never serves one
//! provider's history as another's; a fallback chain (which cannot say which source answered)
//! keeps none. The store is an optimisation: any database error is logged and the window is
//! fetched upstream as if nothing were stored. Coverage is only ever written after the bars it
//! describes, so a reader never trusts a range whose bars are missing; concurrent writers (two
//! replicas) may at worst lose a coverage row, which costs a refetch, never a wrong answer.

use std::future::Future;

use chrono::{DateTime, Months, Utc};
use entity::{kline, kline_coverage};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::types::{Interval, Kline};
use crate::reference::Symbol;

/// Rows per INSERT: 10 parameters each stays far below every backend's limit.
const INSERT_CHUNK: usize = 500;

/// Bars of one series: a source's `interval` bars of one symbol.
#[derive(Clone, Debug)]
pub struct Series<'a> {
    pub source: &'static str,
    pub symbol: &'a Symbol,
    pub interval: Interval,
}

/// What one upstream call returned for "the last `asked` bars before `end`".
pub struct Fetched {
    /// Oldest first, validated.
    pub bars: Vec<Kline>,
    /// How many bars the call asked for.
    pub asked: usize,
    /// Whether validation dropped any bar: then the answer proves no range complete.
    pub had_rejects: bool,
}

/// A range `[from, to)` whose bars are all stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// No bars exist before `from`.
    history_start: bool,
}

#[derive(Clone)]
pub struct KlineHistory {
    db: DatabaseConnection,
}

impl KlineHistory {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The last `limit` closed bars starting before `end` (a bar boundary, at most the start of
    /// the bar in progress), oldest first: from storage where it covers the window, and from
    /// `fetch(end, n)` ("the last n bars before end") for the rest. At most two upstream calls:
    /// one for the recent part storage lacks, one for the older part.
    pub async fn closed_window<F, Fut, E>(
        &self,
        series: &Series<'_>,
        end: DateTime<Utc>,
        limit: usize,
        fetch: F,
    ) -> Result<Vec<Kline>, E>
    where
        F: Fn(DateTime<Utc>, usize) -> Fut,
        Fut: Future<Output = Result<Fetched, E>>,
    {
        let segments = match self.segments(series).await {
            Ok(segments) => segments,
            Err(err) => return self.degraded(series, err, fetch(end, limit)).await,
        };
        let covering = match segments.iter().find(|s| s.from < end && end <= s.to) {
            Some(segment) => *segment,
            None => {
                // Fetch what lies between the nearest stored range and `end` (at most the
                // bar slots in between), or the whole window when nothing near is stored.
                let gap = segments
                    .iter()
                    .filter(|s| s.to < end)
                    .map(|s| s.to)
                    .max()
                    .map_or(limit, |to| slots(series.interval, to, end).min(limit));
                let fetched = fetch(end, gap.max(1)).await?;
                let Some(segment) = proven(&fetched, end) else { return Ok(last(fetched.bars, limit)) };
                if fetched.bars.len() >= limit || segment.history_start {
                    self.save(series, &fetched.bars, segment).await;
                    return Ok(last(fetched.bars, limit));
                }
                self.save(series, &fetched.bars, segment).await;
                match self.segments(series).await {
                    Ok(segments) => segments.into_iter().find(|s| s.from < end && end <= s.to).unwrap_or(segment),
                    Err(_) => segment,
                }
            }
        };
        let mut stored = match self.stored(series, covering.from, end, limit).await {
            Ok(stored) => stored,
            Err(err) => return self.degraded(series, err, fetch(end, limit)).await,
        };
        if stored.len() >= limit || covering.history_start {
            return Ok(stored);
        }
        // Older bars than storage holds: the last `missing` before the covered range.
        let missing = limit - stored.len();
        let older = fetch(covering.from, missing).await?;
        if let Some(segment) = proven(&older, covering.from) {
            self.save(series, &older.bars, segment).await;
        }
        let mut bars = last(older.bars, missing);
        bars.append(&mut stored);
        Ok(bars)
    }

    /// Stores the closed bars of an answer that also holds the bar in progress (`current` is
    /// its start), with the range the answer proves complete.
    pub async fn save_recent(&self, series: &Series<'_>, fetched: &Fetched, current: DateTime<Utc>) {
        let closed: Vec<Kline> = fetched.bars.iter().filter(|bar| bar.time < current).cloned().collect();
        let answer = Fetched { bars: closed, asked: fetched.asked.saturating_sub(1), had_rejects: fetched.had_rejects };
        // The closed part of "the last n bars" is "the last n - 1 before the current one" only
        // when the current bar was in the answer.
        if fetched.bars.last().is_some_and(|bar| bar.time >= current)
            && let Some(segment) = proven(&answer, current)
        {
            self.save(series, &answer.bars, segment).await;
        }
    }

    /// How many bars the recent end of a window needs from upstream: the slots since stored
    /// history ends, plus the bar in progress (capped at `limit`).
    pub async fn recent_gap(&self, series: &Series<'_>, current: DateTime<Utc>, limit: usize) -> usize {
        match self.segments(series).await {
            Ok(segments) => segments
                .iter()
                .filter(|s| s.to <= current)
                .map(|s| s.to)
                .max()
                .map_or(limit, |to| (slots(series.interval, to, current) + 1).min(limit)),
            Err(_) => limit,
        }
    }

    async fn degraded<E>(
        &self,
        series: &Series<'_>,
        err: DbErr,
        fetch: impl Future<Output = Result<Fetched, E>>,
    ) -> Result<Vec<Kline>, E> {
        tracing::warn!(symbol = %series.symbol, error = %err, "kline history unavailable; fetching upstream");
        Ok(fetch.await?.bars)
    }

    async fn segments(&self, series: &Series<'_>) -> Result<Vec<Segment>, DbErr> {
        let rows = kline_coverage::Entity::find()
            .filter(kline_coverage::Column::Source.eq(series.source))
            .filter(kline_coverage::Column::Symbol.eq(series.symbol.as_str()))
            .filter(kline_coverage::Column::Interval.eq(series.interval.code()))
            .order_by_asc(kline_coverage::Column::FromTime)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Segment { from: r.from_time, to: r.to_time, history_start: r.history_start })
            .collect())
    }

    /// Stored bars in `[from, end)`, the last `limit`, oldest first.
    async fn stored(
        &self,
        series: &Series<'_>,
        from: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Kline>, DbErr> {
        let rows = kline::Entity::find()
            .filter(kline::Column::Source.eq(series.source))
            .filter(kline::Column::Symbol.eq(series.symbol.as_str()))
            .filter(kline::Column::Interval.eq(series.interval.code()))
            .filter(kline::Column::Time.gte(from))
            .filter(kline::Column::Time.lt(end))
            .order_by_desc(kline::Column::Time)
            .limit(limit as u64)
            .all(&self.db)
            .await?;
        let mut bars = Vec::with_capacity(rows.len());
        for row in rows.into_iter().rev() {
            match from_row(&row) {
                Some(bar) => bars.push(bar),
                // Only finql writes these rows; a bad one means tampering or a bug: say so, and
                // let the caller fetch instead of serving a hole.
                None => return Err(DbErr::Custom(format!("unreadable stored kline at {}", row.time))),
            }
        }
        Ok(bars)
    }

    /// Inserts the bars (existing ones are kept), then merges `segment` into the coverage.
    async fn save(&self, series: &Series<'_>, bars: &[Kline], segment: Segment) {
        if let Err(err) = self.try_save(series, bars, segment).await {
            tracing::warn!(symbol = %series.symbol, error = %err, "could not store klines; they will be refetched");
        }
    }

    async fn try_save(&self, series: &Series<'_>, bars: &[Kline], segment: Segment) -> Result<(), DbErr> {
        let interval = series.interval.code();
        for chunk in bars.chunks(INSERT_CHUNK) {
            let rows = chunk.iter().map(|bar| kline::ActiveModel {
                source: Set(series.source.to_owned()),
                symbol: Set(series.symbol.as_str().to_owned()),
                interval: Set(interval.to_owned()),
                time: Set(bar.time),
                open: Set(bar.open.to_string()),
                high: Set(bar.high.to_string()),
                low: Set(bar.low.to_string()),
                close: Set(bar.close.to_string()),
                volume: Set(stored_size(bar.volume)),
                turnover: Set(stored_size(bar.turnover)),
            });
            kline::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([
                    kline::Column::Source,
                    kline::Column::Symbol,
                    kline::Column::Interval,
                    kline::Column::Time,
                ])
                .exec(&self.db)
                .await?;
        }
        let txn = self.db.begin().await?;
        let existing = kline_coverage::Entity::find()
            .filter(kline_coverage::Column::Source.eq(series.source))
            .filter(kline_coverage::Column::Symbol.eq(series.symbol.as_str()))
            .filter(kline_coverage::Column::Interval.eq(interval))
            .all(&txn)
            .await?;
        let (touching, _): (Vec<_>, Vec<_>) =
            existing.into_iter().partition(|r| r.from_time <= segment.to && segment.from <= r.to_time);
        let mut merged = segment;
        for row in &touching {
            merged = merge(merged, Segment { from: row.from_time, to: row.to_time, history_start: row.history_start });
        }
        for row in touching {
            kline_coverage::Entity::delete_many()
                .filter(kline_coverage::Column::Source.eq(row.source))
                .filter(kline_coverage::Column::Symbol.eq(row.symbol))
                .filter(kline_coverage::Column::Interval.eq(row.interval))
                .filter(kline_coverage::Column::FromTime.eq(row.from_time))
                .exec(&txn)
                .await?;
        }
        kline_coverage::Entity::insert(kline_coverage::ActiveModel {
            source: Set(series.source.to_owned()),
            symbol: Set(series.symbol.as_str().to_owned()),
            interval: Set(interval.to_owned()),
            from_time: Set(merged.from),
            to_time: Set(merged.to),
            history_start: Set(merged.history_start),
        })
        .exec(&txn)
        .await?;
        txn.commit().await
    }
}

/// The range an answer to "the last `asked` bars before `end`" proves complete, if any.
fn proven(fetched: &Fetched, end: DateTime<Utc>) -> Option<Segment> {
    if fetched.had_rejects {
        return None;
    }
    let first = fetched.bars.first()?.time;
    Some(Segment { from: first, to: end, history_start: fetched.bars.len() < fetched.asked })
}

fn merge(a: Segment, b: Segment) -> Segment {
    let from = a.from.min(b.from);
    let history_start = (a.history_start && a.from == from) || (b.history_start && b.from == from);
    Segment { from, to: a.to.max(b.to), history_start }
}

fn last(mut bars: Vec<Kline>, n: usize) -> Vec<Kline> {
    let skip = bars.len().saturating_sub(n);
    bars.drain(..skip);
    bars
}

/// Bar slots in `[from, to)`: an upper bound on the bars there (markets may be closed in some).
fn slots(interval: Interval, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    if to <= from {
        return 0;
    }
    match interval.minutes() {
        Some(minutes) => {
            let len = minutes * 60;
            ((to - from).num_seconds() + len - 1).div_euclid(len).max(0) as usize
        }
        None => {
            let mut n = 0usize;
            let mut at = from;
            while at < to {
                n += 1;
                at = at.checked_add_months(Months::new(1)).unwrap_or(to);
            }
            n
        }
    }
}

/// A volume or turnover as stored: the exact decimal, or the empty string where nothing trades
/// (an index). The columns stay NOT NULL so that an older finql reading them still finds text.
fn stored_size(size: Option<Decimal>) -> String {
    size.map(|size| size.to_string()).unwrap_or_default()
}

/// The inverse of [`stored_size`]: `Some(None)` for the empty string, `None` for junk.
fn read_size(text: &str) -> Option<Option<Decimal>> {
    if text.is_empty() { Some(None) } else { text.parse::<Decimal>().ok().map(Some) }
}

fn from_row(row: &kline::Model) -> Option<Kline> {
    let d = |s: &str| s.parse::<Decimal>().ok();
    Some(Kline {
        time: row.time,
        open: d(&row.open)?,
        high: d(&row.high)?,
        low: d(&row.low)?,
        close: d(&row.close)?,
        volume: read_size(&row.volume)?,
        turnover: read_size(&row.turnover)?,
        source: crate::market::types::known_source(&row.source)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn sizes_round_trip_through_storage_none_included() {
        for size in [None, Some(Decimal::ZERO), Some("0.00001".parse().unwrap()), Some(Decimal::from(1_234_567))] {
            assert_eq!(read_size(&stored_size(size)), Some(size));
        }
        assert_eq!(read_size("junk"), None);
    }

    #[test]
    fn slots_bound_the_bars_between_two_starts() {
        assert_eq!(slots(Interval::OneMinute, t("2026-01-01T00:00:00Z"), t("2026-01-01T00:10:00Z")), 10);
        assert_eq!(slots(Interval::OneMinute, t("2026-01-01T00:00:00Z"), t("2026-01-01T00:10:30Z")), 11);
        assert_eq!(slots(Interval::OneDay, t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z")), 0);
        assert_eq!(slots(Interval::OneMonth, t("2026-01-01T00:00:00Z"), t("2026-04-01T00:00:00Z")), 3);
    }

    #[test]
    fn segments_merge_into_one_range_keeping_a_known_start() {
        let a = Segment { from: t("2026-01-05T00:00:00Z"), to: t("2026-01-10T00:00:00Z"), history_start: false };
        let b = Segment { from: t("2026-01-01T00:00:00Z"), to: t("2026-01-05T00:00:00Z"), history_start: true };
        assert_eq!(
            merge(a, b),
            Segment { from: t("2026-01-01T00:00:00Z"), to: t("2026-01-10T00:00:00Z"), history_start: true }
        );
        // A start claimed by the later range is no start of the merged one.
        let later_start = Segment { history_start: true, ..a };
        assert!(!merge(later_start, Segment { history_start: false, ..b }).history_start);
    }

    #[test]
    fn a_short_answer_proves_history_starts_and_rejects_prove_nothing() {
        let bar = |time: &str| Kline {
            time: t(time),
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            close: Decimal::ONE,
            volume: Some(Decimal::ZERO),
            turnover: Some(Decimal::ZERO),
            source: "simulated",
        };
        let end = t("2026-01-03T00:00:00Z");
        let full = Fetched {
            bars: vec![bar("2026-01-01T00:00:00Z"), bar("2026-01-02T00:00:00Z")],
            asked: 2,
            had_rejects: false,
        };
        assert_eq!(
            proven(&full, end),
            Some(Segment { from: t("2026-01-01T00:00:00Z"), to: end, history_start: false })
        );
        let short = Fetched { asked: 5, ..full };
        assert!(proven(&short, end).unwrap().history_start);
        let rejected = Fetched { had_rejects: true, ..short };
        assert_eq!(proven(&rejected, end), None);
    }
}
