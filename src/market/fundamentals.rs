//! `FundamentalsService`: corporate actions, fundamentals, and klines adjusted for actions.
//!
//! Reference data changes rarely and upstream quotas are small, so corporate actions and
//! fundamentals are cached (moka, as the quotes are); concurrent misses for the same key share
//! one upstream call (moka's `try_get_with` is a single flight). Forex, indices, crypto and
//! futures have no corporate actions and no fundamentals: they answer empty lists without
//! asking the source, and their klines are never adjusted.
//!
//! **One day, one value.** Fundamentals are asked of the source by calendar year, whatever range
//! a client asks, and served from those year blocks: a day's figures come from the same source
//! answer whether it is asked alone or inside a 20-year band (asking the source for exactly the
//! client's range let the same day differ between ranges, because each range was a separate
//! call at a separate moment, and today's point is the live price of its moment). Closed years
//! are kept for a day; the current year, whose last point moves with the price, for
//! [`OPEN_YEAR_TTL`](crate::market::fundamentals::OPEN_YEAR_TTL). Points are on the instrument market's trading days only, with derived
//! figures at their stated precision ([`FundamentalPoint::derived`](crate::market::corporate::FundamentalPoint::derived)), and served a page at a
//! time ([`FundamentalsPage`](crate::market::fundamentals::FundamentalsPage)).
//!
//! Adjusted klines are the as-traded bars of [`MarketService::klines`], restated by
//! [`corporate::adjust_klines`]; a dividend's factor needs the close before its ex-date, read
//! from the daily klines (closed bars, cached by the market service without expiry). Weeks and
//! months are rebuilt from their adjusted days, so they are exact aggregates of them.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::future::try_join_all;
use moka::future::Cache;

use super::{
    calendar,
    corporate::{self, ActionKind, Adjust, AdjustmentEvent, CorporateAction, FundamentalPoint},
    limits::MAX_KLINES,
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
/// The current year's block ends with today's point, priced at the moment it was asked: a
/// minute bounds how stale that price is, while every range asked within the minute agrees on
/// it (and a source with a small quota is asked at most once a minute per instrument).
pub const OPEN_YEAR_TTL: Duration = Duration::from_secs(60);
/// Entries: every instrument many times over, small in memory.
const ACTIONS_CACHE: u64 = 10_000;
/// Year blocks (about 250 points each): every listed stock's last few years.
const YEARS_CACHE: u64 = 5_000;
/// The longest `fundamentals` range: 20 years, enough for any valuation band, and a bound on
/// the work one request can ask for.
pub const MAX_FUNDAMENTALS_YEARS: i32 = 20;

type YearKey = (Symbol, i32);

/// One page of fundamentals: points oldest first, and whether the range has more after them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FundamentalsPage {
    pub points: Vec<FundamentalPoint>,
    pub has_next_page: bool,
}

#[derive(Clone)]
pub struct FundamentalsService {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn MarketSource>,
    market: MarketService,
    actions: Cache<Symbol, Arc<Vec<CorporateAction>>>,
    /// Year blocks of fundamentals that ended before today.
    closed_years: Cache<YearKey, Arc<Vec<FundamentalPoint>>>,
    /// The current year's block (see [`OPEN_YEAR_TTL`]).
    open_years: Cache<YearKey, Arc<Vec<FundamentalPoint>>>,
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
                closed_years: Cache::builder().max_capacity(YEARS_CACHE).time_to_live(TTL).build(),
                open_years: Cache::builder().max_capacity(YEARS_CACHE).time_to_live(OPEN_YEAR_TTL).build(),
            }),
        }
    }

    /// Splits and dividends, oldest first (the source's order kept between actions of one day).
    /// An ex-date that is not a trading day of the instrument's market is a data problem of the
    /// source: it is logged and served as given (why: `warn_off_calendar`).
    #[tracing::instrument(name = "market.corporate_actions", skip_all)]
    pub async fn corporate_actions(&self, symbol: &Symbol) -> AppResult<Arc<Vec<CorporateAction>>> {
        let instrument = self.inner.market.instrument(symbol).await?;
        if !has_actions(&instrument) {
            return Ok(Arc::new(Vec::new()));
        }
        let (source, market) = (self.inner.source.clone(), self.inner.market.clone());
        self.inner
            .actions
            .try_get_with(symbol.clone(), async move {
                let mut actions = market.upstream("corporate_actions", source.corporate_actions(&instrument)).await?;
                actions.sort_by_key(|a| a.ex_date);
                warn_off_calendar(&instrument, &actions);
                Ok::<_, SourceError>(Arc::new(actions))
            })
            .await
            .map_err(|err| SourceError::clone(&err).about(symbol, Asked::ReferenceData).into())
    }

    /// Up to `first` valuation points from `from` to `to` (inclusive; after `after` when
    /// given), oldest first, on trading days only, with whether more follow. BAD_USER_INPUT
    /// when `from` is after `to` or the range is longer than [`MAX_FUNDAMENTALS_YEARS`].
    #[tracing::instrument(name = "market.fundamentals", skip_all)]
    pub async fn fundamentals(
        &self,
        symbol: &Symbol,
        from: NaiveDate,
        to: NaiveDate,
        first: usize,
        after: Option<NaiveDate>,
    ) -> AppResult<FundamentalsPage> {
        check_range(from, to)?;
        let instrument = self.inner.market.instrument(symbol).await?;
        if !has_actions(&instrument) {
            return Ok(FundamentalsPage::default());
        }
        let start = match after.and_then(|after| after.succ_opt()) {
            Some(next) => next.max(from),
            None if after.is_some() => return Ok(FundamentalsPage::default()),
            None => from,
        };
        let this_year = Utc::now().year();
        let mut points = Vec::new();
        // Year by year, only as far as the page needs.
        for year in start.year()..=to.year().min(this_year) {
            let block = self.year(symbol, &instrument, year, year == this_year).await?;
            points.extend(block.iter().filter(|p| p.date >= start && p.date <= to).cloned());
            if points.len() > first {
                break;
            }
        }
        let has_next_page = points.len() > first;
        points.truncate(first);
        Ok(FundamentalsPage { points, has_next_page })
    }

    /// The fundamentals of one calendar year as served: the source's answer for the whole year,
    /// on trading days, one point a day, derived figures at their stated precision.
    async fn year(
        &self,
        symbol: &Symbol,
        instrument: &Instrument,
        year: i32,
        open: bool,
    ) -> AppResult<Arc<Vec<FundamentalPoint>>> {
        let (Some(first), Some(last)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 31))
        else {
            return Ok(Arc::new(Vec::new()));
        };
        let actions = self.corporate_actions(symbol).await?;
        let (source, market, instrument) = (self.inner.source.clone(), self.inner.market.clone(), instrument.clone());
        let cache = if open { &self.inner.open_years } else { &self.inner.closed_years };
        // Set by the loader: the look-up that ran it missed (one that joined it counts as a hit).
        let missed = &std::sync::atomic::AtomicBool::new(false);
        let found = cache
            .try_get_with((symbol.clone(), year), async move {
                missed.store(true, std::sync::atomic::Ordering::Relaxed);
                let mut points = market.upstream("fundamentals", source.fundamentals(&instrument, first, last)).await?;
                points.retain(|p| {
                    p.date >= first && p.date <= last && calendar::is_trading_day(instrument.market, p.date)
                });
                points.sort_by_key(|p| p.date);
                points.dedup_by_key(|p| p.date);
                let points = points.into_iter().map(|p| p.derived(&actions)).collect();
                Ok::<_, SourceError>(Arc::new(points))
            })
            .await;
        let missed = missed.load(std::sync::atomic::Ordering::Relaxed);
        crate::metrics::cache_lookup("fundamentals", crate::metrics::hit_or_miss(!missed));
        found.map_err(|err| SourceError::clone(&err).about(symbol, Asked::ReferenceData).into())
    }

    /// `bars` of `interval` (as traded, oldest first) of `symbol`, adjusted: every price at the
    /// stated scale. A week or month is rebuilt as the exact aggregate of its adjusted days.
    /// Instruments without corporate actions (forex, crypto, indices, futures) are as traded.
    pub async fn adjust(
        &self,
        symbol: &Symbol,
        interval: Interval,
        bars: Vec<Kline>,
        mode: Adjust,
    ) -> AppResult<Vec<Kline>> {
        let (Some(first), Some(last)) = (bars.first(), bars.last()) else { return Ok(bars) };
        if mode == Adjust::None || !has_actions(&self.inner.market.instrument(symbol).await?) {
            return Ok(bars);
        }
        let (first, end) = (first.time, interval.next_start(last.time));
        let actions = self.corporate_actions(symbol).await?;
        // Only the ex-dates that move some bar of the window matter.
        let relevant = actions.iter().filter(|a| match mode {
            Adjust::Forward => a.effective() > first,
            _ => a.effective() < end,
        });
        let events = try_join_all(relevant.map(|action| async move {
            let prev_close = match action.kind {
                ActionKind::Dividend { .. } => self.close_before(symbol, action.effective()).await?,
                ActionKind::Split { .. } => None,
            };
            Ok::<_, AppError>(AdjustmentEvent::new(action, prev_close))
        }))
        .await?;
        if !matches!(interval, Interval::OneWeek | Interval::OneMonth) {
            return Ok(corporate::adjust_klines(&bars, &events, mode));
        }
        // Round once, at the day; then aggregate exactly.
        let days = corporate::adjust_klines(&self.days_between(symbol, first, end).await?, &events, mode);
        let mut rest = days.as_slice();
        Ok(bars
            .iter()
            .map(|bar| {
                let next = interval.next_start(bar.time);
                let skip = rest.iter().take_while(|day| day.time < bar.time).count();
                let inside = rest[skip..].iter().take_while(|day| day.time < next).count();
                let (of_bar, later) = rest[skip..].split_at(inside);
                rest = later;
                corporate::aggregate(bar.time, of_bar).unwrap_or_else(|| {
                    // No day inside (a source gap): the bar itself, adjusted as one.
                    corporate::adjust_klines(std::slice::from_ref(bar), &events, mode).swap_remove(0)
                })
            })
            .collect())
    }

    /// The daily bars from `start` to `end` (as traded, oldest first), the day in progress
    /// included, fetched backwards in windows of at most [`MAX_KLINES`] bars.
    async fn days_between(&self, symbol: &Symbol, start: DateTime<Utc>, end: DateTime<Utc>) -> AppResult<Vec<Kline>> {
        let now = Utc::now();
        // `None`: the latest window, with the bar in progress.
        let mut before = Some(end).filter(|end| *end <= now);
        let mut days: Vec<Kline> = Vec::new();
        loop {
            let until = before.unwrap_or(now);
            if until <= start {
                break;
            }
            // At most one bar a calendar day, so this many reach back to `start`.
            let calendar_days = (until - start).num_days() + 1;
            let limit = calendar_days.clamp(1, i64::from(MAX_KLINES)) as usize;
            let bars = self.inner.market.klines(symbol, Interval::OneDay, before, limit).await?;
            days.extend(bars.iter().filter(|bar| bar.time >= start && bar.time < end).cloned());
            match bars.first() {
                Some(oldest) if bars.len() == limit && oldest.time > start && Some(oldest.time) != before => {
                    before = Some(oldest.time);
                }
                _ => break,
            }
        }
        days.sort_by_key(|bar| bar.time);
        days.dedup_by_key(|bar| bar.time);
        Ok(days)
    }

    /// The close of the last daily bar before `at`, as traded.
    async fn close_before(&self, symbol: &Symbol, at: DateTime<Utc>) -> AppResult<Option<rust_decimal::Decimal>> {
        let bars = self.inner.market.klines(symbol, Interval::OneDay, Some(at), 1).await?;
        Ok(bars.last().map(|bar| bar.close))
    }
}

/// Logs the ex-dates that are not trading days of the instrument's market. They are served as
/// given rather than dropped: dropping a split would leave every adjusted price before it off by
/// its ratio, while an ex-date on a holiday adjusts exactly as on the next trading day (no bar
/// lies between them). The log says which source data to fix.
fn warn_off_calendar(instrument: &Instrument, actions: &[CorporateAction]) {
    let off: Vec<NaiveDate> =
        actions.iter().map(|a| a.ex_date).filter(|date| !calendar::is_trading_day(instrument.market, *date)).collect();
    if let (Some(first), count) = (off.first(), off.len()) {
        tracing::warn!(symbol = %instrument.symbol, count, %first, "ex-dates on days the market does not trade");
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
