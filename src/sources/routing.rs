//! `RoutedSource`: the market source when `FINQL_ROUTES` is set. Each instrument goes to the
//! chain of sources its rule names (`config::routes`: by asset class and market, most specific
//! rule first), or to `FINQL_MARKET_SOURCE`'s chain when no rule matches.
//!
//! A chain is a `FallbackSource` over the sources it names, best first: a call goes to the
//! first source whose breaker lets it through (an open breaker fails at once, so the next
//! healthy source answers without waiting), then to the next on failure; a batch asks the next
//! source for what the one before left out. Each source is built once, behind one breaker,
//! whatever number of chains name it: its health is one fact, not one per route.
//!
//! A batch the service sends (one asset class and upstream region) may still hold instruments of
//! several routes (indices of several markets share an upstream region): it is split by chain,
//! the parts asked concurrently, and fails as a whole if a part fails, as one upstream call
//! would (each symbol then falls back to its last known value, never to "not found").

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::try_join_all;

use crate::{
    config::{MarketSourceKind, routes::Routes},
    market::{
        MarketSource,
        corporate::{CorporateAction, FundamentalPoint},
        source::{FallbackSource, SourceError},
        types::{Instrument, Interval, Kline, OrderBook, Quote, Tick},
    },
    reference::{Symbol, service::AssetClass},
};

/// The routing table over built sources.
pub struct RoutedSource {
    routes: Routes,
    /// One chain per distinct list of sources the table (or the default) names.
    chains: HashMap<Vec<MarketSourceKind>, Arc<dyn MarketSource>>,
    /// `FINQL_MARKET_SOURCE`'s list: what no rule matches.
    default: Vec<MarketSourceKind>,
    /// Its chain.
    fallback: Arc<dyn MarketSource>,
}

impl RoutedSource {
    /// The table `routes` over `built` (each source named anywhere, guarded), with `default`
    /// for what no rule matches.
    pub fn new(
        routes: Routes,
        default: Vec<MarketSourceKind>,
        built: &HashMap<MarketSourceKind, Arc<dyn MarketSource>>,
    ) -> anyhow::Result<Self> {
        let mut chains = HashMap::new();
        for kinds in routes.rules.iter().map(|rule| &rule.sources).chain(std::iter::once(&default)) {
            if chains.contains_key(kinds) {
                continue;
            }
            let mut sources = Vec::with_capacity(kinds.len());
            for kind in kinds {
                let source = built.get(kind).ok_or_else(|| anyhow::anyhow!("source {kind:?} was not built"))?;
                sources.push(source.clone());
            }
            let chain: Arc<dyn MarketSource> =
                if sources.len() == 1 { sources.remove(0) } else { Arc::new(FallbackSource::new(sources)) };
            chains.insert(kinds.clone(), chain);
        }
        let fallback = chains.get(&default).cloned().ok_or_else(|| anyhow::anyhow!("no default chain"))?;
        Ok(Self { routes, chains, default, fallback })
    }

    /// The chain serving `instrument`.
    fn chain(&self, instrument: &Instrument) -> &Arc<dyn MarketSource> {
        let kinds = self
            .routes
            .sources_for(class_name(instrument.asset_class), instrument.market.code())
            .unwrap_or(&self.default);
        // Every list the table names has its chain (`new`).
        self.chains.get(kinds).unwrap_or(&self.fallback)
    }

    /// `instruments` split by chain, in the order first met.
    fn split<'a>(&'a self, instruments: &[Instrument]) -> Vec<(&'a Arc<dyn MarketSource>, Vec<Instrument>)> {
        let mut parts: Vec<(&Arc<dyn MarketSource>, Vec<Instrument>)> = Vec::new();
        for instrument in instruments {
            let chain = self.chain(instrument);
            match parts.iter_mut().find(|(c, _)| Arc::ptr_eq(c, chain)) {
                Some((_, part)) => part.push(instrument.clone()),
                None => parts.push((chain, vec![instrument.clone()])),
            }
        }
        parts
    }
}

/// `config::routes`' name of an asset class.
fn class_name(class: AssetClass) -> &'static str {
    match class {
        AssetClass::Stock => "stock",
        AssetClass::Fund => "fund",
        AssetClass::Forex => "forex",
        AssetClass::Index => "index",
        AssetClass::Crypto => "crypto",
        AssetClass::Future => "future",
    }
}

#[async_trait::async_trait]
impl MarketSource for RoutedSource {
    fn name(&self) -> &'static str {
        "routed"
    }

    /// Several sources may answer for one series: storing their bars under one name would mix them.
    fn keeps_history(&self) -> bool {
        false
    }

    /// The smallest limit, so a chunk fits whichever source answers it.
    fn batch_limit(&self) -> usize {
        self.chains.values().map(|chain| chain.batch_limit()).min().unwrap_or(1)
    }

    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        let parts = self.split(instruments);
        let answers = try_join_all(parts.iter().map(|(chain, part)| chain.quotes(part))).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError> {
        self.chain(instrument).klines(instrument, interval, end, limit).await
    }

    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        self.chain(instrument).order_book(instrument, levels).await
    }

    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        self.chain(instrument).ticks(instrument, limit).await
    }

    async fn order_books(&self, instruments: &[Instrument], levels: usize) -> Result<Vec<OrderBook>, SourceError> {
        let parts = self.split(instruments);
        let answers = try_join_all(parts.iter().map(|(chain, part)| chain.order_books(part, levels))).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn latest_klines(
        &self,
        instruments: &[Instrument],
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<(Symbol, Vec<Kline>)>, SourceError> {
        let parts = self.split(instruments);
        let answers =
            try_join_all(parts.iter().map(|(chain, part)| chain.latest_klines(part, interval, limit))).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        self.chain(instrument).corporate_actions(instrument).await
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        self.chain(instrument).fundamentals(instrument, from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::routes::{CLASSES, REGIONS},
        market::calendar::Region,
    };

    #[test]
    fn the_tables_names_are_the_domains() {
        let regions: Vec<&str> = Region::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(regions, REGIONS);
        let classes = [
            AssetClass::Stock,
            AssetClass::Fund,
            AssetClass::Forex,
            AssetClass::Index,
            AssetClass::Crypto,
            AssetClass::Future,
        ];
        assert_eq!(classes.map(class_name), CLASSES);
    }
}
