//! T+0 validation: quotes and closed bars fetched from a source are checked, at a sampled
//! rate, against another configured source, after the request that fetched them has its
//! answer.
//!
//! A check never sits on a request's path: the fetch hands its fresh quotes over and returns;
//! a task asks the secondary (the first other source, in configured order, that knows the
//! instrument) with its own bounded wait, at most `MAX_CHECKS` at once (a sample that finds
//! none free is skipped, not queued). A quote's `last`, or a closed bar's open, high, low or
//! close, further than `FINQL_DIVERGENCE_BPS` from the secondary's is logged, counted
//! (`finql_source_divergences_total{kind}`) and remembered, so that every answer serving that
//! very value says `quality: SUSPECT` and carries the other source's value (`crossCheck`).
//! Volume is left to the T+1 reconciliation: providers count it differently (consolidated or
//! primary exchange) every day. The memory is this replica's: another replica serving the same
//! shared value samples it on its own.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use rust_decimal::Decimal;
use tokio::sync::Semaphore;

use super::{
    source::MarketSource,
    types::{Instrument, Interval, Kline, Quote},
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

/// What another source said about a closed bar that diverged from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarDivergence {
    /// The bar checked, as its source served it.
    pub bar: Kline,
    /// The other source, its close, and the largest distance among open, high, low and close,
    /// in basis points of the checked bar's.
    pub other: &'static str,
    pub other_close: Decimal,
    pub bps: Decimal,
}

/// Bars compared per check, at most (the newest of a window).
const MAX_CHECKED_BARS: usize = 100;

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
    bar_divergences: Cache<(Symbol, Interval, DateTime<Utc>), BarDivergence>,
}

impl CrossCheck {
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Checks a `rate` (0 to 1) of fetched quotes and bars among `sources` (configured order);
    /// a price further than `tolerance_bps` apart diverges.
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
            bar_divergences: Cache::builder().max_capacity(100_000).time_to_live(REMEMBERED).build(),
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

    /// Hands over bars just fetched for `instrument`; at the sampled rate, its closed ones are
    /// checked in the background (one check per fetch).
    pub fn sample_bars(&self, instrument: &Instrument, interval: Interval, bars: &[Kline]) {
        let Some(inner) = &self.inner else { return };
        if bars.is_empty() || rand::random::<f64>() >= inner.rate {
            return;
        }
        let now = Utc::now();
        let closed: Vec<Kline> = bars.iter().filter(|b| interval.next_start(b.time) <= now).cloned().collect();
        if closed.is_empty() {
            return;
        }
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            metrics::counter!("finql_source_crosschecks_total", "outcome" => "skipped").increment(1);
            return;
        };
        let (inner, instrument) = (Arc::clone(inner), instrument.clone());
        let start = closed.len().saturating_sub(MAX_CHECKED_BARS);
        tokio::spawn(async move {
            inner.check_bars(&instrument, interval, closed[start..].to_vec()).await;
            drop(permit);
        });
    }

    /// The divergence found for this very bar of `symbol`'s `interval` series, if any.
    pub fn bar_divergence(&self, symbol: &Symbol, interval: Interval, bar: &Kline) -> Option<BarDivergence> {
        let found = self.inner.as_ref()?.bar_divergences.get(&(symbol.clone(), interval, bar.time))?;
        let b = &found.bar;
        let same =
            b.source == bar.source && [b.open, b.high, b.low, b.close] == [bar.open, bar.high, bar.low, bar.close];
        same.then_some(found)
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

    async fn check_bars(&self, instrument: &Instrument, interval: Interval, bars: Vec<Kline>) {
        let (Some(first), Some(last)) = (bars.first(), bars.last()) else { return };
        let (primary, end) = (first.source, interval.next_start(last.time));
        for other in self.sources.iter().filter(|s| s.name() != primary) {
            let call = other.klines(instrument, interval, Some(end), bars.len());
            let theirs = match tokio::time::timeout(CHECK_TIMEOUT, call).await {
                Ok(Ok(theirs)) if !theirs.is_empty() => theirs,
                _ => continue,
            };
            for bar in &bars {
                let Some(their) = theirs.iter().find(|t| t.time == bar.time) else { continue };
                let fields =
                    [(bar.open, their.open), (bar.high, their.high), (bar.low, their.low), (bar.close, their.close)];
                let bps = fields.iter().filter_map(|(ours, them)| distance(*ours, *them)).max().unwrap_or_default();
                if bps <= self.tolerance {
                    metrics::counter!("finql_source_crosschecks_total", "outcome" => "agreed").increment(1);
                    continue;
                }
                metrics::counter!("finql_source_crosschecks_total", "outcome" => "diverged").increment(1);
                metrics::counter!("finql_source_divergences_total", "source" => bar.source, "other" => other.name(), "kind" => "kline")
                    .increment(1);
                tracing::warn!(
                    symbol = %instrument.symbol, interval = interval.code(), time = %bar.time, source = bar.source,
                    close = %bar.close, other = other.name(), other_close = %their.close, %bps,
                    "sources diverge on a closed bar"
                );
                let key = (instrument.symbol.clone(), interval, bar.time);
                let divergence = BarDivergence { bar: bar.clone(), other: other.name(), other_close: their.close, bps };
                self.bar_divergences.insert(key, divergence);
            }
            return;
        }
        metrics::counter!("finql_source_crosschecks_total", "outcome" => "unchecked").increment(1);
    }

    fn compare(&self, quote: &Quote, theirs: &Quote, other: &'static str) {
        let Some(bps) = distance(quote.last, theirs.last) else { return };
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

/// How far `theirs` is from `ours`, in basis points of `ours`, to two places (none for a zero
/// reference): the one measure of disagreement, for T+0 here and T+1 (`reconcile`).
pub fn distance(ours: Decimal, theirs: Decimal) -> Option<Decimal> {
    (!ours.is_zero()).then(|| ((theirs - ours).abs() / ours.abs() * Decimal::from(10_000)).round_dp(2))
}
