//! Waiting on what finql does not control, with bounds.
//!
//! An upstream market source or Redis that is down must cost a request a known, short time,
//! never the sum of every timeout and retry on the way. Two tools, both reusable by any module
//! that calls out:
//!
//! - `breaker::CircuitBreaker`: the health of one dependency. After a run of failures it
//!   refuses calls at once (fail fast) and lets one probe through after a cool-down. Market
//!   sources (`market::health`) and Redis each have one; routing by health reads them.
//! - `redis::RedisGuard`: a short timeout on every Redis call plus the `redis` breaker.

/// The circuit breaker: closed, open (fail fast), half-open (one probe).
pub mod breaker;
/// Every Redis call bounded by `FINQL_REDIS_TIMEOUT_MS`, behind the `redis` breaker.
pub mod redis;
