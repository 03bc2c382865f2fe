//! The upstream time budget of a request, and the health of each market source.
//!
//! # The budget (`FINQL_UPSTREAM_BUDGET_MS`, default 2000)
//!
//! A request waits for upstream market data at most this long *in total*: across iTick's
//! retries and across the sources of a fallback chain. Per-call timeouts alone do not give
//! that: iTick's 5 s timeout times 4 attempts made a blackholed address cost 20 s. So the
//! service sets one deadline when it goes upstream (`within`), and everything below reads it
//! (`deadline`): a source is cut off when the deadline passes, iTick does not start a retry
//! it cannot finish in time, and a [`crate::market::source::FallbackSource`] gives each source
//! an equal share of what is left (`share`) so a silent primary cannot eat the fallback's
//! time. When the budget runs out the service serves the last known quote (marked `stale`) or
//! answers `UPSTREAM_UNAVAILABLE`.
//!
//! The deadline travels as a tokio task-local scoped on the upstream future itself, not as an
//! argument, so the `MarketSource` trait (and every provider) stays as it is, and a batch shared
//! by concurrent requests (single flight) keeps the deadline of the request that started it.
//!
//! # Source health
//!
//! `GuardedSource` wraps every configured source (`sources::build_source`) with its own
//! `CircuitBreaker`: failures and budget overruns count; after `FINQL_BREAKER_FAILURES` in a
//! row the source is skipped at once (no network wait) until a probe, after
//! `FINQL_BREAKER_COOLDOWN_MS`, succeeds. An answer of the source ("not found") is a success:
//! the source is up. The guard also turns the source's failure into [`SourceError::Down`],
//! whose text names the source and its state only: the provider's own error text (which can
//! hold URLs) is logged, never sent to a client. `SourceHealth` lists the breakers for health
//! reporting and, later, routing by health.

use std::{future::Future, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;

use super::{
    corporate::{CorporateAction, FundamentalPoint},
    source::{MarketSource, SourceError},
    types::{Instrument, Interval, Kline, OrderBook, Quote, Tick},
};
use crate::{
    reference::Symbol,
    resilience::breaker::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker},
};

tokio::task_local! {
    /// When the current upstream work must be done.
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as its upstream deadline (unless an earlier one is already in
/// force: a nested scope can only shorten the budget).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    let deadline = self::deadline().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(deadline, work).await
}

/// The upstream deadline in force, if any.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// The deadline for the `index`th of `count` sources tried in turn: an equal share of the time
/// left, so each later source still has as much as the one before it.
pub fn share(index: usize, count: usize) -> Option<Instant> {
    let deadline = deadline()?;
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    let remaining = count.saturating_sub(index).max(1) as u32;
    Some(now + left / remaining)
}

/// `work`, the `index`th of `count` sources' turn, within its [`share`] of the deadline in
/// force (unbounded when none is).
pub async fn in_turn<F: Future>(index: usize, count: usize, work: F) -> F::Output {
    match share(index, count) {
        Some(deadline) => within(deadline, work).await,
        None => work.await,
    }
}

/// A source behind its circuit breaker and the request's deadline.
pub struct GuardedSource {
    source: Arc<dyn MarketSource>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedSource {
    pub fn new(source: Arc<dyn MarketSource>, breaker: BreakerConfig) -> Self {
        let breaker = Arc::new(CircuitBreaker::new(source.name(), breaker));
        Self { source, breaker }
    }

    pub fn breaker(&self) -> Arc<CircuitBreaker> {
        self.breaker.clone()
    }

    /// `call` to this source (asking for `endpoint`) through its breaker and the deadline,
    /// counted and timed as `finql_upstream_requests_total{source, endpoint, outcome}` and
    /// `finql_upstream_request_duration_seconds{source, endpoint}`: here, where the source is
    /// one provider, so a route or fallback list counts each provider it tried. `endpoint`
    /// names what was asked (`quotes`, `klines`, `order_book`, `ticks`, `fundamentals`,
    /// `corporate_actions`), whichever of the provider's URLs answered it.
    async fn guard<T>(
        &self,
        endpoint: &'static str,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let mut call_record =
            CallRecord { source: self.source.name(), endpoint, started: Instant::now(), outcome: "down" };
        let answer = self.guarded(call).await;
        call_record.outcome = match &answer {
            Ok(_) => "ok",
            Err(err) => err.kind(),
        };
        answer
    }

    async fn guarded<T>(&self, call: impl Future<Output = Result<T, SourceError>>) -> Result<T, SourceError> {
        let name = self.source.name();
        let permit = self
            .breaker
            .permit()
            .map_err(|refused| SourceError::Down(format!("{name}: circuit {}", refused.state.describe())))?;
        let outcome = match deadline() {
            Some(deadline) => tokio::time::timeout_at(deadline, call).await,
            None => Ok(call.await),
        };
        match outcome {
            Err(_) => {
                permit.failure();
                tracing::warn!(source = name, "market source did not answer within the upstream budget");
                Err(SourceError::Down(format!("{name}: no answer within the time budget")))
            }
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            // The source answered: it is up, whatever it said.
            Ok(Err(err @ SourceError::NotFound(_))) => {
                permit.success();
                Err(err)
            }
            Ok(Err(err)) => {
                permit.failure();
                tracing::warn!(source = name, error = %err, "market source failed");
                Err(match err {
                    SourceError::Unavailable(_) => SourceError::Down(format!("{name}: failing")),
                    other => other,
                })
            }
        }
    }
}

/// One call's metrics, recorded when it ends: answered, or dropped unfinished (the request's
/// deadline cut it off first), which counts as `down`.
struct CallRecord {
    source: &'static str,
    endpoint: &'static str,
    started: Instant,
    outcome: &'static str,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let (source, endpoint, outcome) = (self.source, self.endpoint, self.outcome);
        metrics::counter!("finql_upstream_requests_total", "source" => source, "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("finql_upstream_request_duration_seconds", "source" => source, "endpoint" => endpoint)
            .record(self.started.elapsed().as_secs_f64());
    }
}

#[async_trait::async_trait]
impl MarketSource for GuardedSource {
    fn name(&self) -> &'static str {
        self.source.name()
    }

    fn batch_limit(&self) -> usize {
        self.source.batch_limit()
    }

    fn keeps_history(&self) -> bool {
        self.source.keeps_history()
    }

    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        self.guard("quotes", self.source.quotes(instruments)).await
    }

    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError> {
        self.guard("klines", self.source.klines(instrument, interval, end, limit)).await
    }

    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        self.guard("order_book", self.source.order_book(instrument, levels)).await
    }

    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        self.guard("ticks", self.source.ticks(instrument, limit)).await
    }

    async fn order_books(&self, instruments: &[Instrument], levels: usize) -> Result<Vec<OrderBook>, SourceError> {
        self.guard("order_book", self.source.order_books(instruments, levels)).await
    }

    async fn latest_klines(
        &self,
        instruments: &[Instrument],
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<(Symbol, Vec<Kline>)>, SourceError> {
        self.guard("klines", self.source.latest_klines(instruments, interval, limit)).await
    }

    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        self.guard("corporate_actions", self.source.corporate_actions(instrument)).await
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        self.guard("fundamentals", self.source.fundamentals(instrument, from, to)).await
    }
}

/// The breakers of the configured sources, in fallback order.
#[derive(Clone, Default)]
pub struct SourceHealth {
    breakers: Vec<Arc<CircuitBreaker>>,
}

impl SourceHealth {
    pub fn new(breakers: Vec<Arc<CircuitBreaker>>) -> Self {
        Self { breakers }
    }

    /// Whether every source is failing or suspect: none has a breaker closed with no failure
    /// since its last success. (No breakers at all, as in tests of the service alone: healthy.)
    pub fn degraded(&self) -> bool {
        !self.breakers.is_empty()
            && self.breakers.iter().all(|b| !matches!(b.snapshot().state, BreakerState::Closed { failures: 0 }))
    }

    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        self.breakers.iter().map(|b| b.snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn nested_budgets_only_shorten_and_shares_split_what_is_left() {
        let start = Instant::now();
        assert_eq!(deadline(), None);
        within(start + Duration::from_secs(2), async {
            assert_eq!(deadline(), Some(start + Duration::from_secs(2)));
            within(start + Duration::from_secs(9), async {
                assert_eq!(deadline(), Some(start + Duration::from_secs(2)));
            })
            .await;
            assert_eq!(share(0, 2), Some(start + Duration::from_secs(1)));
            assert_eq!(share(1, 2), Some(start + Duration::from_secs(2)));
            tokio::time::advance(Duration::from_secs(3)).await;
            assert_eq!(share(0, 2), Some(Instant::now()), "an overrun budget leaves nothing");
        })
        .await;
    }
}
