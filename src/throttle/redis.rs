//! The shared limiter: state in Redis, so every replica sees every attempt.
//!
//! Each operation is one Lua script (atomic on the Redis server, so concurrent attempts on
//! different replicas cannot both read the old state) that reads Redis's own clock (`TIME`):
//! replicas whose clocks disagree still agree on the limit. The scripts mirror `gcra::step`
//! and `Backoff::step` line by line; the integration tests run both.
//!
//! Redis is not allowed to make a login wait or to switch throttling off: every call is
//! bounded by `CALL_TIMEOUT`, and when one fails the decision is made by the in-process
//! limiter instead; after `FAILURES_FOR_OUTAGE` failures in a row Redis is skipped for
//! `OUTAGE_PAUSE` (so an outage costs one timeout per pause, not one per login). During an outage each replica throttles on its own:
//! the limits hold per replica (at worst N times the configured rate across N replicas), which
//! is far better than none, and failures counted locally are not carried back into Redis.
//!
//! Scripts are sent with `EVAL` (the `redis` crate's `Script`/`EVALSHA` needs its `script`
//! feature, not enabled here); Redis caches compiled scripts by hash, so the cost is the
//! ~0.5 KB of text per call.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Decision, Limiter, backoff::Backoff, gcra::Quota, memory::MemoryLimiter};

/// The longest a throttling decision may wait for Redis (as for the shared quote cache). A
/// round trip takes well under a millisecond; what takes longer is a replica so busy that its
/// own timers run late (150 ms tripped under 60 concurrent logins on 2 loaded cores), and a
/// decision made locally then is a weaker one.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// Failed calls in a row after which Redis is considered gone: one slow answer under load is
/// decided locally, but does not switch the replica to local limits.
const FAILURES_FOR_OUTAGE: u32 = 3;
/// How long Redis is skipped once considered gone, before one call tries it again: during an
/// outage, one decision per pause waits `CALL_TIMEOUT`, the others none.
const OUTAGE_PAUSE: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// GCRA (`gcra::step`). KEYS[1]: the bucket. ARGV: interval µs, burst, cost.
/// Returns {allowed, retry_after_us, remaining}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local limit = interval * burst
local new_tat = tat + interval * cost
local ahead = new_tat - now
if ahead > limit then
  return {0, ahead - limit, 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(ahead / 1000)))
return {1, 0, math.floor((limit - ahead) / interval)}
";

/// Backoff (`Backoff::step`). KEYS[1]: the account. ARGV: free, base µs, max µs, memory µs.
/// Returns {allowed, retry_after_us, remaining}.
const ATTEMPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local memory = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'n', 'until')
local n = tonumber(state[1]) or 0
local blocked_until = tonumber(state[2]) or 0
if now < blocked_until then
  return {0, blocked_until - now, 0}
end
n = n + 1
local first = math.max(free, 1)
local delay = 0
if n >= first then
  delay = math.min(base * 2 ^ math.min(n - first, 63), max)
end
redis.call('HSET', KEYS[1], 'n', n, 'until', string.format('%.0f', now + delay))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((delay + memory) / 1000)))
return {1, 0, math.max(free - n, 0)}
";

pub struct RedisLimiter {
    conn: ConnectionManager,
    /// `{FINQL_CACHE_NAMESPACE}:throttle:`, so deployments and test runs sharing a Redis do not
    /// share limits.
    prefix: String,
    /// Decides while Redis cannot.
    local: MemoryLimiter,
    /// Failed calls in a row, and until when Redis is skipped.
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    failures: u32,
    paused_until: Option<Instant>,
}

impl RedisLimiter {
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // One attempt: a retry would only spend the caller's time; the local limiter decides.
            .set_number_of_retries(1);
        let conn =
            client.get_connection_manager_with_config(config).await.context("connecting to Redis (REDIS_URL)")?;
        Ok(Self {
            conn,
            prefix: format!("{namespace}:throttle:"),
            local: MemoryLimiter::new(),
            health: Mutex::new(Health::default()),
        })
    }

    fn paused(&self) -> bool {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.paused_until.is_some_and(|until| Instant::now() < until)
    }

    fn succeeded(&self) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if health.failures >= FAILURES_FOR_OUTAGE {
            tracing::info!("throttle: Redis answers again; limits are shared again");
        }
        *health = Health::default();
    }

    fn failed(&self, doing: &str, err: &dyn std::fmt::Display) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.failures = health.failures.saturating_add(1);
        if health.failures < FAILURES_FOR_OUTAGE {
            tracing::debug!(error = %err, "throttle: Redis failed while {doing}; decided in process");
            return;
        }
        if health.failures == FAILURES_FOR_OUTAGE {
            tracing::warn!(error = %err, "throttle: Redis unavailable while {doing}; limiting in process");
        }
        health.paused_until = Some(Instant::now() + OUTAGE_PAUSE);
    }

    /// Runs a script; `None` when Redis did not answer in time (the caller decides locally).
    async fn eval(&self, script: &str, key: &str, args: &[u64], doing: &str) -> Option<Decision> {
        if self.paused() {
            return None;
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(format!("{}{key}", self.prefix));
        for arg in args {
            cmd.arg(*arg);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<(i64, i64, i64)>(&mut conn)).await {
            Ok(Ok((allowed, retry_after_us, remaining))) => {
                self.succeeded();
                Some(Decision::from_us(
                    allowed == 1,
                    u64::try_from(retry_after_us).unwrap_or(0),
                    u32::try_from(remaining).unwrap_or(0),
                ))
            }
            Ok(Err(err)) => {
                self.failed(doing, &err);
                None
            }
            Err(_) => {
                self.failed(doing, &format!("no answer within {CALL_TIMEOUT:?}"));
                None
            }
        }
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn acquire(&self, key: &str, quota: Quota, cost: u32) -> Decision {
        let args = [quota.interval_us(), u64::from(quota.burst), u64::from(cost)];
        match self.eval(GCRA, key, &args, "rate limiting").await {
            Some(decision) => decision,
            None => self.local.acquire(key, quota, cost).await,
        }
    }

    async fn attempt(&self, key: &str, policy: Backoff) -> Decision {
        let micros = super::gcra::micros;
        let args = [u64::from(policy.free), micros(policy.base), micros(policy.max), micros(policy.memory)];
        match self.eval(ATTEMPT, key, &args, "counting an attempt").await {
            Some(decision) => decision,
            None => self.local.attempt(key, policy).await,
        }
    }

    async fn forget(&self, key: &str) {
        // Both: state counted locally during an outage must not outlive a success either.
        self.local.forget(key).await;
        if self.paused() {
            return;
        }
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(format!("{}{key}", self.prefix));
        match tokio::time::timeout(CALL_TIMEOUT, del.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => self.succeeded(),
            Ok(Err(err)) => self.failed("clearing a count", &err),
            Err(_) => self.failed("clearing a count", &format!("no answer within {CALL_TIMEOUT:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The Lua scripts against a real Redis (`TEST_REDIS_URL`), with limits long enough that
    //! Redis's clock moving during the test changes nothing: the same decisions as the Rust
    //! definitions in `gcra` and `backoff` make.

    use super::*;

    async fn limiter() -> Option<RedisLimiter> {
        let Some(url) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("skipped: TEST_REDIS_URL is not set");
            return None;
        };
        let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
        Some(RedisLimiter::connect(&url, &namespace).await.expect("Redis at TEST_REDIS_URL"))
    }

    fn secs(decision: Decision) -> u64 {
        decision.retry_after.as_secs_f64().round() as u64
    }

    #[tokio::test]
    async fn gcra_script_matches_the_definition() {
        let Some(limiter) = limiter().await else { return };
        let quota = Quota::per(Duration::from_secs(60), 1, 3).unwrap();
        let mut decisions = Vec::new();
        for _ in 0..5 {
            decisions.push(limiter.acquire("k", quota, 1).await);
        }
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert_eq!(decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(), [2, 1, 0, 0, 0]);
        assert_eq!(secs(decisions[3]), 60);
        let costly = limiter.acquire("other", quota, 2).await;
        assert_eq!((costly.allowed, costly.remaining), (true, 1));
        assert!(!limiter.acquire("other", quota, 2).await.allowed, "a refused cost takes nothing…");
        assert!(limiter.acquire("other", quota, 1).await.allowed, "…so a smaller one still fits");
        // The key expires when the allowance is whole again (3 minutes ahead at most).
        let mut conn = limiter.conn.clone();
        let ttl: i64 = redis::cmd("PTTL").arg(format!("{}k", limiter.prefix)).query_async(&mut conn).await.unwrap();
        assert!((170_000..=180_000).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn backoff_script_matches_the_definition() {
        let Some(limiter) = limiter().await else { return };
        let policy = Backoff {
            free: 2,
            base: Duration::from_secs(10),
            max: Duration::from_secs(15),
            memory: Duration::from_secs(100),
        };
        let first = limiter.attempt("acct", policy).await;
        assert_eq!((first.allowed, first.remaining), (true, 1));
        let second = limiter.attempt("acct", policy).await;
        assert_eq!((second.allowed, second.remaining), (true, 0));
        let blocked = limiter.attempt("acct", policy).await;
        assert!(!blocked.allowed);
        assert_eq!(secs(blocked), 10);
        assert_eq!(secs(limiter.attempt("acct", policy).await), 10, "a refused attempt adds nothing");
        let mut conn = limiter.conn.clone();
        let ttl: i64 = redis::cmd("PTTL").arg(format!("{}acct", limiter.prefix)).query_async(&mut conn).await.unwrap();
        assert!((100_000..=110_000).contains(&ttl), "delay + memory: {ttl}");
        limiter.forget("acct").await;
        assert_eq!(limiter.attempt("acct", policy).await.remaining, 1, "forgotten: a first attempt again");
        // The doubling is capped, and a long run does not overflow.
        let long = Backoff { free: 0, ..policy };
        assert_eq!(secs(limiter.attempt("fresh", long).await), 0);
        assert_eq!(secs(limiter.attempt("fresh", long).await), 10, "free 0 delays from the first");
    }
}
