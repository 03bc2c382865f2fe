//! `FundamentalsService`: corporate actions, fundamentals, and klines adjusted for actions.
//!
//! Reference data changes rarely and upstream quotas are small, so corporate actions and
//! fundamentals are cached for a day (moka, as the quotes are); concurrent misses for the same
//! key share one upstream call (moka's `try_get_with` is a single flight). Forex, indices,
//! crypto and futures have no corporate actions and no fundamentals: they answer empty lists
//! without asking the source.
//!
//! Adjusted klines are the as-traded bars of [`MarketService::klines`], restated by
//! [`corporate::adjust_klines`]; a dividend's factor needs the close before its ex-date, read
//! from the daily klines (closed bars, cached by the market service without expiry).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::future::try_join_all;
use moka::future::Cache;

use super::{
    corporate::{self, ActionKind, Adjust, AdjustmentEvent, CorporateAction, FundamentalPoint},
    service::MarketService,
    source::{Asked, MarketSource, SourceError},
    types::{Instrument, Interval, Kline},
};
use crate::{
    error::{AppError, AppResult},
    reference::Symbol,
    reference::service::AssetClass,
};

/// Reference data is restated at most daily upstream.
const TTL: Duration = Duration::from_secs(86_400);
/// Entries: every instrument many times over, small in memory.
const ACTIONS_CACHE: u64 = 10_000;
/// Fundamentals are cached per (symbol, from, to); a series of 20 years is ~7,300 points.
const FUNDAMENTALS_CACHE: u64 = 2_000;
/// The longest `fundamentals` range: 20 years, enough for any valuation band, and a bound on
/// the work one request can ask for.
pub const MAX_FUNDAMENTALS_YEARS: i32 = 20;

type FundamentalsKey = (Symbol, NaiveDate, NaiveDate);

#[derive(Clone)]
pub struct FundamentalsService {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn MarketSource>,
    market: MarketService,
    actions: Cache<Symbol, Arc<Vec<CorporateAction>>>,
    fundamentals: Cache<FundamentalsKey, Arc<Vec<FundamentalPoint>>>,
}

/// Whether an asset class has corporate actions and fundamentals at all.
fn has_actions(instrument: &Instrument) -> bool {
    matches!(instrument.asset_class, AssetClass::Stock | AssetClass::Fund)
}

impl FundamentalsService {
    pub fn new(source: Arc<dyn MarketSource>, market: MarketService) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                market,
                actions: Cache::builder().max_capacity(ACTIONS_CACHE).time_to_live(TTL).build(),
                fundamentals: Cache::builder().max_capacity(FUNDAMENTALS_CACHE).time_to_live(TTL).build(),
            }),
        }
    }

    /// Splits and dividends, oldest first.
    pub async fn corporate_actions(&self, symbol: &Symbol) -> AppResult<Arc<Vec<CorporateAction>>> {
        let instrument = self.inner.market.instrument(symbol).await?;
        if !has_actions(&instrument) {
            return Ok(Arc::new(Vec::new()));
        }
        let (source, market) = (self.inner.source.clone(), self.inner.market.clone());
        self.inner
            .actions
            .try_get_with(symbol.clone(), async move {
                let mut actions = market.upstream(source.corporate_actions(&instrument)).await?;
                actions.sort_by_key(|a| a.ex_date);
                Ok::<_, SourceError>(Arc::new(actions))
            })
            .await
            .map_err(|err| SourceError::clone(&err).about(symbol, Asked::ReferenceData).into())
    }

    /// Valuation points from `from` to `to` (inclusive), oldest first. BAD_USER_INPUT when
    /// `from` is after `to` or the range is longer than [`MAX_FUNDAMENTALS_YEARS`].
    pub async fn fundamentals(
        &self,
        symbol: &Symbol,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Arc<Vec<FundamentalPoint>>> {
        check_range(from, to)?;
        let instrument = self.inner.market.instrument(symbol).await?;
        if !has_actions(&instrument) {
            return Ok(Arc::new(Vec::new()));
        }
        let (source, market) = (self.inner.source.clone(), self.inner.market.clone());
        self.inner
            .fundamentals
            .try_get_with((symbol.clone(), from, to), async move {
                let mut points = market.upstream(source.fundamentals(&instrument, from, to)).await?;
                points.retain(|p| p.date >= from && p.date <= to);
                points.sort_by_key(|p| p.date);
                Ok::<_, SourceError>(Arc::new(points))
            })
            .await
            .map_err(|err| SourceError::clone(&err).about(symbol, Asked::ReferenceData).into())
    }

    /// `bars` of `interval` (as traded, oldest first) of `symbol`, adjusted. A weekly or monthly
    /// bar that straddles an ex-date is re-aggregated from its adjusted days.
    pub async fn adjust(
        &self,
        symbol: &Symbol,
        interval: Interval,
        bars: Vec<Kline>,
        mode: Adjust,
    ) -> AppResult<Vec<Kline>> {
        if mode == Adjust::None || bars.is_empty() {
            return Ok(bars);
        }
        let actions = self.corporate_actions(symbol).await?;
        let (first, last) = (bars[0].time, bars[bars.len() - 1].time);
        // Only the ex-dates that move some bar of the window matter.
        let relevant = actions.iter().filter(|a| match mode {
            Adjust::Forward => a.effective() > first,
            _ => a.effective() < interval.next_start(last),
        });
        let events = try_join_all(relevant.map(|action| async move {
            let prev_close = match action.kind {
                ActionKind::Dividend { .. } => self.close_before(symbol, action.effective()).await?,
                ActionKind::Split { .. } => None,
            };
            Ok::<_, AppError>(AdjustmentEvent::new(action, prev_close))
        }))
        .await?;
        let mut adjusted = corporate::adjust_klines(&bars, &events, mode);
        if matches!(interval, Interval::OneWeek | Interval::OneMonth) {
            for (slot, bar) in adjusted.iter_mut().zip(&bars) {
                let next = interval.next_start(bar.time);
                if events.iter().any(|e| e.effective > bar.time && e.effective < next) {
                    let days = self.days_of(symbol, bar.time, next).await?;
                    if let Some(whole) = corporate::aggregate(bar.time, &corporate::adjust_klines(&days, &events, mode))
                    {
                        *slot = whole;
                    }
                }
            }
        }
        Ok(adjusted)
    }

    /// The daily bars from `start` to `end` (as traded), up to now.
    async fn days_of(&self, symbol: &Symbol, start: DateTime<Utc>, end: DateTime<Utc>) -> AppResult<Vec<Kline>> {
        let now = Utc::now();
        let until = end.min(now);
        let count = ((until - start).num_seconds() + 86_399) / 86_400;
        let end = Some(end).filter(|end| *end <= now);
        let bars = self.inner.market.klines(symbol, Interval::OneDay, end, count.max(1) as usize).await?;
        Ok(bars.iter().filter(|bar| bar.time >= start && bar.time < until.max(start)).cloned().collect())
    }

    /// The close of the last daily bar before `at`, as traded.
    async fn close_before(&self, symbol: &Symbol, at: DateTime<Utc>) -> AppResult<Option<rust_decimal::Decimal>> {
        let bars = self.inner.market.klines(symbol, Interval::OneDay, Some(at), 1).await?;
        Ok(bars.last().map(|bar| bar.close))
    }
}

/// `from` ≤ `to`, at most [`MAX_FUNDAMENTALS_YEARS`] apart.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> AppResult<()> {
    let bad = AppError::bad_input;
    if from > to {
        return Err(bad(format!("`from` ({from}) must not be after `to` ({to})")));
    }
    let limit = from.with_year(from.year() + MAX_FUNDAMENTALS_YEARS).unwrap_or(NaiveDate::MAX);
    if to > limit {
        return Err(bad(format!("the range from `from` to `to` may span at most {MAX_FUNDAMENTALS_YEARS} years")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn ranges() {
        assert!(check_range(date(2020, 1, 1), date(2020, 1, 1)).is_ok());
        assert!(check_range(date(2005, 1, 1), date(2025, 1, 1)).is_ok(), "exactly 20 years");
        let err = check_range(date(2005, 1, 1), date(2025, 1, 2)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadUserInput);
        assert_eq!(check_range(date(2020, 1, 2), date(2020, 1, 1)).unwrap_err().code(), ErrorCode::BadUserInput);
    }
}
