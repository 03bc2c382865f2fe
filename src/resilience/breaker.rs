//! A circuit breaker: the health of one dependency (a market source, Redis), shared by every
//! request that uses it.
//!
//! # Why
//!
//! A dependency that is down costs each caller its whole timeout (a blackholed iTick made every
//! market query wait 20 s; a Redis outage 1.8 s per quote). Once a few calls in a row have
//! failed, the next one almost certainly will too, so the breaker *opens*: callers are refused
//! at once (no network wait) and fall back (another source, a stale value, the local cache).
//! After a cool-down it lets exactly one call through (*half-open*): its success closes the
//! breaker, its failure opens it for another cool-down. One probe at a time means a dependency
//! that comes back is not hit by every waiting request at once, and one that is still down
//! costs one caller one timeout per cool-down, not every caller.
//!
//! # States
//!
//! ```text
//! Closed --K consecutive failures--> Open --cool-down over, one caller--> HalfOpen
//!   ^                                  ^                                     |
//!   +------------- probe succeeds -----|------------- probe fails -----------+
//! ```
//!
//! Consecutive failures (not a ratio over a window) trip it: the outages this guards against
//! (blackholed address, refused connections, a dead Redis) fail every call, and a count needs
//! no window to tune. One success resets the count, so a flaky-but-working dependency whose
//! failures are interleaved with successes stays closed, and retries inside a call (iTick's)
//! already absorb isolated errors.
//!
//! # Use
//!
//! `CircuitBreaker::permit` asks to call; the `Permit` it returns must be resolved with
//! `Permit::success` or `Permit::failure`. A permit dropped unresolved (the caller's
//! future was cancelled, e.g. by its own deadline) counts as a failure when it was the probe,
//! so an abandoned probe can never leave the breaker half-open for ever, and as nothing
//! otherwise. Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause`.
//!
//! `CircuitBreaker::snapshot` reports the state for health checks and for routing by health
//! (pick the first source whose breaker admits calls).

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

/// When a breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures (errors or timeouts) that open the breaker. At least 1.
    pub failures: u32,
    /// How long the breaker stays open before one probe call is let through.
    pub cool_down: Duration,
}

/// Where a breaker stands, as reported to health checks and routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are refused for `retry_in` more (then one probe goes through).
    Open { retry_in: Duration },
    /// One probe call is in flight (or may start now); others are refused until it resolves.
    HalfOpen,
}

impl BreakerState {
    /// A short, client-safe description: `closed`, `open (retry in 3 s)`, `half-open`.
    pub fn describe(&self) -> String {
        match self {
            Self::Closed { .. } => "closed".into(),
            Self::Open { retry_in } => format!("open (retry in {} s)", retry_in.as_secs_f64().ceil() as u64),
            Self::HalfOpen => "half-open".into(),
        }
    }
}

/// A breaker's state and counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSnapshot {
    pub name: &'static str,
    pub state: BreakerState,
    /// Times the breaker opened since start.
    pub opened: u64,
    /// Calls refused without trying (fast failures) since start.
    pub refused: u64,
}

/// A call the breaker refused: the dependency is considered down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub name: &'static str,
    pub state: BreakerState,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The health of one dependency. Share it (`Arc`) among everything that calls the dependency.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: &'static str,
    config: BreakerConfig,
    state: Mutex<State>,
    opened: AtomicU64,
    refused: AtomicU64,
}

impl CircuitBreaker {
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        let config = BreakerConfig { failures: config.failures.max(1), ..config };
        Self {
            name,
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            opened: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is one assignment: a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Leave to call the dependency now, or a refusal (no wait) while the breaker is open or
    /// another caller's probe is in flight.
    pub fn permit(&self) -> Result<Permit<'_>, Refused> {
        let mut state = self.lock();
        let now = Instant::now();
        let probe = match &*state {
            State::Closed { .. } => false,
            State::Open { until } if now >= *until => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } | State::HalfOpen { probing: true } => {
                let snapshot = view(&state, now);
                drop(state);
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refused { name: self.name, state: snapshot });
            }
        };
        Ok(Permit { breaker: self, probe, resolved: false })
    }

    /// Whether a call would be let through now (closed, or due for a probe). For routing: it
    /// takes no permit.
    pub fn admits(&self) -> bool {
        match &*self.lock() {
            State::Closed { .. } | State::HalfOpen { probing: false } => true,
            State::Open { until } => Instant::now() >= *until,
            State::HalfOpen { probing: true } => false,
        }
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let state = view(&self.lock(), Instant::now());
        BreakerSnapshot {
            name: self.name,
            state,
            opened: self.opened.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn succeeded(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    fn failed(&self, probe: bool) {
        let mut state = self.lock();
        let open = match &mut *state {
            // A failure of a call that started before the breaker opened changes nothing.
            State::Open { .. } => false,
            State::HalfOpen { .. } => probe,
            State::Closed { failures } => {
                *failures += 1;
                *failures >= self.config.failures
            }
        };
        if open {
            *state = State::Open { until: Instant::now() + self.config.cool_down };
            drop(state);
            self.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                dependency = self.name,
                cool_down_ms = self.config.cool_down.as_millis() as u64,
                "circuit breaker opened: failing fast until a probe succeeds"
            );
        }
    }

    fn abandoned(&self, probe: bool) {
        if probe {
            self.failed(true);
        }
    }
}

fn view(state: &State, now: Instant) -> BreakerState {
    match state {
        State::Closed { failures } => BreakerState::Closed { failures: *failures },
        State::Open { until } => BreakerState::Open { retry_in: until.saturating_duration_since(now) },
        State::HalfOpen { .. } => BreakerState::HalfOpen,
    }
}

/// Leave for one call. Resolve it with [`Permit::success`] or [`Permit::failure`].
#[must_use = "a permit must be resolved with success() or failure()"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    resolved: bool,
}

impl Permit<'_> {
    /// The dependency answered (an answer it gives, like "not found", is a success too).
    pub fn success(mut self) {
        self.resolved = true;
        self.breaker.succeeded();
    }

    /// The dependency failed or did not answer in time.
    pub fn failure(mut self) {
        self.resolved = true;
        self.breaker.failed(self.probe);
    }

    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.resolved {
            self.breaker.abandoned(self.probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new("test", BreakerConfig { failures: 3, cool_down: Duration::from_secs(5) })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_refuses_without_waiting() {
        let b = breaker();
        for _ in 0..2 {
            b.permit().unwrap().failure();
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed { failures: 2 });
        // A success in between resets the count.
        b.permit().unwrap().success();
        for _ in 0..3 {
            b.permit().unwrap().failure();
        }
        let refused = b.permit().unwrap_err();
        assert_eq!(refused.state, BreakerState::Open { retry_in: Duration::from_secs(5) });
        assert_eq!(b.snapshot().opened, 1);
        assert_eq!(b.snapshot().refused, 1);
        assert!(!b.admits());
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_after_the_cool_down_closes_on_success() {
        let b = breaker();
        for _ in 0..3 {
            b.permit().unwrap().failure();
        }
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(b.permit().is_err(), "still cooling down");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(b.admits());
        let probe = b.permit().unwrap();
        assert!(probe.is_probe());
        // Only one probe at a time.
        assert_eq!(b.permit().unwrap_err().state, BreakerState::HalfOpen);
        probe.success();
        assert_eq!(b.snapshot().state, BreakerState::Closed { failures: 0 });
        assert!(!b.permit().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_abandoned_probe_opens_it_again() {
        let b = breaker();
        for _ in 0..3 {
            b.permit().unwrap().failure();
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        b.permit().unwrap().failure();
        assert_eq!(b.snapshot().state, BreakerState::Open { retry_in: Duration::from_secs(5) });
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(b.permit().unwrap()); // the caller gave up (its deadline passed)
        assert!(matches!(b.snapshot().state, BreakerState::Open { .. }));
        assert_eq!(b.snapshot().opened, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn late_results_of_calls_from_before_it_opened_change_nothing() {
        let b = breaker();
        let slow = b.permit().unwrap();
        for _ in 0..3 {
            b.permit().unwrap().failure();
        }
        slow.failure();
        drop(b.permit()); // refused
        assert_eq!(b.snapshot().opened, 1);
        // An abandoned ordinary call is neutral.
        let b = breaker();
        drop(b.permit().unwrap());
        assert_eq!(b.snapshot().state, BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn states_describe_themselves_without_details() {
        assert_eq!(BreakerState::Open { retry_in: Duration::from_millis(2_100) }.describe(), "open (retry in 3 s)");
        assert_eq!(BreakerState::HalfOpen.describe(), "half-open");
        assert_eq!(BreakerState::Closed { failures: 2 }.describe(), "closed");
    }
}
