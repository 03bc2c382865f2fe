//! Corporate actions and fundamentals of the simulated market.
//!
//! # How the simulated price path relates to splits
//!
//! The price path of `simulated` is the history *in today's shares*. Real history is not: before
//! AAPL's 4:1 split of 2020-08-31 a share cost four times as much. So the path makes each day as
//! traded: its prices are the path × the split ratios still to come, its volume in the shares of
//! the day, before anything is rounded (see `Path::day_bar`), and every coarser bar aggregates
//! as-traded days. Forward adjustment gives back the path to the tick, and the as-traded series
//! jumps at each split as a real one does. Splits are a fixed table of real past splits (all on
//! trading days), so as-traded history never changes as the clock moves on.
//!
//! Cash dividends do not move the path (their ex-date drop, a fraction of a percent, is lost
//! in the daily noise): adjusting for them restates history by the standard factor all the same.
//!
//! # The series
//!
//! - **Splits:** the real ones of the big names (AAPL 4:1 2020-08-31, TSLA 5:1 2020-08-31 and
//!   3:1 2022-08-25, NVDA 4:1 2021-07-20 and 10:1 2024-06-10, GOOGL/GOOG 20:1 2022-07-18, AMZN
//!   20:1 2022-06-06, AVGO 10:1 2024-07-15, WMT 3:1 2024-02-26, Tencent 5:1 2014-05-15).
//! - **Dividends** since 2000 (or the year a company started paying), for the payers: quarterly
//!   for US listings, semi-annual for Hong Kong, annual for Shanghai and Shenzhen, on the same
//!   day of the month every year, moved to the next trading day when the market is closed. The
//!   annual amount is the instrument's yield on its trend price (`Profile::trend`), in the
//!   shares of the day; cents for US and HK, 0.001 for China.
//! - **Fundamentals**, one point per trading day: trailing EPS drawn per quarter around the
//!   trend price ÷ a typical P/E; book value per share the trend price ÷ a typical P/B; shares
//!   outstanding fixed in today's shares. P/E is the day's close ÷ EPS (null when EPS ≤ 0), P/B
//!   close ÷ book value, the dividend yield the trailing twelve months' dividends ÷ close in
//!   percent, market cap close × shares. Per-share figures are in the shares of the day, so
//!   these identities hold on the served numbers, and valuation bands move with the walk.
//!
//! Everything is a pure function of the symbol and the date, like the rest of the simulation.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy, prelude::FromPrimitive};

use super::{DAY, Profile, Rng, SimulatedMarket, fnv1a, mix};
use crate::{
    market::{
        calendar,
        corporate::{ActionKind, CorporateAction, FundamentalPoint},
        types::{Instrument, Interval},
    },
    reference::service::AssetClass,
};

const TAG_DIVIDEND: u64 = 101;
const TAG_EARNINGS: u64 = 102;
const TAG_VALUATION: u64 = 103;

/// Dividends of the simulation start here (BACKWARD adjustment is anchored at the first action).
const FIRST_DIVIDEND_YEAR: i32 = 2000;

/// (year, month, day).
type Ymd = (i32, u32, u32);

/// Real past splits: (symbol, ex-date, from, to).
const SPLITS: &[(&str, Ymd, u32, u32)] = &[
    ("700.HK", (2014, 5, 15), 1, 5),
    ("AAPL.US", (2020, 8, 31), 1, 4),
    ("TSLA.US", (2020, 8, 31), 1, 5),
    ("NVDA.US", (2021, 7, 20), 1, 4),
    ("AMZN.US", (2022, 6, 6), 1, 20),
    ("GOOGL.US", (2022, 7, 18), 1, 20),
    ("GOOG.US", (2022, 7, 18), 1, 20),
    ("TSLA.US", (2022, 8, 25), 1, 3),
    ("WMT.US", (2024, 2, 26), 1, 3),
    ("NVDA.US", (2024, 6, 10), 1, 10),
    ("AVGO.US", (2024, 7, 15), 1, 10),
];

/// Known profiles: (symbol, dividend yield % (0: pays none), paying since, typical P/E (negative:
/// loss-making), P/B, shares outstanding today in millions).
const PROFILES: &[(&str, f64, i32, f64, f64, f64)] = &[
    ("AAPL.US", 0.45, 2012, 32.0, 50.0, 15_000.0),
    ("MSFT.US", 0.75, 2003, 34.0, 11.0, 7_430.0),
    ("NVDA.US", 0.03, 2012, 50.0, 45.0, 24_500.0),
    ("AMZN.US", 0.0, 0, 42.0, 8.0, 10_500.0),
    ("GOOGL.US", 0.45, 2024, 23.0, 7.0, 5_800.0),
    ("GOOG.US", 0.45, 2024, 23.0, 7.0, 5_500.0),
    ("META.US", 0.35, 2024, 27.0, 8.0, 2_520.0),
    ("TSLA.US", 0.0, 0, 90.0, 13.0, 3_200.0),
    ("BRK-B.US", 0.0, 0, 13.0, 1.6, 2_160.0),
    ("NFLX.US", 0.0, 0, 48.0, 15.0, 430.0),
    ("INTC.US", 1.5, 2000, -30.0, 1.0, 4_300.0),
    ("XOM.US", 3.4, 2000, 14.0, 2.0, 4_400.0),
    ("JPM.US", 2.1, 2000, 13.0, 2.2, 2_800.0),
    ("KO.US", 3.0, 2000, 25.0, 10.0, 4_300.0),
    ("600519.SH", 3.2, 2001, 24.0, 8.0, 1_256.2),
    ("700.HK", 0.8, 2004, 22.0, 4.0, 9_300.0),
];

/// A stock's (or fund's) simulated profile.
struct Fundamentals {
    yield_percent: f64,
    paying_since: i32,
    pe: f64,
    pb: f64,
    shares: f64,
    level: f64,
    seed: u64,
    /// The price path's profile: its trend is the trend of earnings, book value and dividends.
    path: Profile,
}

impl Fundamentals {
    fn of(instrument: &Instrument) -> Option<Self> {
        if !matches!(instrument.asset_class, AssetClass::Stock | AssetClass::Fund) {
            return None;
        }
        let symbol = instrument.symbol.as_str();
        let path = Profile::new(instrument);
        let level = path.level;
        let seed = fnv1a(symbol.as_bytes());
        if let Some(&(_, yield_percent, paying_since, pe, pb, millions)) = PROFILES.iter().find(|p| p.0 == symbol) {
            return Some(Self { yield_percent, paying_since, pe, pb, shares: millions * 1e6, level, seed, path });
        }
        let mut rng = Rng::new(mix(seed, TAG_VALUATION, 0));
        // About two in three pay, 0.5% to 4%; funds all distribute.
        let pays = instrument.asset_class == AssetClass::Fund || rng.below(3) > 0;
        let yield_percent = if pays { 0.5 + 3.5 * rng.uniform() } else { 0.0 };
        let pe = 8.0 + 32.0 * rng.uniform();
        let pb = 1.0 + 9.0 * rng.uniform();
        let market_cap = super::log_uniform(rng.uniform(), 2e10, 5e11);
        Some(Self {
            yield_percent,
            paying_since: FIRST_DIVIDEND_YEAR,
            pe,
            pb,
            shares: (market_cap / level).round(),
            level,
            seed,
            path,
        })
    }

    /// Payments a year and the months they fall in, by listing.
    fn schedule(instrument: &Instrument) -> &'static [u32] {
        match instrument.symbol.as_str().rsplit('.').next() {
            Some("HK") => &[5, 9],
            Some("SH" | "SZ") => &[6],
            _ => &[2, 5, 8, 11],
        }
    }
}

impl Fundamentals {
    /// The growth factor of `date` relative to the reference level: the price path's trend, so
    /// valuations (P/E, P/B, yield) wander around their typical values as the walk does, and
    /// history has the price and the earnings of its time.
    fn growth(&self, date: NaiveDate) -> f64 {
        self.path.trend(super::day_of(date)).exp()
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn decimal(value: f64, dp: u32) -> Option<Decimal> {
    Decimal::from_f64(value).map(|d| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

fn splits(instrument: &Instrument) -> impl Iterator<Item = CorporateAction> + '_ {
    SPLITS.iter().filter(|s| s.0 == instrument.symbol.as_str()).filter_map(|&(_, (y, m, d), from, to)| {
        Some(CorporateAction {
            ex_date: NaiveDate::from_ymd_opt(y, m, d)?,
            kind: ActionKind::Split { from: Decimal::from(from), to: Decimal::from(to) },
        })
    })
}

/// How many of today's shares one share of `at` became: the product of later splits' ratios.
fn split_multiple(instrument: &Instrument, at: DateTime<Utc>) -> Decimal {
    splits(instrument).filter(|s| s.effective() > at).fold(Decimal::ONE, |acc, s| match s.kind {
        ActionKind::Split { from, to } => acc * to / from,
        ActionKind::Dividend { .. } => acc,
    })
}

/// The instrument's splits as the path uses them: ex-day numbers and ratios, oldest first.
pub(super) fn split_days(instrument: &Instrument) -> Vec<(i64, f64)> {
    let mut days: Vec<(i64, f64)> = SPLITS
        .iter()
        .filter(|s| s.0 == instrument.symbol.as_str())
        .filter_map(|&(_, (y, m, d), from, to)| {
            Some((super::day_of(NaiveDate::from_ymd_opt(y, m, d)?), f64::from(to) / f64::from(from)))
        })
        .collect();
    days.sort_by_key(|(day, _)| *day);
    days
}

/// Splits and dividends with ex-dates up to `today`, oldest first.
pub(super) fn corporate_actions(instrument: &Instrument, today: NaiveDate) -> Vec<CorporateAction> {
    let Some(profile) = Fundamentals::of(instrument) else { return Vec::new() };
    let mut actions: Vec<CorporateAction> = splits(instrument).filter(|s| s.ex_date <= today).collect();
    if profile.yield_percent > 0.0 {
        let months = Fundamentals::schedule(instrument);
        let dp = if instrument.symbol.as_str().ends_with(".US") || instrument.symbol.as_str().ends_with(".HK") {
            2
        } else {
            3
        };
        let first = profile.paying_since.max(FIRST_DIVIDEND_YEAR);
        for year in first..=today.year() {
            for (n, &month) in months.iter().enumerate() {
                // The same day every year, as companies keep their calendars (and so a trailing
                // year always holds one payment of each month).
                let day = 5 + Rng::new(mix(profile.seed, TAG_DIVIDEND, i64::from(month))).below(20) as u32;
                let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else { continue };
                // Ex-dates are trading days: a closed day's moves to the next session.
                let ex_date = if calendar::is_trading_day(instrument.market, date) {
                    date
                } else {
                    calendar::next_trading_day(instrument.market, date).unwrap_or(date)
                };
                if ex_date > today || splits(instrument).any(|s| s.ex_date == ex_date) {
                    continue;
                }
                let annual = profile.level * profile.yield_percent / 100.0 * profile.growth(ex_date);
                // The final payment of the year is the larger one where there are several.
                let share = if months.len() > 1 && n == months.len() - 1 { 1.3 } else { 1.0 };
                let weight = share / (months.len() as f64 + 0.3 * f64::from(months.len() > 1));
                let multiple = split_multiple(instrument, midnight(ex_date));
                let Some(amount) = decimal(annual * weight, dp + 2).map(|a| (a * multiple).round_dp(dp)) else {
                    continue;
                };
                if amount > Decimal::ZERO {
                    actions.push(CorporateAction {
                        ex_date,
                        kind: ActionKind::Dividend { amount, currency: instrument.currency.clone() },
                    });
                }
            }
        }
    }
    actions.sort_by_key(|a| a.ex_date);
    actions
}

/// Trailing EPS in today's shares, for the quarter containing `date`.
fn eps_today_shares(profile: &Fundamentals, date: NaiveDate) -> f64 {
    let quarter = i64::from(date.year()) * 4 + i64::from(date.month0() / 3);
    let mut rng = Rng::new(mix(profile.seed, TAG_EARNINGS, quarter));
    // The quarter's first day: one figure a quarter.
    let first = NaiveDate::from_ymd_opt(date.year(), date.month0() / 3 * 3 + 1, 1).unwrap_or(date);
    let base = profile.level / profile.pe.abs() * profile.growth(first);
    let wobble = 1.0 + 0.06 * rng.gauss().clamp(-3.0, 3.0);
    if profile.pe < 0.0 { -base * wobble } else { base * wobble }
}

/// One point per day from `from` to `to` (both inclusive, at most up to the bar in progress).
pub(super) fn fundamentals(
    market: &SimulatedMarket,
    instrument: &Instrument,
    from: NaiveDate,
    to: NaiveDate,
    now: i64,
) -> Vec<FundamentalPoint> {
    let Some(profile) = Fundamentals::of(instrument) else { return Vec::new() };
    if instrument.asset_class != AssetClass::Stock || from > to {
        return Vec::new();
    }
    let start = midnight(from);
    let end = midnight(to) + Duration::days(1);
    let days = ((end - start).num_seconds() / DAY).max(0) as usize;
    let bars = market.klines_at(instrument, Interval::OneDay, Some(end), days, now);
    let today = DateTime::from_timestamp(now, 0).unwrap_or_default().date_naive();
    let dividends: Vec<(NaiveDate, Decimal)> = corporate_actions(instrument, today)
        .into_iter()
        .filter_map(|a| match a.kind {
            ActionKind::Dividend { amount, .. } => Some((a.ex_date, amount)),
            ActionKind::Split { .. } => None,
        })
        .collect();
    let shares = Decimal::from_f64(profile.shares).unwrap_or_default();
    let hundred = Decimal::ONE_HUNDRED;
    bars.iter()
        .filter(|bar| bar.time >= start)
        .map(|bar| {
            let date = bar.time.date_naive();
            let price = bar.close;
            let multiple = split_multiple(instrument, bar.time);
            let eps = decimal(eps_today_shares(&profile, date), 4).map(|e| (e * multiple).round_dp(2));
            let book =
                decimal(profile.level / profile.pb * profile.growth(date), 4).map(|b| (b * multiple).round_dp(2));
            // Ratios, yield and market cap are reported exact: finql rounds each once, to its
            // stated scale (`market::precision`), so no figure is rounded twice.
            let ratio = |denominator: Option<Decimal>| denominator.filter(|d| *d > Decimal::ZERO).map(|d| price / d);
            let year_ago = date.with_year(date.year() - 1).unwrap_or(date - Duration::days(365));
            let trailing: Decimal =
                dividends.iter().filter(|(ex, _)| *ex > year_ago && *ex <= date).map(|(_, amount)| *amount).sum();
            FundamentalPoint {
                date,
                price: Some(price),
                eps,
                pe: ratio(eps),
                pb: ratio(book),
                dividend_yield: (price > Decimal::ZERO).then(|| trailing * hundred / price),
                market_cap: Some(price * shares / multiple),
                currency: instrument.currency.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::reference::Symbol;

    fn stock(symbol: &str, currency: &str) -> Instrument {
        Instrument {
            symbol: Symbol::parse(symbol).unwrap(),
            asset_class: AssetClass::Stock,
            region: symbol.rsplit('.').next().unwrap().into(),
            code: symbol.split('.').next().unwrap().into(),
            currency: currency.into(),
            market: if symbol.ends_with(".US") {
                calendar::Region::Us
            } else if symbol.ends_with(".HK") {
                calendar::Region::Hk
            } else {
                calendar::Region::Cn
            },
            listed_at: None,
        }
    }

    fn market() -> SimulatedMarket {
        SimulatedMarket::with_clock(|| Utc.with_ymd_and_hms(2026, 11, 25, 13, 47, 31).unwrap())
    }

    #[test]
    fn as_traded_history_jumps_at_splits() {
        let m = market();
        let aapl = stock("AAPL.US", "USD");
        let now = m.now();
        // AAPL 4:1 on Monday 2020-08-31: Friday's close is four times Monday's open, to a tick.
        let end = Some(Utc.with_ymd_and_hms(2020, 9, 1, 0, 0, 0).unwrap());
        let days = m.klines_at(&aapl, Interval::OneDay, end, 2, now);
        assert_eq!(days[0].time.date_naive(), NaiveDate::from_ymd_opt(2020, 8, 28).unwrap());
        let ratio = days[0].close / days[1].open;
        assert!((ratio - Decimal::from(4)).abs() < Decimal::new(5, 3), "{ratio}");
        // A week across an ex-date (TSLA 3:1 on Thursday 2022-08-25) is its as-traded days.
        let tsla = stock("TSLA.US", "USD");
        let end = Some(Utc.with_ymd_and_hms(2022, 8, 29, 0, 0, 0).unwrap());
        let week = m.klines_at(&tsla, Interval::OneWeek, end, 1, now);
        let days = m.klines_at(&tsla, Interval::OneDay, end, 5, now);
        assert_eq!(week[0].time, days[0].time);
        assert!(days[2].close > days[3].open * Decimal::from(2), "{days:?}");
        assert_eq!(week[0].open, days[0].open);
        assert_eq!(week[0].close, days[4].close);
        assert_eq!(week[0].high, days.iter().map(|d| d.high).max().unwrap());
        assert_eq!(week[0].volume, days.iter().map(|d| d.volume).sum::<Option<Decimal>>());
    }

    #[test]
    fn actions_are_plausible_and_deterministic() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let aapl = corporate_actions(&stock("AAPL.US", "USD"), today);
        assert_eq!(aapl, corporate_actions(&stock("AAPL.US", "USD"), today));
        let dividends: Vec<_> =
            aapl.iter().filter(|a| a.ex_date.year() == 2023 && matches!(a.kind, ActionKind::Dividend { .. })).collect();
        assert_eq!(dividends.len(), 4, "quarterly");
        assert!(
            corporate_actions(&stock("AMZN.US", "USD"), today)
                .iter()
                .all(|a| matches!(a.kind, ActionKind::Split { .. }))
        );
        let moutai = corporate_actions(&stock("600519.SH", "CNY"), today);
        assert_eq!(moutai.iter().filter(|a| a.ex_date.year() == 2024).count(), 1, "annual");
    }
}
