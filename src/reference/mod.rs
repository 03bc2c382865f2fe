//! Reference data: the instruments finql knows (the catalog), their symbols, and currencies.
//!
//! Plain Rust, no GraphQL: the `Security` type and the `security`/`securities` queries live in
//! the market API (`market::graphql::securities`), which composes the catalog with market data.
//! So the dependency runs one way: `market` uses `reference`, never the reverse.

/// `Currency::parse`: ISO 4217 codes and their minor-unit digits.
pub mod currency;
/// Catalog look-ups and search; knows nothing of GraphQL.
pub mod service;
/// `Symbol::parse`: one unambiguous text form per instrument.
pub mod symbol;

pub use currency::Currency;
pub use service::ReferenceService;
pub use symbol::Symbol;

/// The most characters of a client's input an error message echoes: more than the longest valid
/// symbol (`CRYPTO:` and a 20-character pair, 27), so any plausible typo is shown whole, while a
/// 300-character (or megabyte) string cannot bloat the response or the logs.
pub const MAX_ECHO_CHARS: usize = 32;

/// `raw` as an error message shows it: trimmed, cut at [`MAX_ECHO_CHARS`] characters with an
/// ellipsis when longer, and with control characters replaced (an echo must not break a log
/// line).
pub fn echoed(raw: &str) -> String {
    let raw = raw.trim();
    let mut shown: String =
        raw.chars().take(MAX_ECHO_CHARS).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if raw.chars().nth(MAX_ECHO_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_short_and_printable() {
        assert_eq!(echoed(" AAPL.XX "), "AAPL.XX");
        let exact = "A".repeat(MAX_ECHO_CHARS);
        assert_eq!(echoed(&exact), exact, "at the limit: whole, no ellipsis");
        let long = "B".repeat(300);
        assert_eq!(echoed(&long), format!("{}…", "B".repeat(MAX_ECHO_CHARS)));
        // Characters, not bytes: a multi-byte string is cut on a character boundary.
        assert_eq!(echoed(&"é".repeat(40)).chars().count(), MAX_ECHO_CHARS + 1);
        assert_eq!(echoed("a\nb\u{0}c"), "a\u{fffd}b\u{fffd}c");
    }
}
