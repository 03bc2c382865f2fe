//! The vocabulary of market data. Prices and sizes are exact decimals (`rust_decimal`), served
//! as strings: a price like 0.1 + 0.2 must not become 0.30000000000000004 on its way to a
//! client, and GraphQL floats are IEEE doubles. Times are UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::calendar::Region;
use crate::{
    error::{AppError, AppResult},
    reference::{
        Symbol,
        service::{AssetClass, Security},
        symbol::Namespace,
    },
};

/// What a source needs to know about an instrument: the catalog entry's upstream mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Instrument {
    pub symbol: Symbol,
    pub asset_class: AssetClass,
    /// Upstream region (iTick: `US`, `HK`, `SH`, `SZ`, `GB`, `BA`, …).
    pub region: String,
    /// Upstream code (iTick: `AAPL`, `700`, `EURUSD`, `BTCUSDT`, …).
    pub code: String,
    /// Currency of prices: ISO 4217, or a market code beside it (`CNH`, `USDT`).
    pub currency: String,
    /// The market whose trading hours the instrument keeps.
    pub market: Region,
    /// The first trading day, when the catalog knows it.
    pub listed_at: Option<NaiveDate>,
}

impl Instrument {
    /// The instrument of a catalog entry. The catalog is finql's own data: a region the market
    /// cannot place is a bug in it (`INTERNAL`).
    pub fn of(security: Security) -> AppResult<Self> {
        let market = Region::of(security.asset_class, &security.region)
            .map_err(|err| AppError::internal(anyhow::anyhow!("catalog row `{}`: {err}", security.symbol)))?;
        Ok(Self {
            symbol: security.symbol,
            asset_class: security.asset_class,
            region: security.upstream_region,
            code: security.upstream_code,
            currency: security.currency.code().to_owned(),
            market,
            listed_at: security.listed_at,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TradingStatus {
    Normal,
    Suspended,
    Delisted,
    CircuitBreaker,
}

/// Whether trades of the instrument have a size. An index is a level computed from its
/// constituents' prices, and nothing trades it: what a source reports as an index's "volume"
/// (the constituents' total, or nothing at all) is not the index's own, so finql serves none.
/// Keyed by symbol because every index, and only an index, is in the `IDX:` namespace (the
/// catalog's INDEX class; a test over the catalog holds the two together).
pub fn trades_volume(symbol: &Symbol) -> bool {
    symbol.namespace() != Namespace::Index
}

/// The bars of `symbol` as served: without volume and turnover where nothing trades it.
pub fn strip_untraded_volume(symbol: &Symbol, bars: &mut [Kline]) {
    if !trades_volume(symbol) {
        for bar in bars {
            bar.volume = None;
            bar.turnover = None;
        }
    }
}

/// The latest price and session statistics of an instrument.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    pub symbol: Symbol,
    pub last: Decimal,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    /// Previous session's close.
    pub prev_close: Decimal,
    /// Units traded in the session; `None` where nothing trades (an index: see
    /// [`trades_volume`]).
    pub volume: Option<Decimal>,
    /// Money traded in the session; `None` where nothing trades.
    pub turnover: Option<Decimal>,
    pub timestamp: DateTime<Utc>,
    pub trading_status: TradingStatus,
    /// Which source produced it (`simulated`, `itick`).
    pub source: &'static str,
    /// True when served from the last known value because the source is unavailable.
    pub stale: bool,
}

impl Quote {
    /// The quote as served: without volume and turnover where nothing trades it.
    pub fn without_untraded_volume(self) -> Self {
        if trades_volume(&self.symbol) { self } else { Self { volume: None, turnover: None, ..self } }
    }

    pub fn change(&self) -> Decimal {
        self.last - self.prev_close
    }

    /// Percent change against the previous close, always with
    /// [`PERCENT_DP`](super::precision::PERCENT_DP) (4) decimals, rounded once, half away from
    /// zero; `None` if there was no previous close.
    pub fn change_percent(&self) -> Option<Decimal> {
        if self.prev_close.is_zero() {
            return None;
        }
        let percent = self.change() * Decimal::ONE_HUNDRED / self.prev_close;
        Some(super::precision::fixed(percent, super::precision::PERCENT_DP))
    }
}

/// Candle intervals. Bars start at multiples of the interval in UTC (weeks on Mondays, months on
/// the 1st), the convention of most upstreams for 24-hour markets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    OneMinute,
    FiveMinutes,
    FifteenMinutes,
    ThirtyMinutes,
    OneHour,
    TwoHours,
    FourHours,
    OneDay,
    OneWeek,
    OneMonth,
}

impl Interval {
    pub const ALL: [Interval; 10] = [
        Interval::OneMinute,
        Interval::FiveMinutes,
        Interval::FifteenMinutes,
        Interval::ThirtyMinutes,
        Interval::OneHour,
        Interval::TwoHours,
        Interval::FourHours,
        Interval::OneDay,
        Interval::OneWeek,
        Interval::OneMonth,
    ];

    /// finql's short code (`1m` … `1M`): how an interval is stored (kline history) and sent
    /// between replicas. Stable: changing one would orphan stored bars.
    pub fn code(self) -> &'static str {
        match self {
            Self::OneMinute => "1m",
            Self::FiveMinutes => "5m",
            Self::FifteenMinutes => "15m",
            Self::ThirtyMinutes => "30m",
            Self::OneHour => "1h",
            Self::TwoHours => "2h",
            Self::FourHours => "4h",
            Self::OneDay => "1d",
            Self::OneWeek => "1w",
            Self::OneMonth => "1M",
        }
    }

    /// The interval of a [`code`](Self::code).
    pub fn from_code(code: &str) -> Option<Interval> {
        Self::ALL.into_iter().find(|interval| interval.code() == code)
    }

    /// iTick's `kType`.
    pub fn itick_ktype(self) -> u8 {
        match self {
            Self::OneMinute => 1,
            Self::FiveMinutes => 2,
            Self::FifteenMinutes => 3,
            Self::ThirtyMinutes => 4,
            Self::OneHour => 5,
            Self::TwoHours => 6,
            Self::FourHours => 7,
            Self::OneDay => 8,
            Self::OneWeek => 9,
            Self::OneMonth => 10,
        }
    }

    /// Fixed length in minutes; `None` for months (28 to 31 days).
    pub fn minutes(self) -> Option<i64> {
        Some(match self {
            Self::OneMinute => 1,
            Self::FiveMinutes => 5,
            Self::FifteenMinutes => 15,
            Self::ThirtyMinutes => 30,
            Self::OneHour => 60,
            Self::TwoHours => 120,
            Self::FourHours => 240,
            Self::OneDay => 1440,
            Self::OneWeek => 10_080,
            Self::OneMonth => return None,
        })
    }

    /// Start of the bar containing `at`.
    pub fn bar_start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::OneMonth => Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0).single().unwrap_or(at),
            Self::OneWeek => {
                let day = Utc.with_ymd_and_hms(at.year(), at.month(), at.day(), 0, 0, 0).single().unwrap_or(at);
                day - Duration::days(i64::from(at.weekday().num_days_from_monday()))
            }
            other => {
                let len = other.minutes().unwrap_or(1) * 60;
                let secs = at.timestamp().div_euclid(len) * len;
                DateTime::from_timestamp(secs, 0).unwrap_or(at)
            }
        }
    }

    /// Start of the bar after the one starting at `start`.
    pub fn next_start(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::OneMonth => {
                let (y, m) =
                    if start.month() == 12 { (start.year() + 1, 1) } else { (start.year(), start.month() + 1) };
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(start)
            }
            other => start + Duration::minutes(other.minutes().unwrap_or(1)),
        }
    }
}

/// The static name of a source finql has, from its text (`itick`, `polygon`, `simulated`):
/// what crosses a process boundary (the shared cache, replicas' events) comes back as one of
/// these, or not at all (a newer replica's source is a miss, never a guess).
pub fn known_source(name: &str) -> Option<&'static str> {
    crate::config::MarketSourceKind::parse(name).map(crate::config::MarketSourceKind::name)
}

/// One candle. `time` is the bar's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kline {
    pub time: DateTime<Utc>,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Units traded in the bar; `None` where nothing trades (an index: see [`trades_volume`]).
    pub volume: Option<Decimal>,
    /// Money traded in the bar; `None` where nothing trades.
    pub turnover: Option<Decimal>,
    /// Which source produced it (`simulated`, `itick`, `polygon`): a bar is one source's,
    /// never a mix.
    pub source: &'static str,
}

/// One price level of an order book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookLevel {
    pub price: Decimal,
    pub volume: Decimal,
    /// Number of orders at the level, when the source reports it.
    pub orders: Option<i64>,
}

/// Bids best (highest) first, asks best (lowest) first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBook {
    pub symbol: Symbol,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
    pub timestamp: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickDirection {
    Neutral,
    Sell,
    Buy,
}

/// One trade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    pub symbol: Symbol,
    pub price: Decimal,
    pub volume: Decimal,
    pub timestamp: DateTime<Utc>,
    pub direction: Option<TickDirection>,
    /// Which source reported it.
    pub source: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_starts() {
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 13, 47, 31).unwrap(); // a Wednesday
        let start = |i: Interval| i.bar_start(at).to_rfc3339();
        assert_eq!(start(Interval::OneMinute), "2026-11-25T13:47:00+00:00");
        assert_eq!(start(Interval::FifteenMinutes), "2026-11-25T13:45:00+00:00");
        assert_eq!(start(Interval::FourHours), "2026-11-25T12:00:00+00:00");
        assert_eq!(start(Interval::OneDay), "2026-11-25T00:00:00+00:00");
        assert_eq!(start(Interval::OneWeek), "2026-11-23T00:00:00+00:00");
        assert_eq!(start(Interval::OneMonth), "2026-11-01T00:00:00+00:00");
        let dec = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(Interval::OneMonth.next_start(dec).to_rfc3339(), "2027-01-01T00:00:00+00:00");
    }

    #[test]
    fn change_percent() {
        let quote = Quote {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            last: Decimal::new(10250, 2),
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            prev_close: Decimal::new(10000, 2),
            volume: Some(Decimal::ZERO),
            turnover: Some(Decimal::ZERO),
            timestamp: Utc::now(),
            trading_status: TradingStatus::Normal,
            source: "test",
            stale: false,
        };
        assert_eq!(quote.change().to_string(), "2.50");
        assert_eq!(quote.change_percent().unwrap().to_string(), "2.5000");
        // 0.0001 × 100 / 200 = 0.00005 exactly: half away from zero gives 0.0001 (half-even 0.0000).
        let tiny = Quote { last: Decimal::new(2_000_001, 4), prev_close: Decimal::new(20_000, 2), ..quote.clone() };
        assert_eq!(tiny.change_percent().unwrap().to_string(), "0.0001");
        let down = Quote { last: Decimal::new(1_999_999, 4), ..tiny };
        assert_eq!(down.change_percent().unwrap().to_string(), "-0.0001");
        let flat = Quote { last: quote.prev_close, ..quote };
        assert_eq!(flat.change_percent().unwrap().to_string(), "0.0000", "the scale is fixed");
    }

    #[test]
    fn indices_trade_no_volume() {
        let quote = |symbol: &str| Quote {
            symbol: Symbol::parse(symbol).unwrap(),
            last: Decimal::ONE,
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            prev_close: Decimal::ONE,
            volume: Some(Decimal::TEN),
            turnover: Some(Decimal::TEN),
            timestamp: Utc::now(),
            trading_status: TradingStatus::Normal,
            source: "test",
            stale: false,
        };
        let index = quote("IDX:SPX").without_untraded_volume();
        assert_eq!((index.volume, index.turnover), (None, None));
        for traded in ["AAPL.US", "FX:EURUSD", "CRYPTO:BTCUSDT", "FUT:CL.US", "SPY.US"] {
            let served = quote(traded).without_untraded_volume();
            assert_eq!(served.volume, Some(Decimal::TEN), "{traded}");
        }
        let one = Decimal::ONE;
        let mut bars = vec![Kline {
            time: Utc::now(),
            open: one,
            high: one,
            low: one,
            close: one,
            volume: Some(one),
            turnover: Some(one),
            source: "simulated",
        }];
        strip_untraded_volume(&Symbol::parse("AAPL.US").unwrap(), &mut bars);
        assert_eq!(bars[0].volume, Some(one));
        strip_untraded_volume(&Symbol::parse("IDX:HSI").unwrap(), &mut bars);
        assert_eq!((bars[0].volume, bars[0].turnover), (None, None));
    }
}
