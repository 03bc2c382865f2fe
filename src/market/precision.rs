//! Stated precision of the figures finql derives: one rounding rule and a fixed scale per
//! field, so a client can format and compare them without guessing.
//!
//! Every derived figure is computed exactly (`Decimal` arithmetic, no floats), rounded **once**,
//! **half away from zero** (`2.345` → `2.35`, `-2.345` → `-2.35`), the rule the ledger uses for
//! money and the one a trader expects on a screen, and then always rendered at its scale
//! (`93` is served as `93.00`, `0` as `0.00`):
//!
//! | field                                   | decimals            |
//! |-----------------------------------------|---------------------|
//! | `Quote.changePercent`                   | [`PERCENT_DP`](crate::market::precision::PERCENT_DP) (4)  |
//! | `FundamentalPoint.pe`, `pb`             | [`RATIO_DP`](crate::market::precision::RATIO_DP) (2)    |
//! | `FundamentalPoint.dividendYield` (%)    | [`YIELD_DP`](crate::market::precision::YIELD_DP) (2)    |
//! | `FundamentalPoint.marketCap`            | [`MARKET_CAP_DP`](crate::market::precision::MARKET_CAP_DP) (0) |
//! | adjusted kline prices (`FORWARD`/`BACKWARD`) | [`ADJUSTED_PRICE_DP`](crate::market::precision::ADJUSTED_PRICE_DP) (4) |
//!
//! Figures a source reports rather than finql computes (P/B and market cap: the source knows
//! book value and share count, finql does not) are restated at the same scale by the same rule.

use rust_decimal::{Decimal, RoundingStrategy};

/// The one rounding rule of derived figures: half away from zero.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// `changePercent`: hundredths of a basis point, enough to tell a one-tick move of a $5,000
/// share (0.01 / 5,000 = 0.0002 %) from none.
pub const PERCENT_DP: u32 = 4;
/// P/E and P/B: what every terminal and filing shows.
pub const RATIO_DP: u32 = 2;
/// Dividend yield in percent: basis points.
pub const YIELD_DP: u32 = 2;
/// Market capitalisation: whole units of the currency (it is a product of a price and a count
/// of hundreds of millions of shares; cents would be noise).
pub const MARKET_CAP_DP: u32 = 0;
/// Adjusted open/high/low/close. Restated prices are not traded prices and do not sit on any
/// tick grid; four decimals is the finest tick of any equity market finql lists (US shares below
/// $1 trade in 0.0001; HK's finest is 0.001, CN's 0.01), so a restated price never loses a tick
/// of the price it restates, and every bar of an adjusted series has the same scale.
pub const ADJUSTED_PRICE_DP: u32 = 4;

/// `value` rounded half away from zero to `dp` decimals and rendered with exactly `dp`
/// decimals (trailing zeros kept).
pub fn fixed(value: Decimal, dp: u32) -> Decimal {
    let mut out = value.round_dp_with_strategy(dp, ROUNDING);
    out.rescale(dp);
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn half_away_from_zero_at_a_fixed_scale() {
        assert_eq!(fixed(d("2.345"), 2).to_string(), "2.35", "half up, not to even (2.34)");
        assert_eq!(fixed(d("2.335"), 2).to_string(), "2.34");
        assert_eq!(fixed(d("-2.345"), 2).to_string(), "-2.35", "away from zero when negative");
        assert_eq!(fixed(d("93"), 2).to_string(), "93.00", "trailing zeros rendered");
        assert_eq!(fixed(Decimal::ZERO, 2).to_string(), "0.00");
        assert_eq!(fixed(d("12345.5"), 0).to_string(), "12346");
        assert_eq!(fixed(d("12344.5"), 0).to_string(), "12345", "not to even (12344)");
        assert_eq!(fixed(d("1.23456789"), 4).to_string(), "1.2346");
    }
}
