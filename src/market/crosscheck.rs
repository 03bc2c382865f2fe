//! T+0 validation: quotes fetched from a source are checked, at a sampled rate, against
//! another configured source, after the request that fetched them has its answer.
//!
//! A check never sits on a request's path: the fetch hands its fresh quotes over and returns;
//! a task asks the secondary (the first other source, in configured order, that knows the
//! instrument) with its own bounded wait, at most `MAX_CHECKS` at once (a sample that finds
//! none free is skipped, not queued). A `last` further than `FINQL_DIVERGENCE_BPS` from the
//! secondary's is logged, counted (`finql_source_divergences_total`) and remembered for the
//! quote's lifetime in the caches, so that every answer serving that very value says
//! `quality: SUSPECT` and carries the other source's value (`crossCheck`). The memory is this
//! replica's: another replica serving the same shared quote samples it on its own.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use rust_decimal::Decimal;
use tokio::sync::Semaphore;

use super::{
    source::MarketSource,
    types::{Instrument, Quote},
};
use crate::reference::Symbol;

/// Checks running at once, at most.
const MAX_CHECKS: usize = 16;
/// How long a secondary may take to answer a check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a divergence is remembered: longer than any quote stays cached or shared.
const REMEMBERED: Duration = Duration::from_secs(600);

/// What another source said about a quote that diverged from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The value checked, and who served it.
    pub last: Decimal,
    pub source: &'static str,
    pub timestamp: DateTime<Utc>,
    /// The other source, its value, and how far apart, in basis points of the checked value.
    pub other: &'static str,
    pub other_last: Decimal,
    pub bps: Decimal,
}

/// The sampled cross-check; `off` when the rate is zero or one source is configured.
#[derive(Clone)]
pub struct CrossCheck {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    sources: Vec<Arc<dyn MarketSource>>,
    rate: f64,
    tolerance: Decimal,
    permits: Arc<Semaphore>,
    divergences: Cache<Symbol, Divergence>,
}

impl CrossCheck {
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Checks a `rate` (0 to 1) of fetched quotes among `sources` (configured order); a `last`
    /// further than `tolerance_bps` apart diverges.
    pub fn new(sources: Vec<Arc<dyn MarketSource>>, rate: f64, tolerance_bps: u32) -> Self {
        if rate <= 0.0 || sources.len() < 2 {
            return Self::off();
        }
        let inner = Inner {
            sources,
            rate: rate.min(1.0),
            tolerance: Decimal::from(tolerance_bps),
            permits: Arc::new(Semaphore::new(MAX_CHECKS)),
            divergences: Cache::builder().max_capacity(100_000).time_to_live(REMEMBERED).build(),
        };
        Self { inner: Some(Arc::new(inner)) }
    }

    /// Hands over quotes just fetched for `instruments` (one chunk: one asset class and
    /// region); a sample of them is checked in the background.
    pub fn sample(&self, instruments: &[Instrument], quotes: &[Quote]) {
        let Some(inner) = &self.inner else { return };
        let picked: Vec<(Instrument, Quote)> = quotes
            .iter()
            .filter(|_| rand::random::<f64>() < inner.rate)
            .filter_map(|q| instruments.iter().find(|i| i.symbol == q.symbol).map(|i| (i.clone(), q.clone())))
            .collect();
        if picked.is_empty() {
            return;
        }
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            metrics::counter!("finql_source_crosschecks_total", "outcome" => "skipped").increment(picked.len() as u64);
            return;
        };
        let inner = Arc::clone(inner);
        tokio::spawn(async move {
            inner.check(picked).await;
            drop(permit);
        });
    }

    /// The divergence found for this very quote (its value from its source), if any.
    pub fn divergence(&self, quote: &Quote) -> Option<Divergence> {
        let found = self.inner.as_ref()?.divergences.get(&quote.symbol)?;
        (found.last == quote.last && found.source == quote.source && found.timestamp == quote.timestamp)
            .then_some(found)
    }
}

impl Inner {
    async fn check(&self, picked: Vec<(Instrument, Quote)>) {
        let primary = picked[0].1.source;
        let instruments: Vec<Instrument> = picked.iter().map(|(i, _)| i.clone()).collect();
        // The first other source that knows them answers for them.
        for other in self.sources.iter().filter(|s| s.name() != primary) {
            let answer = match tokio::time::timeout(CHECK_TIMEOUT, other.quotes(&instruments)).await {
                Ok(Ok(quotes)) if !quotes.is_empty() => quotes,
                _ => continue,
            };
            for (_, quote) in &picked {
                let Some(theirs) = answer.iter().find(|q| q.symbol == quote.symbol) else { continue };
                self.compare(quote, theirs, other.name());
            }
            return;
        }
        metrics::counter!("finql_source_crosschecks_total", "outcome" => "unchecked").increment(picked.len() as u64);
    }

    fn compare(&self, quote: &Quote, theirs: &Quote, other: &'static str) {
        if quote.last.is_zero() {
            return;
        }
        let bps = ((theirs.last - quote.last).abs() / quote.last.abs() * Decimal::from(10_000)).round_dp(2);
        if bps <= self.tolerance {
            metrics::counter!("finql_source_crosschecks_total", "outcome" => "agreed").increment(1);
            return;
        }
        metrics::counter!("finql_source_crosschecks_total", "outcome" => "diverged").increment(1);
        metrics::counter!("finql_source_divergences_total", "source" => quote.source, "other" => other, "kind" => "quote")
            .increment(1);
        tracing::warn!(
            symbol = %quote.symbol, source = quote.source, last = %quote.last, other, other_last = %theirs.last, %bps,
            "sources diverge on a quote"
        );
        self.divergences.insert(
            quote.symbol.clone(),
            Divergence {
                last: quote.last,
                source: quote.source,
                timestamp: quote.timestamp,
                other,
                other_last: theirs.last,
                bps,
            },
        );
    }
}
