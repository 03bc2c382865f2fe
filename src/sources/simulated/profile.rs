//! Instrument profiles: deterministic hashing, and each instrument's price level, tick,
//! volatility and trading sessions.

use super::*;

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

/// A price tick: `units × 10^-scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PriceTick {
    pub(super) units: i64,
    pub(super) scale: u32,
    pub(super) size: f64,
}

impl PriceTick {
    pub(super) fn new(units: i64, scale: u32) -> Self {
        Self { units, scale, size: units as f64 / 10f64.powi(scale as i32) }
    }

    /// The price in whole ticks, at least one. Monotonic in `price`, so rounding commutes with
    /// max and min and aggregated bars stay exact.
    pub(super) fn steps(&self, price: f64) -> i64 {
        ((price / self.size).round() as i64).max(1)
    }

    pub(super) fn decimal(&self, steps: i64) -> Decimal {
        Decimal::new(steps.saturating_mul(self.units), self.scale)
    }

    pub(super) fn round(&self, price: f64) -> Decimal {
        self.decimal(self.steps(price))
    }
}

/// Hours of the UTC day in which an instrument's market is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Session {
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
    pub(super) fn of(instrument: &Instrument) -> Self {
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
    pub(super) fn hours(self) -> [f64; 24] {
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
pub(super) struct Profile {
    pub(super) seed: u64,
    /// Reference price level.
    pub(super) level: f64,
    /// Daily volatility of log prices.
    pub(super) vol: f64,
    pub(super) tick: PriceTick,
    /// Decimal places of volumes.
    pub(super) volume_dp: u32,
    /// Typical daily volume, in units of `10^-volume_dp`.
    pub(super) daily_volume: f64,
    /// Turnover (in 0.01 of the currency) per volume unit per unit of price.
    pub(super) turnover_per_unit: f64,
    pub(super) hours: [f64; 24],
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

    pub(super) fn kline(&self, start: DateTime<Utc>, bar: &Bar) -> Kline {
        Kline {
            time: start,
            open: self.tick.round(bar.open),
            high: self.tick.round(bar.high),
            low: self.tick.round(bar.low),
            close: self.tick.round(bar.close),
            volume: Some(units(bar.volume, self.volume_dp)),
            turnover: Some(units(bar.turnover, 2)),
        }
    }
}

pub(super) fn reference(symbol: &str) -> Option<(f64, f64)> {
    REFERENCE.iter().find(|(s, ..)| *s == symbol).map(|&(_, level, vol)| (level, vol))
}

/// Maps `u` in (0, 1) onto [lo, hi], uniformly in logarithm.
pub(super) fn log_uniform(u: f64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + u * (hi / lo).ln()).exp()
}

/// The tick an instrument trades in, at its reference level.
pub(super) fn price_tick(symbol: &str, class: AssetClass, level: f64) -> PriceTick {
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
