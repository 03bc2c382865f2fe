//! The tick ladder of each equity market: the smallest step a share's price may move by, as a
//! function of the market, the date and the price itself.
//!
//! One definition, used by the simulated market for every price it quotes, books and bars, and
//! available to whatever else needs to check a price (a validation, an order form). Ladders are
//! data (`Band`s in ten-thousandths of the currency), so a rule change is a new table from a date.
//!
//! - **HKEX** (the spread table of Part A, equities): 0.001 up to 0.25, 0.005 to 0.50, 0.01 to
//!   10, 0.02 to 20, 0.05 to 100, 0.10 to 200, 0.20 to 500, 0.50 to 1,000, 1 to 2,000, 2 to
//!   5,000, 5 above. From 2025-08-04 (phase 1 of HKEX's reduction of minimum spreads) 0.01 up to
//!   20, 0.02 to 50, 0.05 to 100. Phase 2 (0.005 between 0.50 and 10, announced for mid-2026) is
//!   not modelled: its date was not confirmed when this table was written.
//! - **Shanghai and Shenzhen** (A shares): 0.01.
//! - **US** (Reg NMS rule 612): 0.01 at or above $1.00, 0.0001 below.
//! - **Tokyo** (TSE's general table, non-TOPIX 100 issues): ¥1 up to 3,000, 5 to 5,000, 10 to
//!   30,000, 50 to 50,000, 100 to 300,000, 500 to 500,000, 1,000 to 3 million, ...
//! - **London and Xetra**: 0.01 flat, a simplification (MiFID II ticks depend on each share's
//!   liquidity band, which finql does not know); finql lists no shares there today.
//! - Crypto and FX have no exchange ladder: each pair has its own fixed tick.
//!
//! A price exactly on a band's upper bound belongs to that band ("over 0.25 to 0.50" is 0.005),
//! and every bound (or, for the US, the first price after it) is on both neighbouring grids, so
//! rounding to the ladder is monotonic: rounding commutes with max and min, and bars aggregated from rounded parts stay
//! on the ladder.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::calendar::Region;

/// Ladders count in ten-thousandths of the currency: the finest tick of any equity market here
/// (US shares under a dollar).
pub const UNIT_SCALE: u32 = 4;

/// One band of a ladder, in units of `10^-UNIT_SCALE`: prices up to `up_to` (inclusive, above
/// the band before) move in steps of `tick`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    pub up_to: i64,
    pub tick: i64,
}

const fn band(up_to: i64, tick: i64) -> Band {
    Band { up_to, tick }
}

/// No upper bound: the last band of a ladder.
const TOP: i64 = i64::MAX;

/// HKEX's spread table before 2025-08-04.
const HK_ORIGINAL: &[Band] = &[
    band(2_500, 10),
    band(5_000, 50),
    band(100_000, 100),
    band(200_000, 200),
    band(1_000_000, 500),
    band(2_000_000, 1_000),
    band(5_000_000, 2_000),
    band(10_000_000, 5_000),
    band(20_000_000, 10_000),
    band(50_000_000, 20_000),
    band(TOP, 50_000),
];

/// HKEX's spread table from phase 1 of the reduction of minimum spreads (10 to 50 narrower).
const HK_PHASE_1: &[Band] = &[
    band(2_500, 10),
    band(5_000, 50),
    band(200_000, 100),
    band(500_000, 200),
    band(1_000_000, 500),
    band(2_000_000, 1_000),
    band(5_000_000, 2_000),
    band(10_000_000, 5_000),
    band(20_000_000, 10_000),
    band(50_000_000, 20_000),
    band(TOP, 50_000),
];

/// The day HKEX's phase 1 spread table took effect (a Monday).
const HK_PHASE_1_FROM: (i32, u32, u32) = (2025, 8, 4);

/// Reg NMS rule 612: sub-penny quotes only below a dollar ($0.9999 is the last sub-penny price).
const US: &[Band] = &[band(9_999, 1), band(TOP, 100)];

/// One cent everywhere (A shares; London and Xetra as a simplification).
const CENT: &[Band] = &[band(TOP, 100)];

/// TSE's general table, in yen × 10^4.
const JP: &[Band] = &[
    band(30_000_000, 10_000),
    band(50_000_000, 50_000),
    band(300_000_000, 100_000),
    band(500_000_000, 500_000),
    band(3_000_000_000, 1_000_000),
    band(5_000_000_000, 5_000_000),
    band(30_000_000_000, 10_000_000),
    band(50_000_000_000, 50_000_000),
    band(TOP, 100_000_000),
];

/// The ladder shares of `region` trade on at `date`; `None` for markets without one (crypto,
/// FX).
pub fn ladder(region: Region, date: NaiveDate) -> Option<&'static [Band]> {
    match region {
        Region::Us => Some(US),
        Region::Hk => {
            let (y, m, d) = HK_PHASE_1_FROM;
            let phase_1 = NaiveDate::from_ymd_opt(y, m, d).is_some_and(|from| date >= from);
            Some(if phase_1 { HK_PHASE_1 } else { HK_ORIGINAL })
        }
        Region::Cn | Region::Gb | Region::De => Some(CENT),
        Region::Jp => Some(JP),
        Region::Global | Region::Fx => None,
    }
}

/// The band of `ladder` a price of `units` (in `10^-UNIT_SCALE`) falls in.
pub fn band_of(ladder: &[Band], units: i64) -> Band {
    ladder.iter().copied().find(|b| units <= b.up_to).unwrap_or(band(TOP, 1))
}

/// The tick of a share of `region` priced `price` on `date`; `None` where the market has no
/// ladder.
pub fn tick_size(region: Region, date: NaiveDate, price: Decimal) -> Option<Decimal> {
    let ladder = ladder(region, date)?;
    let units = (price * Decimal::from(10_i64.pow(UNIT_SCALE))).ceil();
    let units = i64::try_from(units).ok()?;
    Some(Decimal::new(band_of(ladder, units).tick, UNIT_SCALE).normalize())
}

/// Whether `price` is a whole number of ticks of its band (always true where there is no
/// ladder).
pub fn is_on_tick(region: Region, date: NaiveDate, price: Decimal) -> bool {
    match tick_size(region, date, price) {
        Some(tick) => (price % tick).is_zero(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(region: Region, date: &str, price: &str) -> String {
        let date: NaiveDate = date.parse().unwrap();
        tick_size(region, date, price.parse().unwrap()).unwrap().to_string()
    }

    #[test]
    fn hkex_spread_table_before_and_after_phase_1() {
        let before = "2025-08-01";
        for (price, expected) in [
            ("0.25", "0.001"),
            ("0.251", "0.005"),
            ("0.50", "0.005"),
            ("9.99", "0.01"),
            ("10.00", "0.01"),
            ("10.02", "0.02"),
            ("20.05", "0.05"),
            ("155.1", "0.1"),
            ("420.2", "0.2"),
            ("500.5", "0.5"),
            ("1500", "1"),
            ("2002", "2"),
            ("9995", "5"),
        ] {
            assert_eq!(tick(Region::Hk, before, price), expected, "{price}");
        }
        let after = "2025-08-04";
        assert_eq!(tick(Region::Hk, after, "15.01"), "0.01");
        assert_eq!(tick(Region::Hk, after, "35.02"), "0.02");
        assert_eq!(tick(Region::Hk, after, "75.05"), "0.05");
        assert_eq!(tick(Region::Hk, after, "155.1"), "0.1");
    }

    #[test]
    fn us_and_mainland() {
        assert_eq!(tick(Region::Us, "2020-01-02", "0.9999"), "0.0001");
        assert_eq!(tick(Region::Us, "2020-01-02", "1.00"), "0.01");
        assert_eq!(tick(Region::Us, "2020-01-02", "1.01"), "0.01");
        assert_eq!(tick(Region::Cn, "2020-01-02", "1500.01"), "0.01");
        assert!(tick_size(Region::Global, NaiveDate::MIN, Decimal::ONE).is_none());
    }

    #[test]
    fn every_bound_is_on_both_neighbouring_grids() {
        for ladder in [HK_ORIGINAL, HK_PHASE_1, US, CENT, JP] {
            for pair in ladder.windows(2) {
                assert_eq!(pair[0].up_to % pair[0].tick, 0, "{pair:?}");
                // The bound, or the next price after it, is on the upper grid too.
                let next = pair[0].up_to + pair[0].tick;
                assert!(pair[0].up_to % pair[1].tick == 0 || next % pair[1].tick == 0, "{pair:?}");
            }
        }
        assert!(is_on_tick(Region::Hk, NaiveDate::MIN, "500.5".parse().unwrap()));
        assert!(!is_on_tick(Region::Hk, NaiveDate::MIN, "500.2".parse().unwrap()));
    }
}
