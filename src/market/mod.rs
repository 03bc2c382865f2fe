//! Market data: quotes, klines (candles), order books and ticks, from pluggable sources.
//!
//! Data flows one way: resolver -> `MarketService` (cache, single flight, batching, stale
//! fallback) -> `MarketSource` (a provider of `sources`: the simulated market, or iTick
//! over REST). Sources speak in the domain types of `types`; every value they return passes
//! `validate` before it is served. This module defines the seam and never names a provider.

/// Trading sessions of each market, in its own time zone.
pub mod calendar;
/// Splits, dividends, fundamentals, and klines adjusted for them (`adjust: FORWARD | BACKWARD`).
pub mod corporate;
/// T+0 validation: fetched quotes and closed bars checked, at a sampled rate and off the
/// request's path, against another source; divergent values served as `SUSPECT`.
pub mod crosscheck;
/// `MarketService::quote_as_of`: a delayed market's quote, rebuilt from closed bars.
pub mod delayed;
/// What a caller's plan lets it see: one check for queries and subscriptions.
pub mod entitlements;
/// `FundamentalsService`: corporate actions and fundamentals, cached for a day, and adjusted klines.
pub mod fundamentals;
/// The market API, one file per action: quotes, klines, order books, ticks, securities (the
/// catalog with its market data), fundamentals, market status; and the request's DataLoaders.
pub mod graphql;
/// The upstream time budget of a request, and a circuit breaker per source.
pub mod health;
/// Closed klines kept in the database, so history is fetched upstream once.
pub mod history;
/// Limits of one request (symbols, bars, book depth, trades), shared by queries and subscriptions.
pub mod limits;
/// A field's `source` argument: one named source's answer, past routes and caches.
pub mod pinned;
/// The stated precision of derived figures: one rounding rule (half away from zero) and a
/// fixed scale per field.
pub mod precision;
/// Caching, single flight, batching, validation and stale fallback in front of the source.
pub mod service;
/// The second-level quote cache shared by replicas through Redis.
pub mod shared_cache;
/// The `MarketSource` trait and its error type.
pub mod source;
/// The tick ladder of each equity market (HKEX spread table, US sub-penny rule, ...).
pub mod tick_size;
/// Quote, Kline, OrderBook, Tick, Interval: the vocabulary every source speaks.
pub mod types;
/// What makes a quote, bar, order book or trade make sense; one clock-skew allowance. Used by the
/// service and by every provider, for queries and live pushes alike.
pub mod validate;
/// `MarketService::klines_window`: the `before`/`after` window of a klines request.
pub mod window;

pub use fundamentals::FundamentalsService;
pub use service::{MarketConfig, MarketService};

pub use source::{MarketSource, SourceError};
pub use types::*;
