//! Market data: quotes, klines (candles), order books and ticks, from pluggable sources.
//!
//! Data flows one way: resolver -> `MarketService` (cache, single flight, batching, stale
//! fallback) -> `MarketSource` (the simulated market, or iTick over REST). Sources speak in the
//! domain types of `types`; every value they return passes `validate` before it is served.

/// Trading sessions of each market, in its own time zone.
pub mod calendar;
/// Splits, dividends, fundamentals, and klines adjusted for them (`adjust: FORWARD | BACKWARD`).
pub mod corporate;
/// `FundamentalsService`: corporate actions and fundamentals, cached for a day, and adjusted klines.
pub mod fundamentals;
/// The market API, one file per action: quotes, klines, order books, ticks, securities (the
/// catalog with its market data), fundamentals, market status; and the request's DataLoaders.
pub mod graphql;
/// The upstream time budget of a request, and a circuit breaker per source.
pub mod health;
/// Closed klines kept in the database, so history is fetched upstream once.
pub mod history;
/// The iTick REST adapter.
pub mod itick;
/// Limits of one request (symbols, bars, book depth, trades), shared by queries and subscriptions.
pub mod limits;
/// Caching, single flight, batching, validation and stale fallback in front of the source.
pub mod service;
/// The second-level quote cache shared by replicas through Redis.
pub mod shared_cache;
/// The built-in simulated market: deterministic history, live-moving quotes, no network.
pub mod simulated;
/// The `MarketSource` trait and its error type.
pub mod source;
/// Quote, Kline, OrderBook, Tick, Interval: the vocabulary every source speaks.
pub mod types;
/// `MarketService::klines_window`: the `before`/`after` window of a klines request.
pub mod window;

pub use fundamentals::FundamentalsService;
pub use service::{MarketConfig, MarketError, MarketService};

use std::sync::Arc;

use crate::{
    config::{MarketSettings, MarketSourceKind},
    resilience::breaker::BreakerConfig,
};

/// The sources `FINQL_MARKET_SOURCE` names, configured, in fallback order, each behind its
/// circuit breaker (`health`); and those breakers.
pub fn build_source(
    settings: &MarketSettings,
    breaker: BreakerConfig,
) -> anyhow::Result<(Arc<dyn MarketSource>, health::SourceHealth)> {
    let mut sources: Vec<Arc<dyn MarketSource>> = Vec::new();
    let mut breakers = Vec::new();
    for kind in &settings.sources {
        let source: Arc<dyn MarketSource> = match kind {
            MarketSourceKind::Simulated => Arc::new(simulated::SimulatedMarket::new()),
            MarketSourceKind::Itick => {
                let itick = &settings.itick;
                let token = itick.token.clone().ok_or_else(|| {
                    anyhow::anyhow!("FINQL_MARKET_SOURCE=itick needs ITICK_TOKEN (the iTick API key)")
                })?;
                Arc::new(itick::ItickSource::new(itick::ItickConfig {
                    base_url: itick.base_url.clone(),
                    token,
                    timeout: itick.timeout,
                    requests_per_minute: itick.requests_per_minute,
                    max_retries: itick.max_retries,
                })?)
            }
        };
        let guarded = health::GuardedSource::new(source, breaker);
        breakers.push(guarded.breaker());
        sources.push(Arc::new(guarded));
    }
    let health = health::SourceHealth::new(breakers);
    match sources.len() {
        0 => anyhow::bail!("FINQL_MARKET_SOURCE names no source"),
        1 => Ok((sources.remove(0), health)),
        _ => Ok((Arc::new(source::FallbackSource::new(sources)), health)),
    }
}
pub use source::{MarketSource, SourceError};
pub use types::*;
