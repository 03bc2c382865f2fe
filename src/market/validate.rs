//! What makes a quote, a bar, an order book or a trade make sense: the one definition, used
//! wherever market data enters finql. `MarketService` holds every value a source answers to
//! these rules before serving or caching it; providers call them on what they parse (the iTick
//! REST adapter drops bad items before counting bars, its WebSocket stream before pushing), so
//! a quote pushed live is held to exactly the rules of a quote fetched by a query.
//!
//! The rules are about values only; reading a provider's wire format (missing fields, text where
//! a number belongs) is the provider's. Each check takes `now`, so it is pure and testable, and
//! answers `Err(reason)`: the caller drops the item, counts it, and logs the reason.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::types::{BookLevel, Kline, OrderBook, Quote, Tick};

/// How far ahead of our clock a source's timestamp may be before the value is refused: clocks of
/// servers synchronised by NTP agree within milliseconds, so 5 s leaves room for a sloppy one
/// while still catching a timestamp in the wrong unit or zone.
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// A time the source cannot have seen yet (beyond [`MAX_CLOCK_SKEW`]) is refused.
pub fn not_in_future(what: &str, time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if time > now + MAX_CLOCK_SKEW {
        return Err(format!("{what} {} is in the future", time.to_rfc3339()));
    }
    Ok(())
}

/// Last price positive; open, high, low and previous close not negative (before a session's
/// first trade open/high/low are 0), high not below low, open inside `[low, high]` when all
/// three are known (non-zero); volume and turnover not negative; not in the future.
pub fn quote(quote: &Quote, now: DateTime<Utc>) -> Result<(), String> {
    let zero = Decimal::ZERO;
    if quote.last <= zero {
        return Err(format!("last price {} is not positive", quote.last));
    }
    for (name, value) in
        [("open", quote.open), ("high", quote.high), ("low", quote.low), ("previous close", quote.prev_close)]
    {
        if value < zero {
            return Err(format!("{name} {value} is negative"));
        }
    }
    if quote.high < quote.low {
        return Err(format!("high {} is below low {}", quote.high, quote.low));
    }
    if quote.low > zero && quote.open > zero && (quote.open > quote.high || quote.open < quote.low) {
        return Err(format!("open {} is outside [{}, {}]", quote.open, quote.low, quote.high));
    }
    if quote.volume.is_some_and(|v| v < zero) || quote.turnover.is_some_and(|t| t < zero) {
        return Err("negative volume or turnover".into());
    }
    not_in_future("timestamp", quote.timestamp, now)
}

/// Prices positive, `low <= open, close <= high`, volume and turnover not negative, the bar's
/// start not in the future.
pub fn kline(bar: &Kline, now: DateTime<Utc>) -> Result<(), String> {
    let zero = Decimal::ZERO;
    let at = bar.time.to_rfc3339();
    if bar.open <= zero || bar.high <= zero || bar.low <= zero || bar.close <= zero {
        return Err(format!("non-positive price in bar at {at}"));
    }
    if bar.high < bar.low {
        return Err(format!("high {} below low {} at {at}", bar.high, bar.low));
    }
    if bar.high < bar.open.max(bar.close) || bar.low > bar.open.min(bar.close) {
        return Err(format!("open {} / close {} outside [{}, {}] at {at}", bar.open, bar.close, bar.low, bar.high));
    }
    if bar.volume.is_some_and(|v| v < zero) || bar.turnover.is_some_and(|t| t < zero) {
        return Err(format!("negative volume or turnover at {at}"));
    }
    not_in_future("bar start", bar.time, now)
}

/// One price level: price positive, size not negative.
pub fn book_level(level: &BookLevel) -> Result<(), String> {
    if level.price <= Decimal::ZERO {
        return Err(format!("level price {} is not positive", level.price));
    }
    if level.volume < Decimal::ZERO {
        return Err(format!("level volume {} is negative", level.volume));
    }
    Ok(())
}

/// Every level valid ([`book_level`]), bids best (highest) first, asks best (lowest) first, not
/// in the future.
pub fn order_book(book: &OrderBook, now: DateTime<Utc>) -> Result<(), String> {
    for level in book.bids.iter().chain(&book.asks) {
        book_level(level)?;
    }
    if !book.bids.windows(2).all(|w| w[0].price >= w[1].price) {
        return Err("bids are not best (highest) first".into());
    }
    if !book.asks.windows(2).all(|w| w[0].price <= w[1].price) {
        return Err("asks are not best (lowest) first".into());
    }
    not_in_future("book time", book.timestamp, now)
}

/// Trade price positive, size not negative, not in the future.
pub fn tick(tick: &Tick, now: DateTime<Utc>) -> Result<(), String> {
    if tick.price <= Decimal::ZERO {
        return Err(format!("trade price {} is not positive", tick.price));
    }
    if tick.volume < Decimal::ZERO {
        return Err(format!("trade volume {} is negative", tick.volume));
    }
    not_in_future("trade time", tick.timestamp, now)
}

#[cfg(test)]
mod tests;
