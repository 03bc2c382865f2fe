//! The built-in simulated market: the default source, so finql runs with no account and no
//! network.
//!
//! Every instrument gets a deterministic price path seeded from its symbol, at a plausible level
//! for the real instrument (a reference table covers the whole catalog; unknown symbols get a
//! level derived from a hash of the symbol). Nothing is stored and nothing is random at run time:
//! every number is a pure function of the symbol, the calendar and the time, so two instances
//! (or two replicas) agree, history never changes, and any bar of any period is computable on
//! demand.
//!
//! # The model
//!
//! The path is built top down, each level refining the one above it:
//!
//! 1. **Trend.** The log price follows a trend through the reference level (of 2025-01-01),
//!    growing at a rate per instrument (the famous names about their 2000–2025 record: AAPL 22%
//!    a year, so about $80 split-adjusted early in 2020; most shares 4–14%, indices and funds
//!    7%, FX ±1%, crypto 30–50%), at most 10% a year after the reference day. Earnings, book
//!    value and dividends (`reference`) follow the same trend, so P/E and P/B wander around
//!    their typical values instead of drifting with the years.
//! 2. **Days.** Around the trend, the log price at each UTC midnight is a Brownian motion
//!    (daily volatility per instrument: about 2% for stocks, 0.5% for FX, 1% for indices, 3–5%
//!    for crypto), built as a Brownian bridge between anchors 512 days apart, each an
//!    independent draw around the trend: a random walk at every horizon a chart shows that never
//!    strays far from the trend. Any midnight is found by bisecting one 512-day span (9 levels).
//!    A **trading day** (a UTC day that meets one of the market's sessions, from
//!    `market::calendar`) runs from the close of the trading day before it to its own midnight,
//!    so it opens at the last close (no opening gaps) and the first session after a weekend or
//!    holiday carries the closed days' move. Its high and low are drawn from the exact law of a
//!    Brownian bridge's maximum and minimum. A day without a session has no bar.
//! 3. **Hours, minutes, seconds.** A day's bar is split into 24 hours in proportion to each
//!    hour's time in session (times the FX or crypto activity of the hour), an hour into its
//!    minutes in session, a minute into its seconds, by a random-walk bridge from the parent's
//!    open to its close pinned near its high and low (`path::subdivide`). Time outside the
//!    sessions (nights, lunch breaks, weekends, holidays) is a dead piece: flat at the last
//!    price, no volume, never served and never aggregated. Volume and turnover are split in
//!    exact integers.
//! 4. **Ticks.** Each second's trades (3 to 5 when its volume allows) follow a path from its
//!    open through its extremes to its close, the last at the close, at times drawn through the
//!    second (to the millisecond); their volumes sum to the second's. A trade's direction is the
//!    tick rule. Order books are one or two ticks wide around the last price.
//!
//! **Splits** (a table of real ones, `reference`) are applied at the day: a day's prices are the
//! path (in today's shares) × the split ratios still to come, and its volume is in the shares
//! of the day, before anything is rounded. **Prices are rounded once, where they are made**: a
//! day's open, high, low and close on the grid of that day, each child's prices on the same
//! grid (monotonic rounding keeps them inside the parent's range), and coarser bars only
//! aggregate rounded parts. The grid is the market's tick ladder for shares
//! (`market::tick_size`: HKEX's spread table, US 0.01 from $1 and 0.0001 below, mainland
//! 0.01; the grid of the day, so HKEX's 2025 change applies from its date), and a fixed tick
//! otherwise (FX 0.00001, JPY pairs 0.001; indices 0.01; crypto Binance-like by price; futures
//! the real contract tick, e.g. 0.25 for ES). Volumes are integers (crypto: 4 dp), turnover is
//! in the quote currency to 2 dp (volume × price; futures omit the contract multiplier).
//! Indices report no volume and no turnover (`None`; volume is kept internally only to shape
//! the path, and their prints carry size 0) and have an empty order book.
//!
//! # Guarantees (all tested in `tests/`)
//!
//! - **Sessions:** bars, trades and moving quotes only inside the regular sessions of the
//!   instrument's market (`Instrument.market`): stocks, funds, indices and futures keep their
//!   exchange's hours, lunch breaks, holidays and half-days; FX trades Sunday 17:00 to Friday
//!   17:00 New York time; crypto around the clock. Daily bars only on trading days, every
//!   trading day has one; weekly and monthly bars aggregate trading days only.
//! - **Quotes agree with the calendar:** while a market is closed its quote is the last
//!   session's close, timestamped at that close, and does not move; the order book is frozen
//!   there too. `prevClose` is the previous trading day's close (on a Monday, Friday's).
//! - **Exact at every level:** every bar of every interval equals the aggregation of its bars of
//!   any finer interval (open of the first, close of the last, max of highs, min of lows, sums
//!   of volumes and turnovers), before and after splits alike.
//! - **Listing:** no bar before `Instrument.listed_at`; when the catalog does not know it, the
//!   first trading day of 2000 (crypto: 2017-07-14, Binance's first day).
//! - **Determinism:** the same arguments and the same clock give the same answer, in any
//!   instance. A bar that has closed never changes as the clock moves on.
//! - **Live data is consistent:** the bar in progress aggregates the elapsed seconds of its
//!   period, its close is the current price; `quote.last` is that price, the quote's
//!   open/high/low/volume/turnover are the trading day's bar so far; the order book has best
//!   bid ≤ last ≤ best ask; the newest trade is at `last`.
//! - **Validity:** high ≥ max(open, close), low ≤ min(open, close), prices > 0, timestamps ≤ the
//!   clock.
//!
//! Cost: a bar costs one day (a few hashes and calendar look-ups), one split into hours,
//! minutes or seconds (60 draws) or an aggregation of those; no cache and no state beyond the
//! request.
//!
//! # Simplifications
//!
//! - Only regular sessions trade: no pre-market, after-hours, auctions or night sessions.
//!   Futures keep their region's stock-exchange sessions (CME Globex really trades nearly 23
//!   hours a day, HKFE has a night session).
//! - No opening gaps: a session opens at the last close; the first session after a closure
//!   carries the whole closure's variance (a Monday moves about √3 times a Tuesday).
//! - FX daily bars are UTC days, so Sunday has a short bar (21:00/22:00 to 24:00 UTC).
//! - `trading_status` is always `Normal` (no suspensions or halts).
//! - Growth rates are constant per instrument; no crashes, regime changes or volatility
//!   clustering. Cash dividends do not move the path.
//! - Times are whole seconds: the clock is truncated to the second, prices move second by second.
//! - Determinism relies on the platform's `exp`/`ln`/`cos`; different platforms may differ in the
//!   last tick of a rounded price.

use std::{f64::consts::TAU, sync::Arc};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::market::{
    corporate::{CorporateAction, FundamentalPoint},
    source::{MarketSource, SourceError},
    types::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick, TickDirection, TradingStatus},
};
use crate::reference::service::AssetClass;

/// The reference level and volatility of every catalog instrument.
mod levels;
/// The price path: bars and trades of every interval, from one seeded walk.
mod path;
/// Hashing and instrument profiles (level, trend, price grid, volatility, splits).
mod profile;
/// Corporate actions and fundamentals (earnings and book value along the price's trend).
mod reference;
/// The simulated market as a live stream (`MarketStream`).
pub mod stream;
/// Splitting a bar into children that aggregate back to it exactly.
mod subdivide;

pub use stream::SimulatedStream;

use levels::REFERENCE;
use path::*;
use profile::*;

/// The most bars one `klines` call returns.
pub const MAX_KLINES: usize = 10_000;
/// The most trades one `ticks` call returns.
pub const MAX_TICKS: usize = 1000;
/// The deepest order book served, per side.
pub const MAX_BOOK_LEVELS: usize = 100;

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Days between two anchors of the daily walk; a power of two, so spans bisect exactly.
const SPAN: i64 = 512;
/// How many session seconds `ticks` walks back for trades (instruments with very thin volume).
const TICK_LOOKBACK: i64 = DAY;
/// How far back in time `ticks` looks for session seconds (past the longest closure).
const TICK_SPAN: i64 = 40 * DAY;

// Hash domains, so that the draws of different purposes never coincide.
const TAG_PROFILE: u64 = 1;
const TAG_ANCHOR: u64 = 2;
const TAG_NODE: u64 = 3;
const TAG_DAY: u64 = 4;
const TAG_HOURS: u64 = 5;
const TAG_MINUTES: u64 = 6;
const TAG_SECONDS: u64 = 7;
const TAG_TICKS: u64 = 8;
const TAG_BOOK: u64 = 9;

/// The simulated market. Cheap to clone; all state is the clock.
#[derive(Clone)]
pub struct SimulatedMarket {
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Default for SimulatedMarket {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SimulatedMarket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedMarket").finish_non_exhaustive()
    }
}

impl SimulatedMarket {
    /// A market on the wall clock.
    pub fn new() -> Self {
        Self::with_clock(Utc::now)
    }

    /// A market on another clock (tests: a fixed or stepping time, so nothing sleeps).
    pub fn with_clock(clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self { clock: Arc::new(clock) }
    }

    /// The clock, truncated to the second: the simulated market moves second by second.
    fn now(&self) -> i64 {
        (self.clock)().timestamp()
    }

    fn quote_at(&self, instrument: &Instrument, now: i64) -> Quote {
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        // While the market is closed, the quote is its last close, timed at that close.
        let at = path.last_trading_instant(now).unwrap_or(now);
        let last = path.price_at(at);
        // The trading day the quote is of (the new UTC day from its first second on, for the
        // markets that trade through midnight).
        let session_day = if at == now { now.div_euclid(DAY) } else { (at - 1).div_euclid(DAY) };
        let day = path.range(session_day * DAY, at).unwrap_or_else(|| Bar::dead(last));
        // A trading day opens at the close of the one before (see `Path::day_bar`).
        let prev_close = path.day_bar(session_day).open;
        let grid = profile.grid;
        Quote {
            symbol: instrument.symbol.clone(),
            last: grid.decimal(last),
            open: grid.decimal(day.open),
            high: grid.decimal(day.high),
            low: grid.decimal(day.low),
            prev_close: grid.decimal(prev_close),
            volume: profile.volume(day.volume),
            turnover: profile.reports_volume.then(|| units(day.turnover, 2)),
            timestamp: timestamp(at),
            trading_status: TradingStatus::Normal,
            source: "simulated",
            stale: false,
        }
    }

    /// The `limit` bars starting before `end` (at most now), oldest first: only bars with
    /// session time in them, none before the listing day.
    fn klines_at(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
        now: i64,
    ) -> Vec<Kline> {
        let limit = limit.min(MAX_KLINES);
        let now_time = timestamp(now);
        let end = end.map_or(now_time, |end| end.min(now_time));
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        let listed = profile.listed * DAY;
        let intraday = interval.minutes().is_some_and(|minutes| minutes < 1440);
        let mut bars = Vec::with_capacity(limit);
        let mut start = interval.bar_start(end);
        if start >= end {
            start = match previous_bar(interval, start) {
                Some(previous) => previous,
                None => return bars,
            };
        }
        while bars.len() < limit {
            let from = start.timestamp();
            let next = interval.next_start(start);
            if next.timestamp() <= listed {
                break;
            }
            let day = from.div_euclid(DAY);
            if intraday && !path.is_live(day) {
                // Jump over a day without sessions at once.
                match previous_bar(interval, timestamp(day * DAY)) {
                    Some(previous) => start = previous,
                    None => break,
                }
                continue;
            }
            if let Some(bar) = path.range(from, next.timestamp().min(now)) {
                bars.push(profile.kline(start, &bar));
            }
            match previous_bar(interval, start) {
                Some(previous) if previous < start => start = previous,
                _ => break,
            }
        }
        bars.reverse();
        bars
    }

    /// The book around the last price; frozen at the last close while the market is closed.
    /// Indices have none (nothing trades at an index level).
    fn order_book_at(&self, instrument: &Instrument, levels: usize, now: i64) -> OrderBook {
        let levels = levels.min(MAX_BOOK_LEVELS);
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        let at = path.last_trading_instant(now).unwrap_or(now);
        if instrument.asset_class == AssetClass::Index {
            let symbol = instrument.symbol.clone();
            return OrderBook { symbol, bids: Vec::new(), asks: Vec::new(), timestamp: timestamp(at) };
        }
        let grid = profile.grid;
        let day = (at - 1).div_euclid(DAY);
        let last = grid.units(day, path.price_at(at));
        let mut rng = Rng::new(mix(profile.seed, TAG_BOOK, at));
        // One or two ticks wide, the last trade at the bid or at the ask.
        let spread = if rng.below(3) == 0 { 2 } else { 1 };
        let best_ask = if rng.below(2) == 0 { grid.step(day, last, 1).unwrap_or(last) } else { last };
        let best_bid = grid.step(day, best_ask, -spread);
        // Resting size: some seconds' worth of the average volume, growing with depth.
        let per_second = (profile.daily_volume / profile.multiple(day) / DAY as f64).max(1.0);
        let mut side = |best: Option<i64>, direction: i64| -> Vec<BookLevel> {
            let mut price = best;
            let mut book = Vec::with_capacity(levels);
            for depth in 0..levels {
                let Some(at_price) = price else { break };
                let size = per_second * (2.0 + depth as f64) * (0.6 * rng.gauss()).exp();
                let volume = (size.round() as u128).max(1);
                let orders = 1 + (volume as f64 / per_second * 0.8 * rng.uniform()).round() as i64;
                book.push(BookLevel {
                    price: grid.decimal_units(at_price),
                    volume: units(volume, profile.volume_dp),
                    orders: Some(orders),
                });
                price = grid.step(day, at_price, direction);
            }
            book
        };
        let bids = side(best_bid, -1);
        let asks = side(Some(best_ask), 1);
        OrderBook { symbol: instrument.symbol.clone(), bids, asks, timestamp: timestamp(at) }
    }

    /// The newest `limit` trades, oldest first: those of the last session seconds (while the
    /// market is closed, the last ones before its close).
    fn ticks_at(&self, instrument: &Instrument, limit: usize, now: i64) -> Vec<Tick> {
        let limit = limit.min(MAX_TICKS);
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        // Newest first, from the last elapsed session second back.
        let mut trades: Vec<Trade> = Vec::with_capacity(limit);
        let Some(at) = path.last_trading_instant(now) else { return Vec::new() };
        let mut second = at - 1;
        let mut walked = 0;
        while trades.len() < limit && walked < TICK_LOOKBACK && second >= at - TICK_SPAN {
            if !path.is_live(second.div_euclid(DAY)) {
                second = second.div_euclid(DAY) * DAY - 1;
                continue;
            }
            if !path.minute_bar(second.div_euclid(MINUTE)).live {
                second = second.div_euclid(MINUTE) * MINUTE - 1;
                continue;
            }
            let bar = path.second_bar(second);
            let room = limit - trades.len();
            trades.extend(second_trades(&profile, second, &bar).into_iter().rev().take(room));
            second -= 1;
            walked += 1;
        }
        let grid = profile.grid;
        trades
            .iter()
            .rev()
            .map(|trade| {
                // The tick rule, against the trade before (or the price the second opened at).
                let direction = match trade.price.total_cmp(&trade.previous) {
                    std::cmp::Ordering::Greater => TickDirection::Buy,
                    std::cmp::Ordering::Less => TickDirection::Sell,
                    std::cmp::Ordering::Equal => TickDirection::Neutral,
                };
                Tick {
                    symbol: instrument.symbol.clone(),
                    price: grid.decimal(trade.price),
                    // An index's prints carry no size.
                    volume: profile.volume(trade.volume).unwrap_or(Decimal::ZERO),
                    timestamp: DateTime::from_timestamp_millis(trade.millis).unwrap_or_default(),
                    direction: Some(direction),
                    source: "simulated",
                }
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl MarketSource for SimulatedMarket {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn batch_limit(&self) -> usize {
        500
    }

    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        let now = self.now();
        Ok(instruments.iter().map(|instrument| self.quote_at(instrument, now)).collect())
    }

    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError> {
        let now = self.now();
        Ok(self.klines_at(instrument, interval, end, limit, now))
    }

    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        Ok(reference::corporate_actions(instrument, timestamp(self.now()).date_naive()))
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        Ok(reference::fundamentals(self, instrument, from, to, self.now()))
    }

    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        Ok(self.order_book_at(instrument, levels, self.now()))
    }

    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        Ok(self.ticks_at(instrument, limit, self.now()))
    }
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The start of the bar before the one starting at `start`, if the calendar goes back that far.
fn previous_bar(interval: Interval, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    start.checked_sub_signed(Duration::seconds(1)).map(|before| interval.bar_start(before))
}

/// An integer count of `10^-scale` units as a decimal.
fn units(count: u128, scale: u32) -> Decimal {
    i128::try_from(count)
        .ok()
        .and_then(|count| Decimal::try_from_i128_with_scale(count, scale).ok())
        .unwrap_or(Decimal::MAX)
}

#[cfg(test)]
mod tests;
