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

/// The REST client every provider shares: quota, retries, trace context.
pub mod http;
/// iTick: REST (`ItickSource`) and WebSocket (`ItickStream`).
pub mod itick;
/// Polygon (Massive): REST (`PolygonSource`).
pub mod polygon;
/// The one retry policy (exponential backoff with equal jitter) of every provider.
pub mod retry;
/// `FINQL_ROUTES` over the built sources: a chain per route.
pub mod routing;
/// The built-in simulated market: deterministic history, live-moving quotes, no network.
pub mod simulated;
/// JSON numbers and epoch times as providers send them, read exactly.
pub mod wire;

use std::{collections::HashMap, sync::Arc};

use crate::{
    config::{MarketSettings, MarketSourceKind},
    live::MarketStream,
    market::{MarketSource, health, source::FallbackSource, types::Kline},
    resilience::breaker::BreakerConfig,
};

/// `bars` of one answer as a source returns them: oldest first, one per start time (the last
/// of duplicates: a corrected bar comes after the one it corrects), the newest `limit`.
pub(crate) fn newest_bars(mut bars: Vec<Kline>, limit: usize) -> Vec<Kline> {
    bars.sort_by_key(|bar| bar.time);
    bars.dedup_by(|later, earlier| {
        let same = later.time == earlier.time;
        if same {
            std::mem::swap(later, earlier);
        }
        same
    });
    if bars.len() > limit {
        bars.drain(..bars.len() - limit);
    }
    bars
}

/// What `build_source` makes.
pub struct Built {
    /// The market source the service asks.
    pub source: Arc<dyn MarketSource>,
    /// The breakers of every source.
    pub health: health::SourceHealth,
    /// Every source by name, behind its breaker: what a field's `source` argument may pin.
    pub by_name: HashMap<&'static str, Arc<dyn MarketSource>>,
    /// Every source in configured order (`FINQL_MARKET_SOURCE`'s, then those only routes
    /// name): what a reconciliation compares, the first as reference.
    pub ordered: Vec<Arc<dyn MarketSource>>,
}

/// The market source: the sources `FINQL_MARKET_SOURCE` names, in fallback order, or with
/// `FINQL_ROUTES` the routing table over every source it names (`routing`); each source built
/// once, behind its circuit breaker (`market::health`); those breakers; and each source by name.
pub fn build_source(settings: &MarketSettings, breaker: BreakerConfig) -> anyhow::Result<Built> {
    anyhow::ensure!(!settings.sources.is_empty(), "FINQL_MARKET_SOURCE names no source");
    let mut kinds = settings.sources.clone();
    for kind in settings.routes.sources() {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let mut built: HashMap<MarketSourceKind, Arc<dyn MarketSource>> = HashMap::new();
    let mut breakers = Vec::new();
    for kind in &kinds {
        let guarded = health::GuardedSource::new(build_one(*kind, settings)?, breaker);
        breakers.push(guarded.breaker());
        built.insert(*kind, Arc::new(guarded));
    }
    let health = health::SourceHealth::new(breakers);
    let by_name = built.values().map(|source| (source.name(), source.clone())).collect();
    let ordered = kinds.iter().filter_map(|kind| built.get(kind).cloned()).collect();
    let source: Arc<dyn MarketSource> = if settings.routes.rules.is_empty() {
        let mut sources: Vec<Arc<dyn MarketSource>> =
            settings.sources.iter().filter_map(|kind| built.get(kind).cloned()).collect();
        if sources.len() == 1 { sources.remove(0) } else { Arc::new(FallbackSource::new(sources)) }
    } else {
        Arc::new(routing::RoutedSource::new(settings.routes.clone(), settings.sources.clone(), &built)?)
    };
    Ok(Built { source, health, by_name, ordered })
}

/// One source, configured.
fn build_one(kind: MarketSourceKind, settings: &MarketSettings) -> anyhow::Result<Arc<dyn MarketSource>> {
    Ok(match kind {
        MarketSourceKind::Simulated => Arc::new(simulated::SimulatedMarket::new()),
        MarketSourceKind::Itick => {
            let itick = &settings.itick;
            let token = itick
                .token
                .clone()
                .ok_or_else(|| anyhow::anyhow!("the itick source needs ITICK_TOKEN (the iTick API key)"))?;
            Arc::new(itick::ItickSource::new(itick::ItickConfig {
                base_url: itick.base_url.clone(),
                token,
                timeout: itick.timeout,
                requests_per_minute: itick.requests_per_minute,
                max_retries: itick.max_retries,
            })?)
        }
        MarketSourceKind::Polygon => {
            let polygon = &settings.polygon;
            let api_key = polygon
                .api_key
                .clone()
                .ok_or_else(|| anyhow::anyhow!("the polygon source needs POLYGON_API_KEY (the Polygon API key)"))?;
            Arc::new(polygon::PolygonSource::new(polygon::PolygonConfig {
                base_url: polygon.base_url.clone(),
                api_key,
                timeout: polygon.timeout,
                requests_per_minute: polygon.requests_per_minute,
                max_retries: polygon.max_retries,
            })?)
        }
    })
}

/// The live stream of the first source that streams, of `FINQL_MARKET_SOURCE`'s and then
/// `FINQL_ROUTES`' sources. Polygon's WebSocket is not wired yet: with `polygon` first, live
/// data comes from the next source listed (`polygon,itick`), and a list of `polygon` alone is
/// refused at start rather than serving subscriptions that never update.
pub fn build_stream(settings: &MarketSettings) -> anyhow::Result<Arc<dyn MarketStream>> {
    for kind in settings.sources.iter().copied().chain(settings.routes.sources()) {
        match kind {
            MarketSourceKind::Simulated => {
                return Ok(Arc::new(simulated::SimulatedStream::new(settings.sim_ticks_per_sec)));
            }
            MarketSourceKind::Itick => return Ok(Arc::new(itick::ItickStream::from_settings(&settings.itick)?)),
            MarketSourceKind::Polygon => {
                tracing::warn!("Polygon's live stream is not available yet: live data comes from the next source");
            }
        }
    }
    anyhow::bail!(
        "FINQL_MARKET_SOURCE and FINQL_ROUTES name no source with a live stream: list `itick` or `simulated` after `polygon`"
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{
        config::{Config, MarketSourceKind},
        market::types::Instrument,
        reference::{Symbol, service::AssetClass},
    };

    /// Pinning, provenance and the replicas' wire find a source by the name its values carry:
    /// each source must answer to the name its setting uses.
    #[test]
    fn each_source_answers_to_its_configured_name() {
        let secret = "a-test-secret-long-enough-for-the-development-check-0123456789";
        let config = Config::from_lookup(|name| match name {
            "ITICK_TOKEN" | "POLYGON_API_KEY" => Some("key".to_owned()),
            "JWT_SECRET" => Some(secret.to_owned()),
            _ => None,
        })
        .unwrap();
        for kind in MarketSourceKind::ALL {
            assert_eq!(super::build_one(kind, &config.market).unwrap().name(), kind.name());
        }
    }

    /// An instrument of the catalog's shape, in US dollars on the US calendar.
    pub fn instrument(symbol: &str, class: AssetClass, region: &str, code: &str) -> Instrument {
        Instrument {
            symbol: Symbol::parse(symbol).unwrap(),
            asset_class: class,
            region: region.into(),
            code: code.into(),
            currency: "USD".into(),
            market: crate::market::calendar::Region::Us,
            listed_at: None,
        }
    }
}
