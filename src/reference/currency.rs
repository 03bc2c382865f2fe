//! ISO 4217 currencies: parsed once (`Currency::parse`), then carried as a value that is
//! always a known code with its minor-unit digits. Used by the catalog (a security's trading
//! currency) and the ledger (the currency of an amount).

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

impl Currency {
    pub const USD: Currency = Currency { code: "USD", minor_units: 2 };

    /// Parses an ISO 4217 alphabetic code, case-insensitively (`usd` -> `USD`).
    pub fn parse(raw: &str) -> AppResult<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let code = CODES.iter().find(|c| **c == upper).ok_or_else(|| {
            AppError::bad_field("currency", format!("`{}` is not an ISO 4217 currency code", raw.trim()))
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
}
