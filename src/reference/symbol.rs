//! Instrument symbols, parsed once.
//!
//! One text form per instrument, unambiguous across asset classes:
//!
//! | asset class | form | examples | upstream (iTick) |
//! |---|---|---|---|
//! | stocks, funds | `CODE.REGION` | `AAPL.US`, `700.HK`, `600519.SH`, `000001.SZ` | `stock`/`fund`, region, code |
//! | forex | `FX:PAIR` | `FX:EURUSD` | `forex`, region `GB`, code `EURUSD` |
//! | indices | `IDX:CODE` | `IDX:SPX`, `IDX:HSI` | `indices`, region per catalog |
//! | crypto | `CRYPTO:PAIR` | `CRYPTO:BTCUSDT` | `crypto`, region `BA` |
//! | futures | `FUT:ROOT.REGION` | `FUT:CL.US`, `FUT:HSI.HK` | `future`, region, code |
//!
//! The prefixes keep namespaces apart: the stock `CL.US` and the crude-oil future `FUT:CL.US`
//! cannot be confused. Parsing is case-insensitive and canonicalises (upper case; Hong Kong
//! codes without leading zeros, as exchanges quote them: `0700.HK` is `700.HK`). The mapping
//! to upstream regions and codes lives in the catalog, per instrument.

use std::fmt;

use super::echoed;
use crate::error::{AppError, AppResult};

/// Regions of equity listings finql knows.
const EQUITY_REGIONS: &[&str] = &["US", "HK", "SH", "SZ"];
/// Regions of futures exchanges finql knows.
const FUTURE_REGIONS: &[&str] = &["US", "HK", "CN"];

/// Which namespace a symbol belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// Stocks and funds.
    Equity,
    Forex,
    Index,
    Crypto,
    Future,
}

/// A syntactically valid, canonical symbol. Whether it exists is the catalog's business.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let text = raw.trim().to_ascii_uppercase();
        let invalid = |why: &str| {
            AppError::bad_field(
                "symbol",
                format!(
                    "`{}` is not a valid symbol: {why} (expected e.g. AAPL.US, 700.HK, 600519.SH, FX:EURUSD, \
                     IDX:SPX, CRYPTO:BTCUSDT, FUT:CL.US)",
                    echoed(raw)
                ),
            )
        };
        let alnum =
            |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric());
        let canonical = match text.split_once(':') {
            Some(("FX", pair)) => {
                if pair.len() != 6 || !pair.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(invalid("a forex pair is six letters, e.g. EURUSD"));
                }
                format!("FX:{pair}")
            }
            Some(("IDX", code)) => {
                if !alnum(code, 12) {
                    return Err(invalid("an index code is 1 to 12 letters or digits"));
                }
                format!("IDX:{code}")
            }
            Some(("CRYPTO", pair)) => {
                if !alnum(pair, 20) || pair.len() < 4 {
                    return Err(invalid("a crypto pair is 4 to 20 letters or digits, e.g. BTCUSDT"));
                }
                format!("CRYPTO:{pair}")
            }
            Some(("FUT", rest)) => {
                let (root, region) = rest.split_once('.').ok_or_else(|| invalid("a future is ROOT.REGION"))?;
                if !alnum(root, 8) || !FUTURE_REGIONS.contains(&region) {
                    return Err(invalid("a future is ROOT.REGION with region US, HK or CN"));
                }
                format!("FUT:{root}.{region}")
            }
            Some((prefix, _)) => return Err(invalid(&format!("unknown prefix `{}:`", echoed(prefix)))),
            None => {
                let (code, region) = text.rsplit_once('.').ok_or_else(|| invalid("a stock is CODE.REGION"))?;
                if !EQUITY_REGIONS.contains(&region) {
                    return Err(invalid("the region must be US, HK, SH or SZ"));
                }
                let valid_code = !code.is_empty()
                    && code.len() <= 12
                    && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && code.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
                if !valid_code {
                    return Err(invalid("the code is letters, digits and dashes"));
                }
                let code = match region {
                    "HK" => {
                        if !code.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(invalid("Hong Kong codes are digits"));
                        }
                        let trimmed = code.trim_start_matches('0');
                        if trimmed.is_empty() { "0" } else { trimmed }.to_owned()
                    }
                    "SH" | "SZ" => {
                        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(invalid("Shanghai and Shenzhen codes are six digits"));
                        }
                        code.to_owned()
                    }
                    _ => code.to_owned(),
                };
                format!("{code}.{region}")
            }
        };
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn namespace(&self) -> Namespace {
        match self.0.split_once(':').map(|(prefix, _)| prefix) {
            Some("FX") => Namespace::Forex,
            Some("IDX") => Namespace::Index,
            Some("CRYPTO") => Namespace::Crypto,
            Some("FUT") => Namespace::Future,
            _ => Namespace::Equity,
        }
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> String {
        Symbol::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}")).to_string()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical(" aapl.us "), "AAPL.US");
        assert_eq!(canonical("0700.hk"), "700.HK");
        assert_eq!(canonical("600519.SH"), "600519.SH");
        assert_eq!(canonical("000001.sz"), "000001.SZ");
        assert_eq!(canonical("BRK-B.US"), "BRK-B.US");
        assert_eq!(canonical("fx:eurusd"), "FX:EURUSD");
        assert_eq!(canonical("idx:spx"), "IDX:SPX");
        assert_eq!(canonical("crypto:btcusdt"), "CRYPTO:BTCUSDT");
        assert_eq!(canonical("fut:cl.us"), "FUT:CL.US");
    }

    #[test]
    fn namespaces_do_not_collide() {
        let stock = Symbol::parse("CL.US").unwrap();
        let future = Symbol::parse("FUT:CL.US").unwrap();
        assert_ne!(stock, future);
        assert_eq!(stock.namespace(), Namespace::Equity);
        assert_eq!(future.namespace(), Namespace::Future);
        assert_eq!(Symbol::parse("FX:USDJPY").unwrap().namespace(), Namespace::Forex);
    }

    #[test]
    fn rejects_malformed_symbols_naming_them() {
        for bad in [
            "",
            "AAPL",
            "AAPL.XX",
            ".US",
            "AB.CD.US",
            "70A.HK",
            "60051.SH",
            "FX:EUR",
            "FX:EURUSD1",
            "FUT:CL",
            "FUT:CL.ZZ",
            "XX:AAPL",
            "AA PL.US",
            "-A.US",
        ] {
            let err = Symbol::parse(bad).expect_err(bad);
            let AppError::BadUserInput { message, .. } = err else { panic!("{bad}: not BAD_USER_INPUT") };
            assert!(message.contains(&format!("`{}`", bad.trim())), "{message}");
        }
    }

    #[test]
    fn a_long_bad_symbol_is_not_echoed_in_full() {
        for long in ["A".repeat(300) + ".US", "X".repeat(300) + ":AAPL", "FX:".to_owned() + &"E".repeat(300)] {
            let AppError::BadUserInput { message, .. } = Symbol::parse(&long).expect_err("too long") else {
                panic!("not BAD_USER_INPUT")
            };
            assert!(message.len() < 300, "{} bytes: {message}", message.len());
            assert!(message.contains(&format!("`{}…`", &long[..crate::reference::MAX_ECHO_CHARS])), "{message}");
        }
    }
}
