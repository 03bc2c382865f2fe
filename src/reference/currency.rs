//! Currencies: parsed once, then carried as a value that is always a known code with its
//! minor-unit digits.
//!
//! Two doors, because markets quote in more than ISO 4217 knows:
//! - [`Currency::parse`]: ISO 4217 only. The ledger's door: an amount a person spent or earned
//!   is in legal tender.
//! - [`Currency::parse_quote`]: ISO 4217, or one of the market codes in [`QUOTE_ONLY`](crate::reference::currency::QUOTE_ONLY): `CNH`
//!   (the offshore yuan, which ISO counts as CNY but trades at its own rate) and `USDT`
//!   (Tether, what Binance's `…USDT` pairs are priced in). The catalog's door: the currency a
//!   security's prices are quoted in. A ledger amount in USDT is still refused.

use std::fmt;

use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

/// ISO 4217 currencies whose minor unit is not 2 digits.
const ZERO_DIGITS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
    "XPF",
];
const THREE_DIGITS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const FOUR_DIGITS: &[&str] = &["CLF", "UYW"];

/// Active ISO 4217 codes (list one), less the precious metals, the SDR, fund and testing codes
/// (XAU, XDR, XTS, …), which are not money a person spends.
const CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD",
    "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Quote currencies markets use beside ISO 4217, with their digits: CNH has CNY's 2; USDT's
/// token carries 6 decimals on its main chains (Ethereum, Tron). Kept short on purpose: a code
/// goes here only when an instrument in the catalog is quoted in it.
pub const QUOTE_ONLY: &[(&str, u32)] = &[("CNH", 2), ("USDT", 6)];

impl Currency {
    pub const USD: Currency = Currency { code: "USD", minor_units: 2 };

    /// Parses a currency prices may be quoted in: ISO 4217 (as [`Self::parse`]) or a market
    /// code of [`QUOTE_ONLY`] (`cnh` -> `CNH`, `usdt` -> `USDT`).
    pub fn parse_quote(raw: &str) -> AppResult<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        if let Some((code, minor_units)) = QUOTE_ONLY.iter().find(|(code, _)| *code == upper) {
            return Ok(Self { code, minor_units: *minor_units });
        }
        Self::parse(raw).map_err(|_| {
            AppError::bad_field(
                "currency",
                format!("`{}` is neither an ISO 4217 currency code nor a known quote currency", super::echoed(raw)),
            )
        })
    }

    /// Whether the code is ISO 4217 (false for the market codes of [`QUOTE_ONLY`]).
    pub fn is_iso(&self) -> bool {
        !QUOTE_ONLY.iter().any(|(code, _)| *code == self.code)
    }

    /// Parses an ISO 4217 alphabetic code, case-insensitively (`usd` -> `USD`).
    pub fn parse(raw: &str) -> AppResult<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let code = CODES.iter().find(|c| **c == upper).ok_or_else(|| {
            AppError::bad_field("currency", format!("`{}` is not an ISO 4217 currency code", super::echoed(raw)))
        })?;
        let minor_units = if ZERO_DIGITS.contains(code) {
            0
        } else if THREE_DIGITS.contains(code) {
            3
        } else if FOUR_DIGITS.contains(code) {
            4
        } else {
            2
        };
        Ok(Self { code, minor_units })
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (USD 2, JPY 0, BHD 3).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::Currency;

    #[test]
    fn known_codes_parse_in_any_case_with_their_digits() {
        assert_eq!(Currency::parse(" usd ").unwrap(), Currency::USD);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("bhd").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("HKD").unwrap().to_string(), "HKD");
        assert!(Currency::parse("XAU").is_err());
        assert!(Currency::parse("DOLLARS").is_err());
    }

    #[test]
    fn quote_currencies_add_market_codes_that_the_ledger_refuses() {
        let usdt = Currency::parse_quote("usdt").unwrap();
        assert_eq!((usdt.code(), usdt.minor_units(), usdt.is_iso()), ("USDT", 6, false));
        let cnh = Currency::parse_quote("CNH").unwrap();
        assert_eq!((cnh.code(), cnh.minor_units(), cnh.is_iso()), ("CNH", 2, false));
        assert_eq!(Currency::parse_quote("jpy").unwrap(), Currency::parse("JPY").unwrap());
        assert!(Currency::parse_quote("JPY").unwrap().is_iso());
        // Legal tender only in the ledger.
        assert!(Currency::parse("USDT").is_err());
        assert!(Currency::parse("CNH").is_err());
        assert!(Currency::parse_quote("XAU").is_err());
        assert!(Currency::parse_quote("BTC").is_err());
    }

    #[test]
    fn quote_only_codes_are_not_iso_codes() {
        for (code, _) in super::QUOTE_ONLY {
            assert!(!super::CODES.contains(code), "{code} is ISO 4217: it needs no allow-list entry");
        }
    }
}
