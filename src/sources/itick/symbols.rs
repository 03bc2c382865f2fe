//! How iTick names instruments, on REST and WebSocket alike: the path of an asset class, the
//! `CODE$REGION` symbol, and the normalised code answers are matched on.

use crate::{market::Instrument, reference::service::AssetClass};

/// The URL prefix of an asset class.
pub fn asset_prefix(class: AssetClass) -> &'static str {
    match class {
        AssetClass::Stock => "stock",
        AssetClass::Fund => "fund",
        AssetClass::Forex => "forex",
        AssetClass::Index => "indices",
        AssetClass::Crypto => "crypto",
        AssetClass::Future => "future",
    }
}

/// The WebSocket path of an asset class (`{ws_url}/{endpoint}`), or `None` when iTick streams
/// none for it.
///
/// Funds go to `stock`: the funds finql lists are exchange-traded (iTick's fund data is US
/// only), quoted on the stock feed, and the socket has no `/fund` path. Futures have REST
/// endpoints but no documented socket: they are refused rather than guessed.
pub fn endpoint(class: AssetClass) -> Option<&'static str> {
    match class {
        AssetClass::Stock | AssetClass::Fund => Some("stock"),
        AssetClass::Forex => Some("forex"),
        AssetClass::Index => Some("indices"),
        AssetClass::Crypto => Some("crypto"),
        AssetClass::Future => None,
    }
}

/// `CODE$REGION`, as `params` lists symbols.
pub fn upstream_symbol(instrument: &Instrument) -> String {
    format!("{}${}", instrument.code.trim(), instrument.region.trim().to_ascii_uppercase())
}

/// The key a push is matched on: normalised code (see [`normalize_code`]) and upper-case region.
pub fn push_key(code: &str, region: &str) -> (String, String) {
    (normalize_code(code), region.trim().to_ascii_uppercase())
}

/// Upper case, without a `$REGION` suffix, and for all-digit codes without leading zeros (iTick
/// and exchanges disagree on `700` vs `00700`).
pub fn normalize_code(code: &str) -> String {
    let code = code.split('$').next().unwrap_or(code).trim().to_ascii_uppercase();
    if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = code.trim_start_matches('0');
        return if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() };
    }
    code
}
