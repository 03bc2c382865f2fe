//! Redis calls that cost a bounded, short time whatever Redis does.
//!
//! Redis is shared state between replicas (the quote cache, and for other modules leases,
//! throttles, revocations), so it is on the path of many requests. A Redis that is down,
//! refusing connections or silently dropping packets must not make those requests wait:
//!
//! - every call runs under `FINQL_REDIS_TIMEOUT_MS` (default 100 ms: a healthy Redis answers
//!   in well under a millisecond on the same network, so 100 ms is two orders of magnitude of
//!   headroom and still invisible next to a request's own budget);
//! - a `CircuitBreaker` named `redis` opens after `FINQL_BREAKER_FAILURES` failed or timed out
//!   calls in a row: then calls fail at once, without touching the network, and the caller
//!   does without (a cache miss, a local decision). After `FINQL_BREAKER_COOLDOWN_MS` one
//!   call probes; its success closes the breaker.
//!
//! `RedisGuard::connection` builds the `ConnectionManager` the guard is meant for: lazily
//! (start-up does not wait for Redis), with connect and response timeouts no longer than the
//! call timeout, and a reconnect backoff capped low so a Redis that returns is used again
//! within about a second. Callers own how they react to `RedisUnavailable`; the guard only
//! bounds the wait and keeps the health.
//!
//! Other modules (lease, throttles, token revocation) can share one guard (it is cheap to
//! clone) so that Redis's health is learnt once per process.

use std::{future::Future, sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::breaker::{BreakerConfig, BreakerSnapshot, CircuitBreaker};

/// Why a guarded Redis call gave no answer.
#[derive(Debug)]
pub enum RedisUnavailable {
    /// The breaker is open: Redis failed recently; nothing was sent.
    Open,
    /// No answer within the call timeout.
    TimedOut,
    /// Redis (or the connection to it) answered with an error.
    Failed(redis::RedisError),
}

impl std::fmt::Display for RedisUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("Redis circuit open"),
            Self::TimedOut => f.write_str("Redis did not answer in time"),
            Self::Failed(err) => write!(f, "Redis error: {err}"),
        }
    }
}

// No `source`: `Display` already includes the Redis error, and a cause chain would repeat it.
impl std::error::Error for RedisUnavailable {}

impl RedisUnavailable {
    /// Logs that `what` went without Redis: a warning when a call failed, at debug while the
    /// breaker is open (every call then fails at once; the failures that opened it warned).
    pub fn log(&self, what: &str) {
        match self {
            Self::Open => tracing::debug!("{what}: {self}"),
            _ => tracing::warn!(error = %self, "{what}"),
        }
    }
}

/// The timeout and breaker every Redis call of a process goes through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisGuard {
    breaker: Arc<CircuitBreaker>,
    timeout: Duration,
}

/// How far apart the connection manager's reconnect attempts may grow: small, so a Redis that
/// comes back is reconnected to within about a second (the breaker, not the backoff, is what
/// spares a dead Redis from load).
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// The first reconnect delay.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Reconnect attempts per failed request before the manager reports the error: one retry is
/// enough for a dropped connection; more would only make the caller wait.
const RECONNECT_RETRIES: usize = 1;

impl RedisGuard {
    pub fn new(timeout: Duration, breaker: BreakerConfig) -> Self {
        Self { breaker: Arc::new(CircuitBreaker::new("redis", breaker)), timeout }
    }

    /// The call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A connection manager for `client`, created without waiting for Redis, whose every
    /// connect and response is bounded by the call timeout.
    pub fn connection(&self, client: redis::Client) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        ConnectionManager::new_lazy_with_config(client, config)
    }

    /// Runs one Redis call: refused at once while the breaker is open, cut off after the
    /// timeout, and its outcome recorded.
    pub async fn run<T, F>(&self, call: F) -> Result<T, RedisUnavailable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let Ok(permit) = self.breaker.permit() else { return Err(RedisUnavailable::Open) };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(err)) => {
                permit.failure();
                Err(RedisUnavailable::Failed(err))
            }
            Err(_) => {
                permit.failure();
                Err(RedisUnavailable::TimedOut)
            }
        }
    }

    /// The health of Redis as this process sees it.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.breaker.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> RedisGuard {
        RedisGuard::new(Duration::from_millis(100), BreakerConfig { failures: 2, cool_down: Duration::from_secs(1) })
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_redis_costs_the_timeout_then_nothing_until_the_probe() {
        let guard = guard();
        let silent = || std::future::pending::<redis::RedisResult<()>>();
        let started = tokio::time::Instant::now();
        assert!(matches!(guard.run(silent()).await, Err(RedisUnavailable::TimedOut)));
        assert!(matches!(guard.run(silent()).await, Err(RedisUnavailable::TimedOut)));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        // Open: refused without waiting.
        assert!(matches!(guard.run(silent()).await, Err(RedisUnavailable::Open)));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        tokio::time::advance(Duration::from_secs(1)).await;
        // The probe goes through and, answered, closes the breaker.
        assert_eq!(guard.run(async { Ok(7) }).await.unwrap(), 7);
        assert!(matches!(guard.snapshot().state, super::super::breaker::BreakerState::Closed { .. }));
    }
}
