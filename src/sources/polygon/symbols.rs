//! How Polygon names instruments: its REST tickers (`AAPL`, `C:EURUSD`, `X:BTCUSD`, `I:SPX`),
//! case-sensitive, and which market (snapshot family) each belongs to.
//!
//! finql's catalog keeps each instrument's upstream region and code in iTick's terms (region
//! `US`, code `AAPL`; forex `EURUSD`; crypto `BTCUSDT`; indices `SPX`), which are also the
//! codes Polygon builds its tickers from: a prefix makes them Polygon's. Polygon's equities are
//! US listings only; its futures are not offered here. Crypto pairs keep the catalog's quote
//! currency (`X:BTCUSDT`): whether Polygon quotes every USDT pair the catalog lists is
//! unverified (its documented examples are USD pairs, `X:BTCUSD`).

use crate::{
    market::{source::SourceError, types::Instrument},
    reference::service::AssetClass,
};

/// The snapshot family (and path segment) of a ticker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Market {
    Stocks,
    Forex,
    Crypto,
    Indices,
}

/// The REST ticker of `instrument`, and its market; `NotFound` for what Polygon does not cover.
pub fn ticker(instrument: &Instrument) -> Result<(String, Market), SourceError> {
    let code = instrument.code.trim().to_ascii_uppercase();
    let not_covered = |why: &str| SourceError::NotFound(format!("Polygon has no {}: {why}", instrument.symbol));
    if code.is_empty() || code.contains([',', '/', '?', '#', '&', ' ']) {
        return Err(not_covered("its code is not a ticker"));
    }
    match instrument.asset_class {
        AssetClass::Stock | AssetClass::Fund if instrument.region.eq_ignore_ascii_case("US") => {
            Ok((code, Market::Stocks))
        }
        AssetClass::Stock | AssetClass::Fund => Err(not_covered("Polygon lists US equities only")),
        AssetClass::Forex => Ok((format!("C:{code}"), Market::Forex)),
        AssetClass::Crypto => Ok((format!("X:{code}"), Market::Crypto)),
        AssetClass::Index => Ok((format!("I:{}", index_code(&code)), Market::Indices)),
        AssetClass::Future => Err(not_covered("futures are not offered")),
    }
}

/// Polygon's code of an index where it differs from the catalog's (iTick's): the Nasdaq
/// Composite is `I:COMP`.
fn index_code(code: &str) -> &str {
    match code {
        "IXIC" => "COMP",
        other => other,
    }
}

/// A forex pair's two currencies (`C:EURUSD` -> `EUR`, `USD`), for the legacy last-quote path.
pub fn currencies(ticker: &str) -> Option<(&str, &str)> {
    let pair = ticker.strip_prefix("C:")?;
    (pair.len() == 6 && pair.is_ascii()).then(|| pair.split_at(3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::tests::instrument;

    #[test]
    fn tickers_by_asset_class() {
        let t = |s, c, r, code| ticker(&instrument(s, c, r, code));
        assert_eq!(t("AAPL.US", AssetClass::Stock, "US", "aapl").unwrap(), ("AAPL".into(), Market::Stocks));
        assert_eq!(t("FX:EURUSD", AssetClass::Forex, "GB", "EURUSD").unwrap(), ("C:EURUSD".into(), Market::Forex));
        assert_eq!(
            t("CRYPTO:BTCUSD", AssetClass::Crypto, "BA", "BTCUSD").unwrap(),
            ("X:BTCUSD".into(), Market::Crypto)
        );
        assert_eq!(t("IDX:SPX", AssetClass::Index, "US", "SPX").unwrap(), ("I:SPX".into(), Market::Indices));
        assert_eq!(t("IDX:IXIC", AssetClass::Index, "GB", "IXIC").unwrap().0, "I:COMP");
        assert!(matches!(t("700.HK", AssetClass::Stock, "HK", "700"), Err(SourceError::NotFound(_))));
        assert!(matches!(t("FUT:CL.US", AssetClass::Future, "US", "CL"), Err(SourceError::NotFound(_))));
        assert!(matches!(t("AAPL.US", AssetClass::Stock, "US", "A/../B"), Err(SourceError::NotFound(_))));
        assert_eq!(currencies("C:EURUSD"), Some(("EUR", "USD")));
        assert_eq!(currencies("X:BTCUSD"), None);
    }
}
