//! Amounts of money.
//!
//! `Money::new` accepts an amount only if it is positive and has no more fraction digits than its
//! currency allows (`12.345` USD is refused rather than silently rounded). Amounts are held as
//! integers scaled by 10^4, the storage form (see `entity::transaction`).

use rust_decimal::Decimal;

use crate::error::{AppError, AppResult};
/// ISO 4217 currencies are reference data, shared with the instrument catalog.
pub use crate::reference::Currency;

/// A positive amount of one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    scaled: i64,
    currency: Currency,
}

/// Storage scale: 10^4, enough for every ISO 4217 currency.
pub const SCALE: u32 = 4;
/// 10^[`SCALE`]: a stored amount divided by it is whole units, its remainder the fraction.
pub const SCALE_FACTOR: i64 = 10_i64.pow(SCALE);
/// The largest amount of one transaction: a trillion units (10^16 scaled, well inside i64).
/// Sums are computed in parts and widened to i128 (see `analytics`).
const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// `MAX_AMOUNT` in storage form: the largest `amount_scaled` a row can hold.
pub const MAX_SCALED: i64 = MAX_AMOUNT * 10_i64.pow(SCALE);

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> AppResult<Self> {
        if amount <= Decimal::ZERO {
            return Err(AppError::bad_field("amount", "amount must be greater than zero"));
        }
        let normalized = amount.normalize();
        if normalized.scale() > currency.minor_units() {
            return Err(AppError::bad_field(
                "amount",
                format!(
                    "{currency} amounts have at most {} decimal places; `{amount}` has {}",
                    currency.minor_units(),
                    normalized.scale()
                ),
            ));
        }
        if normalized > Decimal::from(MAX_AMOUNT) {
            return Err(AppError::bad_field("amount", format!("amount must be at most {MAX_AMOUNT}")));
        }
        Ok(Self { scaled: to_scaled(normalized), currency })
    }

    /// Rebuilds a stored amount.
    pub fn from_scaled(scaled: i64, currency: Currency) -> Self {
        Self { scaled, currency }
    }

    pub fn scaled(&self) -> i64 {
        self.scaled
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount with exactly the currency's digits: `42.00` USD, `500` JPY.
    pub fn amount(&self) -> Decimal {
        format_scaled(i128::from(self.scaled), self.currency)
    }
}

/// A (possibly large or negative) scaled sum, shown with the currency's digits. Averages may
/// need rounding: half away from zero, as people expect of money.
pub fn format_scaled(scaled: i128, currency: Currency) -> Decimal {
    // i128 sums of at most nine million 10^16 amounts fit Decimal's 96-bit mantissa.
    let value = Decimal::from_i128_with_scale(scaled, SCALE);
    format_decimal(value, currency)
}

pub fn format_decimal(value: Decimal, currency: Currency) -> Decimal {
    let mut value =
        value.round_dp_with_strategy(currency.minor_units(), rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    value.rescale(currency.minor_units());
    value
}

/// A decimal that fits the storage scale, as a scaled integer. Bounds (`minAmount`) with more
/// digits than the scale are rounded toward the inside of the range by the caller.
pub fn to_scaled(value: Decimal) -> i64 {
    let mut scaled = value * Decimal::from(10_i64.pow(SCALE));
    scaled.rescale(0);
    i64::try_from(scaled).unwrap_or(if value.is_sign_negative() { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn minor_units_are_enforced_and_shown() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(Money::new(d("42"), usd).unwrap().amount().to_string(), "42.00");
        assert_eq!(Money::new(d("2500.89"), usd).unwrap().amount().to_string(), "2500.89");
        assert_eq!(Money::new(d("12.340"), usd).unwrap().amount().to_string(), "12.34");
        assert!(Money::new(d("12.345"), usd).is_err());
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::new(d("1.5"), jpy).is_err());
        assert_eq!(Money::new(d("500"), jpy).unwrap().amount().to_string(), "500");
        let bhd = Currency::parse("BHD").unwrap();
        assert_eq!(Money::new(d("1.234"), bhd).unwrap().amount().to_string(), "1.234");
        assert!(Money::new(d("0"), usd).is_err());
        assert!(Money::new(d("-1"), usd).is_err());
        assert!(Money::new(d("1000000000001"), usd).is_err());
        assert!(Currency::parse("XAU").is_err());
        assert!(Currency::parse("DOLLARS").is_err());
    }

    #[test]
    fn averages_round_half_away_from_zero() {
        let usd = Currency::USD;
        assert_eq!(format_decimal(d("10.005"), usd).to_string(), "10.01");
        assert_eq!(format_decimal(d("-10.005"), usd).to_string(), "-10.01");
        assert_eq!(format_scaled(-1_234_500, usd).to_string(), "-123.45");
    }
}
