//! Market-data providers: one module per provider, owning both of its sides.
//!
//! A provider answers queries through `market::MarketSource` (request and answer: REST for
//! iTick) and pushes live data through `live::MarketStream` (the iTick WebSocket, the simulated
//! market's steps). Keeping both sides in one module keeps what they share in one place: the
//! provider's symbols and region codes, and how its wire format becomes domain types. Whether a
//! domain value makes sense is not the provider's to say: `market::validate` decides, for the
//! REST path (`MarketService`) and the live path (each stream, before it pushes) alike.
//!
//! The dependency runs one way: `sources` implements the traits of `market` and `live`, and
//! whoever builds the app calls [`build_source`](crate::sources::build_source) and
//! [`build_stream`](crate::sources::build_stream); `market` and `live` never name a provider.

/// iTick: REST (`ItickSource`) and WebSocket (`ItickStream`).
pub mod itick;
/// The one retry policy (exponential backoff with equal jitter) of every provider.
pub mod retry;
/// The built-in simulated market: deterministic history, live-moving quotes, no network.
pub mod simulated;

use std::sync::Arc;

use crate::{
    config::{MarketSettings, MarketSourceKind},
    live::MarketStream,
    market::{MarketSource, health, source::FallbackSource},
    resilience::breaker::BreakerConfig,
};

/// The sources `FINQL_MARKET_SOURCE` names, configured, in fallback order, each behind its
/// circuit breaker (`market::health`); and those breakers.
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
        _ => Ok((Arc::new(FallbackSource::new(sources)), health)),
    }
}

/// The live stream of the first source `FINQL_MARKET_SOURCE` names.
pub fn build_stream(settings: &MarketSettings) -> anyhow::Result<Arc<dyn MarketStream>> {
    match settings.sources.first() {
        Some(MarketSourceKind::Simulated) => Ok(Arc::new(simulated::SimulatedStream::new(settings.sim_ticks_per_sec))),
        Some(MarketSourceKind::Itick) => Ok(Arc::new(itick::ItickStream::from_settings(&settings.itick)?)),
        None => anyhow::bail!("FINQL_MARKET_SOURCE names no source"),
    }
}
