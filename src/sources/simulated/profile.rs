//! Instrument profiles: deterministic hashing, and each instrument's price level, tick,
//! volatility and trading sessions.

use super::{path::Bar, *};
use crate::market::{calendar::Region, tick_size};

pub(super) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, to seed an instrument from its symbol.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// The seed of draw `index` of purpose `tag` of the instrument seeded `seed`.
pub(super) fn mix(seed: u64, tag: u64, index: i64) -> u64 {
    splitmix64(seed ^ splitmix64(tag.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ splitmix64(index as u64)))
}

/// A small counter-based generator (splitmix64).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in (0, 1), never 0 (so its logarithm is finite).
    pub(super) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(super) fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

// ---------------------------------------------------------------------------------------------
// Instrument profiles.

/// The grid prices move on: an exchange's tick ladder (shares), or a fixed tick (indices, FX,
/// crypto, futures).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Grid {
    /// The ladder of `tick_size::ladder(region, date)`, shown with at least `decimals` places
    /// (HKEX prices carry 3, as iTick serves them).
    Ladder { region: Region, decimals: u32 },
    /// `units × 10^-scale`, shown with `scale` places.
    Fixed { units: i64, scale: u32 },
}

impl Grid {
    /// The grid's unit exponent: prices are whole numbers of `10^-scale`.
    fn scale(self) -> u32 {
        match self {
            Self::Ladder { .. } => tick_size::UNIT_SCALE,
            Self::Fixed { scale, .. } => scale,
        }
    }

    /// `price` rounded to the nearest point of the grid in force on day `day` (at least one
    /// tick), in units of `10^-scale`. Monotonic in `price` (see `market::tick_size`), so
    /// rounding commutes with max and min.
    pub(super) fn units(self, day: i64, price: f64) -> i64 {
        let exact = price * 10f64.powi(self.scale() as i32);
        let tick = match self {
            Self::Fixed { units, .. } => units,
            Self::Ladder { region, .. } => match tick_size::ladder(region, date_of(day)) {
                Some(ladder) => ladder.iter().find(|b| exact <= b.up_to as f64).or(ladder.last()).map_or(1, |b| b.tick),
                None => 1,
            },
        };
        (((exact / tick as f64).round() as i64).max(1)).saturating_mul(tick)
    }

    /// `price` on the grid, as a float that converts back to the same units exactly.
    pub(super) fn snap(self, day: i64, price: f64) -> f64 {
        self.units(day, price) as f64 / 10f64.powi(self.scale() as i32)
    }

    /// A price already on the grid (`snap`), as a decimal with the grid's places.
    pub(super) fn decimal(self, price: f64) -> Decimal {
        let scale = self.scale();
        let units = (price * 10f64.powi(scale as i32)).round() as i64;
        let mut value = Decimal::new(units, scale);
        let shown = match self {
            // US shares under a dollar show their four places, others their market's.
            Self::Ladder { region: Region::Us, .. } if units < 10_i64.pow(scale) => scale,
            Self::Ladder { decimals, .. } => decimals,
            Self::Fixed { scale, .. } => scale,
        };
        value.rescale(shown);
        value
    }

    /// The grid point `steps` ticks above (`steps` > 0) or below `units`, on day `day`; `None`
    /// below the first tick.
    pub(super) fn step(self, day: i64, units: i64, steps: i64) -> Option<i64> {
        let mut at = units;
        for _ in 0..steps.unsigned_abs() {
            // The next point up is in the band of the price just above (down: just below), on
            // that band's grid: up from HKEX's 10.00 is 10.02, down from it 9.99; up from
            // $0.9999 is $1.00.
            let probe = if steps > 0 { at + 1 } else { at - 1 };
            let tick = match self {
                Self::Fixed { units, .. } => units,
                Self::Ladder { region, .. } => tick_size::ladder(region, date_of(day))
                    .and_then(|ladder| ladder.iter().find(|b| probe <= b.up_to).or(ladder.last()))
                    .map_or(1, |b| b.tick),
            };
            at = if steps > 0 {
                probe.div_euclid(tick) * tick + if probe % tick == 0 { 0 } else { tick }
            } else {
                probe.div_euclid(tick) * tick
            };
            if at <= 0 {
                return None;
            }
        }
        Some(at)
    }

    pub(super) fn decimal_units(self, units: i64) -> Decimal {
        self.decimal(units as f64 / 10f64.powi(self.scale() as i32))
    }
}

/// The UTC date of day number `day` (days since 1970-01-01).
pub(super) fn date_of(day: i64) -> NaiveDate {
    DateTime::from_timestamp(day.saturating_mul(DAY), 0).unwrap_or_default().date_naive()
}

/// The day number of `date`.
pub(super) fn day_of(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp().div_euclid(DAY)
}

/// Relative activity (volume and variance) of each UTC hour while the market trades: FX follows
/// its regional sessions, crypto is a little busier in US hours, exchanges are even (their
/// sessions, from the calendar, decide which hours trade at all).
pub(super) fn activity(class: AssetClass) -> [f64; 24] {
    match class {
        // Sydney/Tokyo, London, the London–New York overlap, New York.
        AssetClass::Forex => [
            0.4, 0.45, 0.45, 0.4, 0.4, 0.4, 0.5, 0.9, 1.1, 1.0, 0.9, 0.9, 1.3, 1.4, 1.4, 1.2, 0.9, 0.7, 0.6, 0.5, 0.4,
            0.2, 0.25, 0.35,
        ],
        AssetClass::Crypto => [
            0.8, 0.8, 0.75, 0.7, 0.7, 0.7, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.85, 1.0, 1.1, 1.1, 1.0, 1.0, 0.95, 0.9,
            0.9, 0.85, 0.85, 0.8,
        ],
        _ => [1.0; 24],
    }
}

/// The reference levels of `REFERENCE` are of this day (2025-01-01): the trend passes through
/// them here.
const REFERENCE_DAY: i64 = 20_089;
/// Growth after the reference day is capped at this rate a year, so the future stays sober
/// (a stock that grew 40% a year to 2025 does not keep doing so to 2030).
const MAX_FUTURE_GROWTH: f64 = 0.10;
/// Days in a year, for growth rates.
const YEAR: f64 = 365.25;

/// Growth a year (log) of the famous names, about their 2000–2025 record (dividends aside),
/// so their history looks like theirs: AAPL ≈ $80 (split-adjusted) early in 2020.
const GROWTH: &[(&str, f64)] = &[
    ("AAPL.US", 0.22),
    ("MSFT.US", 0.15),
    ("NVDA.US", 0.40),
    ("AMZN.US", 0.20),
    ("GOOGL.US", 0.17),
    ("GOOG.US", 0.17),
    ("META.US", 0.16),
    ("TSLA.US", 0.30),
    ("AVGO.US", 0.30),
    ("NFLX.US", 0.25),
    ("LLY.US", 0.14),
    ("700.HK", 0.20),
    ("600519.SH", 0.20),
    ("300750.SZ", 0.15),
    ("CRYPTO:BTCUSDT", 0.50),
    ("CRYPTO:ETHUSDT", 0.40),
];

/// When the catalog does not know an instrument's first trading day: the first year the
/// calendars cover for exchange-traded instruments, Binance's first day for crypto pairs.
pub(super) fn fallback_listing(class: AssetClass) -> NaiveDate {
    match class {
        AssetClass::Crypto => NaiveDate::from_ymd_opt(2017, 7, 14),
        _ => NaiveDate::from_ymd_opt(2000, 1, 3),
    }
    .unwrap_or(NaiveDate::MIN)
}

/// Everything the path of an instrument depends on, derived from its catalog entry.
#[derive(Clone, Debug)]
pub(super) struct Profile {
    pub(super) seed: u64,
    /// The market whose sessions the instrument trades in.
    pub(super) market: Region,
    /// The first day with bars (day number).
    pub(super) listed: i64,
    /// Reference price level, on `REFERENCE_DAY`, in today's shares.
    pub(super) level: f64,
    /// Daily volatility of log prices.
    pub(super) vol: f64,
    /// Growth of the trend a year (log), before the reference day.
    pub(super) growth: f64,
    pub(super) grid: Grid,
    /// Decimal places of volumes.
    pub(super) volume_dp: u32,
    /// Whether volume is served (indices have none: it stays internal, to shape their moves).
    pub(super) reports_volume: bool,
    /// Typical daily volume, in units of `10^-volume_dp`, in today's shares.
    pub(super) daily_volume: f64,
    /// Turnover (in 0.01 of the currency) per volume unit per unit of price.
    pub(super) turnover_per_unit: f64,
    pub(super) hours: [f64; 24],
    /// Split ex-days (day numbers) and ratios (new shares per old), oldest first.
    pub(super) splits: Vec<(i64, f64)>,
}

impl Profile {
    pub(super) fn new(instrument: &Instrument) -> Self {
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
        // Drawn after the level and size, so those stay what they were.
        let spread = rng.uniform();
        let growth = GROWTH.iter().find(|(s, _)| *s == symbol).map_or_else(
            || match class {
                // Most shares grow 4% to 14% a year (earnings, and prices with them).
                AssetClass::Stock => 0.04 + 0.10 * spread,
                AssetClass::Fund | AssetClass::Index => 0.07,
                // Currencies drift a little either way.
                AssetClass::Forex => 0.02 * (spread - 0.5),
                AssetClass::Crypto => 0.30,
                AssetClass::Future if symbol.contains("ES.") || symbol.contains("NQ.") || symbol.contains("YM.") => {
                    0.07
                }
                AssetClass::Future => 0.03,
            },
            |&(_, growth)| growth,
        );
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
        let grid = match class {
            AssetClass::Stock | AssetClass::Fund => {
                let decimals = if instrument.market == Region::Hk { 3 } else { 2 };
                Grid::Ladder { region: instrument.market, decimals }
            }
            _ => price_tick(symbol, class, level),
        };
        let listed = instrument.listed_at.unwrap_or_else(|| fallback_listing(class));
        Self {
            seed,
            market: instrument.market,
            listed: day_of(listed),
            level,
            vol,
            growth,
            grid,
            volume_dp,
            reports_volume: class != AssetClass::Index,
            daily_volume: daily_volume * scale,
            turnover_per_unit: notional * 100.0 / scale,
            hours: activity(class),
            splits: super::reference::split_days(instrument),
        }
    }

    /// The trend's log offset from the reference level at the start of day `day`: growth at
    /// the instrument's rate up to the reference day, at most `MAX_FUTURE_GROWTH` after it.
    pub(super) fn trend(&self, day: i64) -> f64 {
        let years = (day - REFERENCE_DAY) as f64 / YEAR;
        if years <= 0.0 { self.growth * years } else { self.growth.min(MAX_FUTURE_GROWTH) * years }
    }

    /// How many shares of day `day` make one of today's: the ratios of the splits still to come.
    pub(super) fn multiple(&self, day: i64) -> f64 {
        self.splits.iter().filter(|(ex, _)| *ex > day).map(|(_, ratio)| ratio).product()
    }

    /// A bar of day `day` (prices already on the grid) as a kline.
    pub(super) fn kline(&self, start: DateTime<Utc>, bar: &Bar) -> Kline {
        Kline {
            time: start,
            open: self.grid.decimal(bar.open),
            high: self.grid.decimal(bar.high),
            low: self.grid.decimal(bar.low),
            close: self.grid.decimal(bar.close),
            volume: self.volume(bar.volume),
            turnover: self.reports_volume.then(|| units(bar.turnover, 2)),
            source: "simulated",
        }
    }

    /// A volume as served: indices have none (`market::trades_volume`).
    pub(super) fn volume(&self, volume: u128) -> Option<Decimal> {
        self.reports_volume.then(|| units(volume, self.volume_dp))
    }
}

pub(super) fn reference(symbol: &str) -> Option<(f64, f64)> {
    REFERENCE.iter().find(|(s, ..)| *s == symbol).map(|&(_, level, vol)| (level, vol))
}

/// Maps `u` in (0, 1) onto [lo, hi], uniformly in logarithm.
pub(super) fn log_uniform(u: f64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + u * (hi / lo).ln()).exp()
}

/// The fixed tick of an instrument without an exchange ladder, at its reference level.
pub(super) fn price_tick(symbol: &str, class: AssetClass, level: f64) -> Grid {
    let fixed = |units, scale| Grid::Fixed { units, scale };
    match class {
        AssetClass::Stock | AssetClass::Fund | AssetClass::Index => fixed(1, 2),
        AssetClass::Forex if symbol.ends_with("JPY") => fixed(1, 3),
        AssetClass::Forex => fixed(1, 5),
        AssetClass::Crypto if level >= 100.0 => fixed(1, 2),
        AssetClass::Crypto if level >= 10.0 => fixed(1, 3),
        AssetClass::Crypto if level >= 1.0 => fixed(1, 4),
        AssetClass::Crypto => fixed(1, 5),
        AssetClass::Future => match symbol {
            "FUT:NG.US" => fixed(1, 3),
            "FUT:GC.US" => fixed(1, 1),
            "FUT:SI.US" => fixed(5, 3),
            "FUT:HG.US" => fixed(5, 4),
            "FUT:ES.US" | "FUT:NQ.US" => fixed(25, 2),
            "FUT:YM.US" | "FUT:HSI.HK" => fixed(1, 0),
            _ if level < 10.0 => fixed(1, 3),
            _ => fixed(1, 2),
        },
    }
}
