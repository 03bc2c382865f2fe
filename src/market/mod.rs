//! Market data: quotes, klines (candles), order books and ticks, from pluggable sources.
//!
//! Data flows one way: resolver -> `MarketService` (cache, single flight, batching, stale
//! fallback) -> `MarketSource` (the simulated market, or iTick over REST). Sources speak in the
//! domain types of `types`; every value they return passes `validate` before it is served.

/// Quote, Kline, OrderBook, Tick, Interval: the vocabulary every source speaks.
pub mod types;
/// The `MarketSource` trait and its error type.
pub mod source;
/// The built-in simulated market: deterministic history, live-moving quotes, no network.
pub mod simulated;
/// The iTick REST adapter.
pub mod itick;

pub use source::{MarketSource, SourceError};
pub use types::*;
