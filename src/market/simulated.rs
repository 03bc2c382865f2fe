//! The built-in simulated market: the default source, so finql runs with no account and no
//! network.
//!
//! Every instrument gets a deterministic price path seeded from its symbol, at a plausible level
//! for the real instrument (a reference table covers the whole catalog; unknown symbols get a
//! level derived from a hash of the symbol). Nothing is stored and nothing is random at run time:
//! every number is a pure function of the symbol and the time, so two instances (or two replicas)
//! agree, history never changes, and any bar of any period is computable on demand.
//!
//! # The model
//!
//! The path is built top down, each level refining the one above it:
//!
//! 1. **Days.** The log price at each UTC midnight is a Brownian motion (daily volatility per
//!    instrument: about 2% for stocks, 0.5% for FX, 1% for indices, 3–5% for crypto), built as a
//!    Brownian bridge between anchors 512 days apart. The anchors are independent draws around
//!    the reference level, so the walk is a random walk at every horizon a chart shows yet
//!    stays at plausible levels forever (before and after any date). Any midnight is found by
//!    bisecting one 512-day span (9 levels), with no iteration from an epoch. A day's high and
//!    low are drawn from the exact distribution of a Brownian bridge's maximum and minimum.
//! 2. **Hours, minutes, seconds.** A bar is split into children (a day into 24 hours, an hour
//!    into 60 minutes, a minute into 60 seconds) by a random-walk bridge from the parent's open
//!    to its close, with the volatility its range implies, pinned close to the parent's high and
//!    low at times drawn like a bridge's extremes (early when the open is near the extreme,
//!    late when the close is), and squeezed smoothly into the parent's range. The child closest
//!    to the high takes the high exactly, the one closest to the low takes the low, the others
//!    get wicks drawn like the day's and kept inside the range. Volume and turnover are split in
//!    exact integers. Hours follow each market's session: volume and volatility concentrate in
//!    the exchange's trading hours (US, Hong Kong, mainland China, Tokyo, Europe, FX sessions,
//!    CME, crypto's US-hours bump); outside them the market is quiet but still trades.
//! 3. **Ticks.** Each second's trades (3 to 5 when its volume allows) follow a path from its
//!    open through its extremes to its close, the last one at the close; their volumes sum to
//!    the second's volume exactly. A trade's direction is the tick rule: `Buy` above the trade
//!    before (or the price its second opened at), `Sell` below, `Neutral` at the same price.
//!    Order books are one or two ticks wide around the current price, sizes drawn per second
//!    and level.
//!
//! Prices are rounded to the instrument's tick (US and mainland stocks 0.01; Hong Kong stocks
//! the HKEX spread table at the reference level, 3 dp; FX 0.00001, JPY pairs 0.001; indices
//! 0.01; crypto Binance-like by price; futures the real contract tick, e.g. 0.25 for ES).
//! Volumes are integers (crypto: 4 dp), turnover is in the quote currency to 2 dp
//! (volume × price; indices use a notional 40 per share, futures omit the contract
//! multiplier).
//!
//! # Guarantees (all tested below)
//!
//! - **Determinism:** the same arguments and the same clock give the same answer, in any
//!   instance. A bar that has closed never changes as the clock moves on.
//! - **Intervals agree exactly:** every bar, of every interval, equals the aggregation of its
//!   bars of any finer interval (open of the first, close of the last, max of highs, min of lows,
//!   sum of volumes and of turnovers), after decimal rounding too: a day equals its 24 hours and
//!   its 1440 minutes, a week its 7 days, a month its days, a 4-hour bar its two 2-hour bars.
//!   Coarse bars are aggregated from days, hours, minutes and seconds, never recomputed, and
//!   rounding to ticks is monotonic, so max and min commute with it.
//! - **Continuity:** each bar opens at the previous bar's close (the market trades 24/7).
//! - **Live data is consistent:** the bar in progress aggregates the elapsed seconds of its
//!   period, and its close is the current price; `quote.last` is that price, the quote's
//!   open/high/low/volume/turnover are the UTC day's bar in progress, `prev_close` the previous
//!   UTC day's close; the order book has best bid ≤ last ≤ best ask; the newest tick trades at
//!   `last`, and tick prices stay within their bars' ranges.
//! - **Validity:** high ≥ max(open, close), low ≤ min(open, close), prices > 0, timestamps ≤ the
//!   clock.
//!
//! Cost: a bar costs one day (a few hashes), one split into hours, minutes or seconds (60 draws)
//! or an aggregation of those; 1000 monthly bars aggregate about 30,000 days. Optimised builds
//! serve 1000 daily bars in about 0.3 ms, 1000 minute bars in 0.7 ms, 1000 monthly bars in 5 ms
//! and a quote in about 40 µs, with no cache and no state beyond the request.
//!
//! # Simplifications
//!
//! - The market trades 24/7: there are no trading sessions, holidays or weekends (sessions only
//!   shape intraday volume and volatility); `trading_status` is always `Normal`.
//! - Times are whole seconds: the clock is truncated to the second, prices move second by second.
//! - Determinism relies on the platform's `exp`/`ln`/`cos`; different platforms may differ in the
//!   last tick of a rounded price.

use std::{f64::consts::TAU, sync::Arc};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{
    corporate::{CorporateAction, FundamentalPoint},
    source::{MarketSource, SourceError},
    types::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick, TickDirection, TradingStatus},
};
use crate::reference::service::AssetClass;

/// Corporate actions, fundamentals and as-traded klines (history before splits).
mod reference;

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
/// How far back `ticks` looks for trades (instruments with very thin volume).
const TICK_LOOKBACK: i64 = DAY;

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

/// Reference levels (late 2024 / early 2025, in the quote currency) and daily volatility in
/// percent, for every instrument of the catalog.
const REFERENCE: &[(&str, f64, f64)] = &[
    // US stocks
    ("AAPL.US", 230.0, 1.6),
    ("MSFT.US", 420.0, 1.5),
    ("NVDA.US", 140.0, 3.0),
    ("AMZN.US", 200.0, 2.0),
    ("GOOGL.US", 175.0, 1.8),
    ("GOOG.US", 177.0, 1.8),
    ("META.US", 580.0, 2.3),
    ("TSLA.US", 300.0, 3.5),
    ("BRK-B.US", 470.0, 1.0),
    ("AVGO.US", 200.0, 2.8),
    ("LLY.US", 800.0, 2.0),
    ("JPM.US", 240.0, 1.4),
    ("V.US", 310.0, 1.2),
    ("WMT.US", 90.0, 1.1),
    ("ORCL.US", 170.0, 2.2),
    ("MA.US", 520.0, 1.2),
    ("XOM.US", 115.0, 1.5),
    ("NFLX.US", 900.0, 2.4),
    ("COST.US", 930.0, 1.3),
    ("JNJ.US", 155.0, 1.0),
    ("HD.US", 400.0, 1.4),
    ("PG.US", 170.0, 1.0),
    ("ABBV.US", 190.0, 1.5),
    ("BAC.US", 45.0, 1.7),
    ("UNH.US", 520.0, 1.8),
    ("KO.US", 65.0, 0.9),
    ("AMD.US", 140.0, 3.0),
    ("CVX.US", 155.0, 1.5),
    ("GE.US", 180.0, 1.8),
    ("PLTR.US", 70.0, 4.0),
    ("CSCO.US", 58.0, 1.3),
    ("MU.US", 100.0, 3.0),
    ("IBM.US", 230.0, 1.4),
    ("WFC.US", 70.0, 1.8),
    ("GS.US", 580.0, 1.7),
    ("MS.US", 130.0, 1.7),
    ("INTC.US", 22.0, 3.0),
    ("DIS.US", 110.0, 1.6),
    ("NKE.US", 75.0, 2.0),
    ("BA.US", 160.0, 2.2),
    ("QCOM.US", 160.0, 2.2),
    ("PYPL.US", 85.0, 2.2),
    ("UBER.US", 75.0, 2.5),
    ("MRK.US", 100.0, 1.3),
    ("PFE.US", 26.0, 1.4),
    ("PEP.US", 155.0, 1.0),
    ("ADBE.US", 450.0, 2.0),
    ("CRM.US", 330.0, 2.2),
    ("TMUS.US", 240.0, 1.3),
    ("T.US", 23.0, 1.2),
    ("VZ.US", 42.0, 1.1),
    ("MCD.US", 295.0, 1.1),
    // US funds
    ("SPY.US", 590.0, 1.0),
    ("QQQ.US", 510.0, 1.3),
    ("DIA.US", 430.0, 0.9),
    ("IWM.US", 225.0, 1.4),
    // Hong Kong
    ("700.HK", 420.0, 2.0),
    ("9988.HK", 85.0, 2.6),
    ("1810.HK", 35.0, 2.8),
    ("3690.HK", 160.0, 3.0),
    ("5.HK", 75.0, 1.2),
    ("1299.HK", 60.0, 1.8),
    ("939.HK", 6.2, 1.3),
    ("1398.HK", 5.0, 1.2),
    ("941.HK", 75.0, 1.1),
    ("388.HK", 300.0, 2.0),
    ("1211.HK", 270.0, 2.6),
    ("9618.HK", 140.0, 2.8),
    ("9999.HK", 140.0, 2.2),
    ("2318.HK", 45.0, 2.0),
    ("2015.HK", 95.0, 3.2),
    ("1024.HK", 50.0, 3.0),
    ("9888.HK", 85.0, 2.5),
    ("883.HK", 19.0, 1.8),
    ("3988.HK", 4.0, 1.2),
    // Shanghai and Shenzhen
    ("600519.SH", 1500.0, 1.6),
    ("601318.SH", 50.0, 1.8),
    ("000858.SZ", 140.0, 2.0),
    ("600036.SH", 37.0, 1.5),
    ("601398.SH", 6.5, 1.0),
    ("600900.SH", 28.0, 1.0),
    ("300750.SZ", 260.0, 2.5),
    ("000333.SZ", 72.0, 1.7),
    ("002594.SZ", 290.0, 2.5),
    ("601012.SH", 17.0, 2.8),
    ("600276.SH", 45.0, 2.0),
    ("000001.SZ", 11.5, 1.5),
    ("601988.SH", 5.0, 1.0),
    ("600030.SH", 27.0, 2.2),
    ("601899.SH", 15.0, 2.2),
    ("601288.SH", 4.8, 1.0),
    ("601857.SH", 8.0, 1.5),
    ("600887.SH", 28.0, 1.5),
    ("000651.SZ", 42.0, 1.6),
    ("002415.SZ", 30.0, 2.0),
    // Forex
    ("FX:EURUSD", 1.08, 0.45),
    ("FX:USDJPY", 150.0, 0.6),
    ("FX:GBPUSD", 1.27, 0.5),
    ("FX:USDCHF", 0.88, 0.5),
    ("FX:AUDUSD", 0.65, 0.6),
    ("FX:USDCAD", 1.39, 0.4),
    ("FX:NZDUSD", 0.59, 0.65),
    ("FX:USDCNH", 7.25, 0.25),
    ("FX:EURJPY", 162.0, 0.65),
    ("FX:EURGBP", 0.85, 0.35),
    ("FX:USDHKD", 7.78, 0.03),
    ("FX:GBPJPY", 190.0, 0.7),
    ("FX:EURCHF", 0.94, 0.35),
    // Indices
    ("IDX:SPX", 5800.0, 1.0),
    ("IDX:IXIC", 18500.0, 1.3),
    ("IDX:DJI", 43000.0, 0.9),
    ("IDX:NDX", 20500.0, 1.3),
    ("IDX:HSI", 20000.0, 1.5),
    ("IDX:HSCEI", 7200.0, 1.7),
    ("IDX:000001", 3300.0, 1.1),
    ("IDX:399001", 10500.0, 1.4),
    ("IDX:000300", 3900.0, 1.2),
    ("IDX:N225", 39000.0, 1.3),
    ("IDX:FTSE", 8200.0, 0.8),
    ("IDX:GDAXI", 19500.0, 1.0),
    // Crypto
    ("CRYPTO:BTCUSDT", 90000.0, 3.0),
    ("CRYPTO:ETHUSDT", 3300.0, 3.6),
    ("CRYPTO:BNBUSDT", 650.0, 2.8),
    ("CRYPTO:SOLUSDT", 200.0, 4.5),
    ("CRYPTO:XRPUSDT", 2.2, 4.5),
    ("CRYPTO:ADAUSDT", 0.9, 4.5),
    ("CRYPTO:DOGEUSDT", 0.35, 5.0),
    ("CRYPTO:AVAXUSDT", 35.0, 4.8),
    ("CRYPTO:LTCUSDT", 100.0, 4.0),
    ("CRYPTO:LINKUSDT", 20.0, 4.5),
    ("CRYPTO:DOTUSDT", 7.0, 4.5),
    // Futures
    ("FUT:CL.US", 70.0, 2.2),
    ("FUT:NG.US", 3.0, 4.0),
    ("FUT:GC.US", 2600.0, 1.0),
    ("FUT:SI.US", 30.0, 1.8),
    ("FUT:HG.US", 4.2, 1.5),
    ("FUT:ES.US", 5850.0, 1.0),
    ("FUT:NQ.US", 20700.0, 1.3),
    ("FUT:YM.US", 43200.0, 0.9),
    ("FUT:HSI.HK", 20000.0, 1.5),
];

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
        let last = path.price_at(now);
        let day_start = now.div_euclid(DAY) * DAY;
        let day = path.range(day_start, now).unwrap_or_else(|| Bar::flat(last));
        let prev_close = path.day_bar(now.div_euclid(DAY) - 1).close;
        let tick = profile.tick;
        Quote {
            symbol: instrument.symbol.clone(),
            last: tick.round(last),
            open: tick.round(day.open),
            high: tick.round(day.high),
            low: tick.round(day.low),
            prev_close: tick.round(prev_close),
            volume: units(day.volume, profile.volume_dp),
            turnover: units(day.turnover, 2),
            timestamp: timestamp(now),
            trading_status: TradingStatus::Normal,
            source: "simulated",
            stale: false,
        }
    }

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
        // The starts of the `limit` bars before `end`, newest first.
        let mut starts = Vec::with_capacity(limit);
        let mut start = interval.bar_start(end);
        if start >= end {
            start = match previous_bar(interval, start) {
                Some(previous) => previous,
                None => return Vec::new(),
            };
        }
        while starts.len() < limit {
            starts.push(start);
            match previous_bar(interval, start) {
                Some(previous) if previous < start => start = previous,
                _ => break,
            }
        }
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        starts
            .into_iter()
            .rev()
            .filter_map(|start| {
                let from = start.timestamp();
                let to = interval.next_start(start).timestamp().min(now);
                let bar = path.range(from, to)?;
                Some(profile.kline(start, &bar))
            })
            .collect()
    }

    fn order_book_at(&self, instrument: &Instrument, levels: usize, now: i64) -> OrderBook {
        let levels = levels.min(MAX_BOOK_LEVELS);
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        let tick = profile.tick;
        let last = tick.steps(path.price_at(now));
        let mut rng = Rng::new(mix(profile.seed, TAG_BOOK, now));
        // One or two ticks wide, the last trade at the bid or at the ask.
        let spread = if rng.below(3) == 0 { 2 } else { 1 };
        let best_ask = last + i64::from(rng.below(2) == 0);
        let best_bid = best_ask - spread;
        // Resting size: some seconds' worth of the average volume, growing with depth.
        let per_second = (profile.daily_volume / DAY as f64).max(1.0);
        let mut side = |best: i64, step: i64| -> Vec<BookLevel> {
            (0..levels as i64)
                .map(|depth| best + step * depth)
                .take_while(|&steps| steps > 0)
                .map(|steps| {
                    let depth = (steps - best).abs() as f64;
                    let size = per_second * (2.0 + depth) * (0.6 * rng.gauss()).exp();
                    let volume = (size.round() as u128).max(1);
                    let orders = 1 + (volume as f64 / per_second * 0.8 * rng.uniform()).round() as i64;
                    BookLevel {
                        price: tick.decimal(steps),
                        volume: units(volume, profile.volume_dp),
                        orders: Some(orders),
                    }
                })
                .collect()
        };
        let bids = side(best_bid, -1);
        let asks = side(best_ask, 1);
        OrderBook { symbol: instrument.symbol.clone(), bids, asks, timestamp: timestamp(now) }
    }

    fn ticks_at(&self, instrument: &Instrument, limit: usize, now: i64) -> Vec<Tick> {
        let limit = limit.min(MAX_TICKS);
        let profile = Profile::new(instrument);
        let mut path = Path::new(&profile);
        // Newest first, from the last elapsed second back.
        let mut trades: Vec<Trade> = Vec::with_capacity(limit);
        let mut second = now - 1;
        while trades.len() < limit && second >= now - TICK_LOOKBACK {
            let bar = path.second_bar(second);
            let room = limit - trades.len();
            trades.extend(second_trades(&profile, second, &bar).into_iter().rev().take(room));
            second -= 1;
        }
        let tick = profile.tick;
        trades
            .iter()
            .rev()
            .map(|trade| {
                let price = tick.round(trade.price);
                // The tick rule, against the trade before (or the price the second opened at).
                let direction = match price.cmp(&tick.round(trade.previous)) {
                    std::cmp::Ordering::Greater => TickDirection::Buy,
                    std::cmp::Ordering::Less => TickDirection::Sell,
                    std::cmp::Ordering::Equal => TickDirection::Neutral,
                };
                Tick {
                    symbol: instrument.symbol.clone(),
                    price,
                    volume: units(trade.volume, profile.volume_dp),
                    timestamp: DateTime::from_timestamp_millis(trade.millis).unwrap_or_default(),
                    direction: Some(direction),
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
        Ok(reference::as_traded(self, instrument, interval, self.klines_at(instrument, interval, end, limit, now), now))
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

// ---------------------------------------------------------------------------------------------
// Hashing: splitmix64, stable across Rust versions and platforms (unlike `DefaultHasher`).

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, to seed an instrument from its symbol.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// The seed of draw `index` of purpose `tag` of the instrument seeded `seed`.
fn mix(seed: u64, tag: u64, index: i64) -> u64 {
    splitmix64(seed ^ splitmix64(tag.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ splitmix64(index as u64)))
}

/// A small counter-based generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in (0, 1), never 0 (so its logarithm is finite).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

// ---------------------------------------------------------------------------------------------
// Instrument profiles.

/// A price tick: `units × 10^-scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PriceTick {
    units: i64,
    scale: u32,
    size: f64,
}

impl PriceTick {
    fn new(units: i64, scale: u32) -> Self {
        Self { units, scale, size: units as f64 / 10f64.powi(scale as i32) }
    }

    /// The price in whole ticks, at least one. Monotonic in `price`, so rounding commutes with
    /// max and min and aggregated bars stay exact.
    fn steps(&self, price: f64) -> i64 {
        ((price / self.size).round() as i64).max(1)
    }

    fn decimal(&self, steps: i64) -> Decimal {
        Decimal::new(steps.saturating_mul(self.units), self.scale)
    }

    fn round(&self, price: f64) -> Decimal {
        self.decimal(self.steps(price))
    }
}

/// Hours of the UTC day in which an instrument's market is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    Us,
    HongKong,
    HongKongFutures,
    China,
    Japan,
    Europe,
    UsFutures,
    Forex,
    Crypto,
    Flat,
}

impl Session {
    fn of(instrument: &Instrument) -> Self {
        let symbol = instrument.symbol.as_str();
        match instrument.asset_class {
            AssetClass::Forex => Self::Forex,
            AssetClass::Crypto => Self::Crypto,
            AssetClass::Future if symbol.ends_with(".HK") => Self::HongKongFutures,
            AssetClass::Future if symbol.ends_with(".CN") => Self::China,
            AssetClass::Future => Self::UsFutures,
            AssetClass::Index => match symbol.trim_start_matches("IDX:") {
                "SPX" | "IXIC" | "DJI" | "NDX" | "RUT" | "VIX" => Self::Us,
                "HSI" | "HSCEI" | "HSTECH" => Self::HongKong,
                "N225" => Self::Japan,
                "FTSE" | "GDAXI" | "FCHI" | "STOXX50E" => Self::Europe,
                _ => match instrument.region.as_str() {
                    "US" => Self::Us,
                    "HK" => Self::HongKong,
                    "SH" | "SZ" | "CN" => Self::China,
                    _ => Self::Flat,
                },
            },
            AssetClass::Stock | AssetClass::Fund => match symbol.rsplit_once('.').map(|(_, region)| region) {
                Some("US") => Self::Us,
                Some("HK") => Self::HongKong,
                Some("SH" | "SZ") => Self::China,
                _ => Self::Flat,
            },
        }
    }

    /// Relative activity (volume and variance) of each UTC hour.
    fn hours(self) -> [f64; 24] {
        const Q: f64 = 0.2; // quiet: the simulated market trades around the clock
        match self {
            // Regular hours 13:30/14:30–20:00/21:00 UTC (EDT/EST).
            Self::Us => [Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, 0.6, 1.4, 1.0, 0.8, 0.8, 0.9, 1.1, 1.4, 0.4, Q, Q],
            // 01:30–04:00 and 05:00–08:00 UTC.
            Self::HongKong => [Q, 0.8, 1.2, 0.9, Q, 0.9, 1.0, 1.4, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q],
            // Day session as the stocks, night session 09:15–19:00 UTC.
            Self::HongKongFutures => [
                Q, 0.8, 1.2, 0.9, Q, 0.9, 1.0, 1.4, 0.3, 0.3, 0.3, 0.3, 0.25, 0.3, 0.35, 0.35, 0.3, 0.25, 0.2, Q, Q, Q,
                Q, Q,
            ],
            // 01:30–03:30 and 05:00–07:00 UTC.
            Self::China => [Q, 0.8, 1.2, 0.6, Q, 1.0, 1.3, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q],
            // 00:00–02:30 and 03:30–06:00 UTC.
            Self::Japan => [1.3, 1.0, 0.6, 0.5, 1.0, 1.3, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q],
            // 07:00/08:00–16:30 UTC.
            Self::Europe => {
                [Q, Q, Q, Q, Q, Q, Q, 0.6, 1.3, 1.0, 0.9, 0.8, 0.8, 0.9, 1.1, 1.2, 0.8, Q, Q, Q, Q, Q, Q, Q]
            }
            // Nearly 24 hours, busiest in the US morning.
            Self::UsFutures => [
                0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.25, 0.3, 0.35, 0.35, 0.35, 0.4, 0.5, 0.8, 1.4, 1.2, 1.0, 0.9, 0.8, 0.9,
                0.7, 0.1, 0.1, 0.2,
            ],
            // Sydney/Tokyo, London, the London–New York overlap, New York.
            Self::Forex => [
                0.4, 0.45, 0.45, 0.4, 0.4, 0.4, 0.5, 0.9, 1.1, 1.0, 0.9, 0.9, 1.3, 1.4, 1.4, 1.2, 0.9, 0.7, 0.6, 0.5,
                0.4, 0.2, 0.25, 0.35,
            ],
            // Around the clock, a little busier in US hours.
            Self::Crypto => [
                0.8, 0.8, 0.75, 0.7, 0.7, 0.7, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.85, 1.0, 1.1, 1.1, 1.0, 1.0, 0.95, 0.9,
                0.9, 0.85, 0.85, 0.8,
            ],
            Self::Flat => [1.0; 24],
        }
    }
}

/// Everything the path of an instrument depends on, derived from its catalog entry.
#[derive(Clone, Debug)]
struct Profile {
    seed: u64,
    /// Reference price level.
    level: f64,
    /// Daily volatility of log prices.
    vol: f64,
    tick: PriceTick,
    /// Decimal places of volumes.
    volume_dp: u32,
    /// Typical daily volume, in units of `10^-volume_dp`.
    daily_volume: f64,
    /// Turnover (in 0.01 of the currency) per volume unit per unit of price.
    turnover_per_unit: f64,
    hours: [f64; 24],
}

impl Profile {
    fn new(instrument: &Instrument) -> Self {
        let symbol = instrument.symbol.as_str();
        let class = instrument.asset_class;
        let seed = fnv1a(symbol.as_bytes());
        let mut rng = Rng::new(mix(seed, TAG_PROFILE, 0));
        let (level, vol) = match reference(symbol) {
            Some((level, vol)) => (level, vol / 100.0),
            None => {
                let level = match class {
                    AssetClass::Forex => log_uniform(rng.uniform(), 0.5, 2.0),
                    _ => log_uniform(rng.uniform(), 10.0, 500.0),
                };
                let vol = match class {
                    AssetClass::Stock => 2.0,
                    AssetClass::Fund => 1.2,
                    AssetClass::Forex => 0.5,
                    AssetClass::Index => 1.0,
                    AssetClass::Crypto => 4.0,
                    AssetClass::Future => 2.0,
                };
                (level, vol / 100.0)
            }
        };
        let size = log_uniform(rng.uniform(), 0.3, 3.0);
        let volume_dp = if class == AssetClass::Crypto { 4 } else { 0 };
        let region = symbol.rsplit_once('.').map_or("", |(_, region)| region);
        // Daily volume in natural units, and turnover per unit of volume per unit of price.
        let (daily_volume, notional) = match class {
            AssetClass::Stock | AssetClass::Fund => {
                let turnover = match region {
                    "HK" => 2e9,
                    "SH" | "SZ" => 3e9,
                    _ => 4e9,
                };
                (turnover * size / level, 1.0)
            }
            AssetClass::Forex => (2e9 * size, 1.0),
            AssetClass::Index => (2e9 * size, 40.0 / level),
            AssetClass::Crypto => (1e9 * size / level, 1.0),
            AssetClass::Future => (5e5 * size, 1.0),
        };
        let scale = 10f64.powi(volume_dp as i32);
        Self {
            seed,
            level,
            vol,
            tick: price_tick(symbol, class, level),
            volume_dp,
            daily_volume: daily_volume * scale,
            turnover_per_unit: notional * 100.0 / scale,
            hours: Session::of(instrument).hours(),
        }
    }

    fn kline(&self, start: DateTime<Utc>, bar: &Bar) -> Kline {
        Kline {
            time: start,
            open: self.tick.round(bar.open),
            high: self.tick.round(bar.high),
            low: self.tick.round(bar.low),
            close: self.tick.round(bar.close),
            volume: units(bar.volume, self.volume_dp),
            turnover: units(bar.turnover, 2),
        }
    }
}

fn reference(symbol: &str) -> Option<(f64, f64)> {
    REFERENCE.iter().find(|(s, ..)| *s == symbol).map(|&(_, level, vol)| (level, vol))
}

/// Maps `u` in (0, 1) onto [lo, hi], uniformly in logarithm.
fn log_uniform(u: f64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + u * (hi / lo).ln()).exp()
}

/// The tick an instrument trades in, at its reference level.
fn price_tick(symbol: &str, class: AssetClass, level: f64) -> PriceTick {
    match class {
        AssetClass::Stock | AssetClass::Fund if symbol.ends_with(".HK") => {
            // HKEX spread table, in thousandths (HK prices carry 3 dp).
            let thousandths = [
                (0.25, 1),
                (0.5, 5),
                (10.0, 10),
                (20.0, 20),
                (100.0, 50),
                (200.0, 100),
                (500.0, 200),
                (1000.0, 500),
                (2000.0, 1000),
                (5000.0, 2000),
            ]
            .iter()
            .find(|(upto, _)| level <= *upto)
            .map_or(5000, |&(_, tick)| tick);
            PriceTick::new(thousandths, 3)
        }
        AssetClass::Stock | AssetClass::Fund if level < 1.0 => PriceTick::new(1, 4),
        AssetClass::Stock | AssetClass::Fund | AssetClass::Index => PriceTick::new(1, 2),
        AssetClass::Forex if symbol.ends_with("JPY") => PriceTick::new(1, 3),
        AssetClass::Forex => PriceTick::new(1, 5),
        AssetClass::Crypto if level >= 100.0 => PriceTick::new(1, 2),
        AssetClass::Crypto if level >= 10.0 => PriceTick::new(1, 3),
        AssetClass::Crypto if level >= 1.0 => PriceTick::new(1, 4),
        AssetClass::Crypto => PriceTick::new(1, 5),
        AssetClass::Future => match symbol {
            "FUT:NG.US" => PriceTick::new(1, 3),
            "FUT:GC.US" => PriceTick::new(1, 1),
            "FUT:SI.US" => PriceTick::new(5, 3),
            "FUT:HG.US" => PriceTick::new(5, 4),
            "FUT:ES.US" | "FUT:NQ.US" => PriceTick::new(25, 2),
            "FUT:YM.US" | "FUT:HSI.HK" => PriceTick::new(1, 0),
            _ if level < 10.0 => PriceTick::new(1, 3),
            _ => PriceTick::new(1, 2),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The price path.

/// A bar before rounding: prices as floats, volume in `10^-volume_dp` units, turnover in cents.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: u128,
    turnover: u128,
}

impl Bar {
    fn flat(price: f64) -> Self {
        Self { open: price, high: price, low: price, close: price, volume: 0, turnover: 0 }
    }

    /// This bar followed by `next`.
    fn merge(self, next: &Bar) -> Self {
        Self {
            open: self.open,
            high: self.high.max(next.high),
            low: self.low.min(next.low),
            close: next.close,
            volume: self.volume + next.volume,
            turnover: self.turnover + next.turnover,
        }
    }
}

/// The children of one bar, remembered while a request walks through them.
#[derive(Default)]
struct Level {
    key: Option<i64>,
    bars: Vec<Bar>,
}

/// One instrument's path, with the most recently used span and splits cached for the length of
/// one request (requests walk through time in order).
struct Path<'a> {
    profile: &'a Profile,
    /// Which span `span_values` holds: log offsets from the level at its `SPAN + 1` midnights.
    span: Option<i64>,
    span_values: Vec<f64>,
    /// How many midnights of an uncached span have been looked up one by one.
    span_lookups: (Option<i64>, u32),
    hours: Level,
    minutes: Level,
    seconds: Level,
}

impl<'a> Path<'a> {
    fn new(profile: &'a Profile) -> Self {
        Self {
            profile,
            span: None,
            span_values: Vec::new(),
            span_lookups: (None, 0),
            hours: Level::default(),
            minutes: Level::default(),
            seconds: Level::default(),
        }
    }

    /// The aggregate of seconds `[from, to)`, from the coarsest whole pieces: days, hours,
    /// minutes, seconds. `None` if the range is empty.
    fn range(&mut self, from: i64, to: i64) -> Option<Bar> {
        let mut total: Option<Bar> = None;
        let mut at = from;
        while at < to {
            let left = to - at;
            let (bar, len) = if at.rem_euclid(DAY) == 0 && left >= DAY {
                (self.day_bar(at.div_euclid(DAY)), DAY)
            } else if at.rem_euclid(HOUR) == 0 && left >= HOUR {
                (self.hour_bar(at.div_euclid(HOUR)), HOUR)
            } else if at.rem_euclid(MINUTE) == 0 && left >= MINUTE {
                (self.minute_bar(at.div_euclid(MINUTE)), MINUTE)
            } else {
                (self.second_bar(at), 1)
            };
            total = Some(match total {
                Some(total) => total.merge(&bar),
                None => bar,
            });
            at += len;
        }
        total
    }

    /// The price at the start of second `at`.
    fn price_at(&mut self, at: i64) -> f64 {
        self.second_bar(at).open
    }

    /// Log offsets at midnight starting day `day` and the next.
    fn day_bounds(&mut self, day: i64) -> (f64, f64) {
        (self.midnight(day), self.midnight(day + 1))
    }

    /// The log offset at midnight starting day `day`. A few look-ups (a quote) descend the
    /// bisection tree; more in the same span (a range of bars) compute the whole span once.
    /// Both give the same bits: the same operations on the same operands.
    fn midnight(&mut self, day: i64) -> f64 {
        let span = day.div_euclid(SPAN);
        let offset = day.rem_euclid(SPAN) as usize;
        if self.span != Some(span) {
            if self.span_lookups.0 == Some(span) {
                self.span_lookups.1 += 1;
            } else {
                self.span_lookups = (Some(span), 1);
            }
            if self.span_lookups.1 <= 6 {
                return self.descend(span, offset);
            }
            self.span_values = self.fill_span(span);
            self.span = Some(span);
        }
        self.span_values[offset]
    }

    /// The anchor starting span `span`: the log offset at its first midnight.
    fn anchor(&self, span: i64) -> f64 {
        let p = self.profile;
        p.vol * (SPAN as f64).sqrt() / 2.0 * Rng::new(mix(p.seed, TAG_ANCHOR, span)).gauss()
    }

    /// The midpoint of an interval `len` days long of span `span`, given its ends: drawn from its
    /// conditional law (mean of the ends, variance σ²·len/4), seeded by the day.
    fn midpoint(&self, span: i64, mid: usize, len: usize, start_value: f64, end_value: f64) -> f64 {
        let p = self.profile;
        let sd = p.vol * (len as f64 / 4.0).sqrt();
        let draw = Rng::new(mix(p.seed, TAG_NODE, span * SPAN + mid as i64)).gauss();
        0.5 * (start_value + end_value) + sd * draw
    }

    /// One midnight of a span, by descending its bisection tree (9 draws).
    fn descend(&self, span: i64, offset: usize) -> f64 {
        let (mut start, mut end) = (0, SPAN as usize);
        let (mut start_value, mut end_value) = (self.anchor(span), self.anchor(span + 1));
        if offset == 0 {
            return start_value;
        }
        loop {
            let len = end - start;
            let mid = start + len / 2;
            let value = self.midpoint(span, mid, len, start_value, end_value);
            if offset == mid || len <= 2 {
                return value;
            }
            if offset < mid {
                (end, end_value) = (mid, value);
            } else {
                (start, start_value) = (mid, value);
            }
        }
    }

    /// A whole span: a Brownian bridge between two anchors, by bisection.
    fn fill_span(&self, span: i64) -> Vec<f64> {
        let n = SPAN as usize;
        let mut values = vec![0.0; n + 1];
        values[0] = self.anchor(span);
        values[n] = self.anchor(span + 1);
        let mut len = n;
        while len >= 2 {
            for start in (0..n).step_by(len) {
                values[start + len / 2] = self.midpoint(span, start + len / 2, len, values[start], values[start + len]);
            }
            len /= 2;
        }
        values
    }

    fn day_bar(&mut self, day: i64) -> Bar {
        let (x0, x1) = self.day_bounds(day);
        let p = self.profile;
        let mut rng = Rng::new(mix(p.seed, TAG_DAY, day));
        let up = bridge_excursion((x1 - x0).abs(), p.vol, rng.uniform());
        let down = bridge_excursion((x1 - x0).abs(), p.vol, rng.uniform());
        let (open, close) = (p.level * x0.exp(), p.level * x1.exp());
        let high = (p.level * (x0.max(x1) + up).exp()).max(open.max(close));
        let low = (p.level * (x0.min(x1) - down).exp()).min(open.min(close));
        // Busier on wide days.
        let width = (x0.max(x1) + up - x0.min(x1) + down) / (1.6 * p.vol);
        let volume = p.daily_volume * (0.3 * rng.gauss() - 0.045).exp() * (0.5 + 0.5 * width.min(4.0));
        let volume = (volume.round() as u128).max(1);
        let typical = (open + high + low + close) / 4.0;
        let turnover = (volume as f64 * typical * p.turnover_per_unit).round() as u128;
        Bar { open, high, low, close, volume, turnover }
    }

    fn hour_bar(&mut self, hour: i64) -> Bar {
        let day = hour.div_euclid(24);
        if self.hours.key != Some(day) {
            let parent = self.day_bar(day);
            self.hours.bars = subdivide(&parent, &self.profile.hours, mix(self.profile.seed, TAG_HOURS, day));
            self.hours.key = Some(day);
        }
        self.hours.bars[hour.rem_euclid(24) as usize]
    }

    fn minute_bar(&mut self, minute: i64) -> Bar {
        let hour = minute.div_euclid(60);
        if self.minutes.key != Some(hour) {
            let parent = self.hour_bar(hour);
            self.minutes.bars = subdivide(&parent, &[1.0; 60], mix(self.profile.seed, TAG_MINUTES, hour));
            self.minutes.key = Some(hour);
        }
        self.minutes.bars[minute.rem_euclid(60) as usize]
    }

    fn second_bar(&mut self, second: i64) -> Bar {
        let minute = second.div_euclid(60);
        if self.seconds.key != Some(minute) {
            let parent = self.minute_bar(minute);
            self.seconds.bars = subdivide(&parent, &[1.0; 60], mix(self.profile.seed, TAG_SECONDS, minute));
            self.seconds.key = Some(minute);
        }
        self.seconds.bars[second.rem_euclid(60) as usize]
    }
}

/// How far a Brownian bridge over a move of `distance`, with volatility `sigma`, rises above its
/// higher end: a draw from the exact law, P(excursion > x) = exp(-2x(x + distance)/σ²), by
/// inversion of the uniform `u`.
fn bridge_excursion(distance: f64, sigma: f64, u: f64) -> f64 {
    0.5 * ((distance * distance - 2.0 * sigma * sigma * u.ln()).sqrt() - distance)
}

/// `excursion` beyond `from`, squeezed to stay short of `limit` (smoothly, so small excursions
/// are kept nearly as drawn).
fn squeeze(from: f64, limit: f64, excursion: f64) -> f64 {
    let room = limit - from;
    if room > 0.0 && excursion > 0.0 { room * -(-excursion / room).exp_m1() } else { 0.0 }
}

/// `excursion` (≥ 0), kept as it is up to 80% of `room` and squeezed smoothly beyond, so that it
/// stays short of `room`.
fn fit_within(excursion: f64, room: f64) -> f64 {
    if room <= 0.0 {
        return 0.0;
    }
    let knee = 0.8 * room;
    if excursion <= knee {
        return excursion;
    }
    let soft = room - knee;
    knee + soft * -(-(excursion - knee) / soft).exp_m1()
}

/// Splits `parent` into `weights.len()` consecutive children whose aggregate is exactly the
/// parent: the first opens at its open, the last closes at its close, each opens at the
/// previous close, one reaches its high and one its low (the others stay inside), and volumes
/// and turnovers sum to its own. `weights` are the children's relative activity (variance and
/// volume).
fn subdivide(parent: &Bar, weights: &[f64], seed: u64) -> Vec<Bar> {
    let n = weights.len();
    if n <= 1 {
        return vec![*parent];
    }
    let mut rng = Rng::new(seed);
    let total: f64 = weights.iter().sum();
    // A random walk in activity time, turned into a bridge from 0 to 0.
    let mut walk = vec![0.0; n + 1];
    let mut time = vec![0.0; n + 1];
    for (i, &weight) in weights.iter().enumerate() {
        walk[i + 1] = walk[i] + rng.gauss() * weight.sqrt();
        time[i + 1] = time[i] + weight / total;
    }
    let Bar { open, high, low, close, .. } = *parent;
    let line = |i: usize| open + (close - open) * time[i];
    let bridge = |i: usize| walk[i] - walk[n] * time[i];
    // The bridge around the line from open to close, with the volatility the parent's range
    // suggests (the range of a Brownian motion is about 1.6 σ).
    let scale = 1.1 * (high - low) / (1.6 * total.sqrt());
    let mut path: Vec<f64> = (0..=n).map(|i| line(i) + scale * bridge(i)).collect();
    // Pin the path close to the parent's high and low (a child's typical wick away) at times
    // drawn like a bridge's extremes: early if the open is near the extreme, late if the close
    // is, anywhere otherwise, in activity time (busy hours see most extremes). The stretches in
    // between shift linearly, keeping their shape.
    let range = (high - low).max(1e-300);
    let when = |near_open: f64, near_close: f64, u: f64| {
        let t = u.powf((near_close / near_open.max(1e-300)).clamp(0.1, 10.0));
        time.iter().position(|&at| at >= t).unwrap_or(n).clamp(1, n - 1)
    };
    let peak = when((high - open) / range, (high - close) / range, rng.uniform());
    let mut trough = when((open - low) / range, (close - low) / range, rng.uniform());
    if trough == peak {
        trough = if peak + 1 < n {
            peak + 1
        } else if peak > 1 {
            peak - 1
        } else {
            peak // two children: one inner point, no room for two pins
        };
    }
    let wick = range / (1.6 * (n as f64).sqrt());
    let mut pins = vec![(0, 0.0), (n, 0.0)];
    if trough != peak {
        pins.push((peak, high - 0.5 * wick * rng.uniform() - path[peak]));
        pins.push((trough, low + 0.5 * wick * rng.uniform() - path[trough]));
    }
    pins.sort_by_key(|&(i, _)| i);
    for pair in pins.windows(2) {
        let ((from, shift_from), (to, shift_to)) = (pair[0], pair[1]);
        for (i, point) in path.iter_mut().enumerate().take(to).skip(from + 1) {
            let along = (time[i] - time[from]) / (time[to] - time[from]).max(1e-300);
            *point += shift_from + (shift_to - shift_from) * along;
        }
        path[to] += shift_to;
    }
    // Squeeze what would leave the range back into it, smoothly and keeping the order of prices.
    let middle = 0.5 * (high + low);
    for point in path.iter_mut().take(n).skip(1) {
        let squeezed = if *point > middle {
            middle + fit_within(*point - middle, high - middle)
        } else {
            middle - fit_within(middle - *point, middle - low)
        };
        *point = squeezed.max(low).min(high);
    }
    path[0] = open;
    path[n] = close;

    // Which children touch the parent's extremes: those whose bodies come closest.
    let mut high_child = 0;
    let mut low_child = 0;
    for i in 1..n {
        if path[i].max(path[i + 1]) > path[high_child].max(path[high_child + 1]) {
            high_child = i;
        }
        if path[i].min(path[i + 1]) < path[low_child].min(path[low_child + 1]) {
            low_child = i;
        }
    }
    let mean_step = path.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / n as f64;
    let mean_weight = total / n as f64;
    let mut children = Vec::with_capacity(n);
    let mut volume_weights = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (path[i], path[i + 1]);
        let (top, bottom) = (a.max(b), a.min(b));
        let sigma = 1.25 * mean_step * (weights[i] / mean_weight).sqrt();
        let up = bridge_excursion((b - a).abs(), sigma, rng.uniform());
        let down = bridge_excursion((b - a).abs(), sigma, rng.uniform());
        let child_high = if i == high_child { high } else { (top + squeeze(top, high, up)).max(top).min(high) };
        let child_low = if i == low_child { low } else { (bottom - squeeze(low, bottom, down)).min(bottom).max(low) };
        let width = if sigma > 0.0 { ((child_high - child_low) / (1.6 * sigma)).min(3.0) } else { 1.0 };
        volume_weights.push(weights[i] * (0.35 * rng.gauss()).exp() * (0.6 + 0.4 * width));
        children.push(Bar { open: a, high: child_high, low: child_low, close: b, volume: 0, turnover: 0 });
    }
    for (child, volume) in children.iter_mut().zip(split(parent.volume, &volume_weights)) {
        child.volume = volume;
    }
    let value_weights: Vec<f64> =
        children.iter().map(|c| c.volume as f64 * (c.open + c.high + c.low + c.close) / 4.0).collect();
    for (child, turnover) in children.iter_mut().zip(split(parent.turnover, &value_weights)) {
        child.turnover = turnover;
    }
    children
}

/// Splits `total` into integer parts proportional to `weights`, summing exactly to `total`
/// (largest remainders get the units left over). Zero weights get zero, unless all are zero.
fn split(total: u128, weights: &[f64]) -> Vec<u128> {
    let max = weights.iter().copied().filter(|w| w.is_finite()).fold(0.0, f64::max);
    let quanta: Vec<u128> = if max > 0.0 {
        weights
            .iter()
            .map(|&w| if w.is_finite() && w > 0.0 { ((w / max * 4_294_967_296.0) as u128).max(1) } else { 0 })
            .collect()
    } else {
        vec![1; weights.len()]
    };
    let sum: u128 = quanta.iter().sum();
    let mut parts: Vec<u128> = quanta.iter().map(|&q| total * q / sum).collect();
    let mut left = total - parts.iter().sum::<u128>();
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| quanta[i] > 0).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(total * quanta[i] % sum), i));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// One trade, before rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Trade {
    millis: i64,
    price: f64,
    /// The price of the trade before, or the price the second opened at for its first trade.
    previous: f64,
    volume: u128,
}

/// The trades of one second: 3 to 5 (fewer if its volume is smaller), along a path through the
/// second's open, its extremes and its close, the last at its close; volumes sum to the
/// second's volume.
fn second_trades(profile: &Profile, second: i64, bar: &Bar) -> Vec<Trade> {
    if bar.volume == 0 {
        return Vec::new();
    }
    let mut rng = Rng::new(mix(profile.seed, TAG_TICKS, second));
    let count = (3 + rng.below(3) as u128).min(bar.volume) as usize;
    let (first, second_extreme) = if rng.below(2) == 0 { (bar.high, bar.low) } else { (bar.low, bar.high) };
    let knots = [bar.open, first, second_extreme, bar.close];
    // Times as fractions of the second: the close last, then the extremes, then random times.
    let mut times = vec![1.0, 2.0 / 3.0, 1.0 / 3.0];
    while times.len() < count {
        times.push(0.002 + 0.996 * rng.uniform());
    }
    times.truncate(count);
    times.sort_by(f64::total_cmp);
    let volume_weights: Vec<f64> = (0..count).map(|_| (0.7 * rng.gauss()).exp()).collect();
    let volumes = split(bar.volume - count as u128, &volume_weights);
    let mut previous = bar.open;
    times
        .iter()
        .zip(volumes)
        .map(|(&t, volume)| {
            let segment = ((t * 3.0) as usize).min(2);
            let along = t * 3.0 - segment as f64;
            let price = (knots[segment] + (knots[segment + 1] - knots[segment]) * along).max(bar.low).min(bar.high);
            let trade = Trade { millis: second * 1000 + (t * 1000.0) as i64 - 1, price, previous, volume: volume + 1 };
            previous = price;
            trade
        })
        .collect()
}

#[cfg(test)]
mod tests;
