//! The shared limiter: state in Redis, so every replica sees every attempt.
//!
//! Each operation is one Lua script (atomic on the Redis server, so concurrent attempts on
//! different replicas cannot both read the old state) that reads Redis's own clock (`TIME`):
//! replicas whose clocks disagree still agree on the limit. The scripts mirror `gcra::step`
//! and `Backoff::step` line by line; the integration tests run both.
//!
//! Redis is not allowed to make a login wait or to switch throttling off: every call goes
//! through this limiter's own `RedisGuard` (a `CALL_TIMEOUT` on each call and a circuit
//! breaker), and when one fails the decision is made by the in-process limiter instead. After
//! `FAILURES_FOR_OUTAGE` failures in a row the breaker opens and Redis is skipped for
//! `OUTAGE_PAUSE`; then one call probes it (so an outage costs one timeout per pause, not one
//! per login). During an outage each replica throttles on its own: the limits hold per replica
//! (at worst N times the configured rate across N replicas), which is far better than none,
//! and failures counted locally are not carried back into Redis. The connection is made
//! lazily (start-up does not wait for Redis) and warmed with one `PING`.
//!
//! The guard is this limiter's, not the process's shared `redis` guard (the quote cache's,
//! `FINQL_REDIS_TIMEOUT_MS`): a throttling decision may wait longer than a cache lookup (see
//! `CALL_TIMEOUT`), and a slow cache answer must not switch throttling to local limits.
//!
//! Scripts are sent with `EVAL` (the `redis` crate's `Script`/`EVALSHA` needs its `script`
//! feature, not enabled here); Redis caches compiled scripts by hash, so the cost is the
//! ~0.5 KB of text per call.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context;
use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{Decision, Level, Limiter, Outage, Take, backoff::Backoff, gcra::Quota, memory::MemoryLimiter};
use crate::resilience::{
    breaker::{BreakerConfig, BreakerState},
    redis::{RedisGuard, RedisUnavailable},
};

/// The longest a throttling decision may wait for Redis (the guard's call timeout, which also
/// bounds connecting). A round trip takes well under a millisecond; what takes longer is a
/// replica so busy that its own timers run late (150 ms tripped under 60 concurrent logins on
/// 2 loaded cores), and a decision made locally then is a weaker one. Hence longer than the
/// quote cache's 100 ms.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// Failed calls in a row after which the breaker opens (Redis is considered gone): one slow
/// answer under load is decided locally, but does not switch the replica to local limits.
const FAILURES_FOR_OUTAGE: u32 = 3;
/// The breaker's cool-down: how long Redis is skipped once considered gone, before one call
/// probes it: during an outage, one decision per pause waits `CALL_TIMEOUT`, the others none.
const OUTAGE_PAUSE: Duration = Duration::from_secs(2);

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

/// Several GCRA buckets, all or nothing (`gcra::step_all`). KEYS: the buckets. ARGV: interval
/// µs, burst, cost for each bucket in turn. Returns {allowed, retry_after_us, remaining,
/// reset_us} for each bucket in turn. Lua numbers are doubles: microseconds since 1970 (about
/// 2^51) and any product below 2^53 are exact.
const GCRA_ALL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local steps = {}
local accepted = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local limit = interval * tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local ahead = tat + interval * cost - now
  if ahead > limit then
    accepted = false
    steps[i] = {0, ahead - limit, 0, tat - now, interval, limit}
  else
    steps[i] = {1, 0, math.floor((limit - ahead) / interval), ahead, interval, limit}
  end
end
local out = {}
for i = 1, #KEYS do
  local s = steps[i]
  if accepted then
    redis.call('SET', KEYS[i], string.format('%.0f', now + s[4]), 'PX', math.max(1, math.ceil(s[4] / 1000)))
  elseif s[1] == 1 then
    s[4] = s[4] - s[5] * tonumber(ARGV[3 * i])
    s[3] = math.floor((s[6] - s[4]) / s[5])
  end
  out[#out + 1] = s[1]
  out[#out + 1] = s[2]
  out[#out + 1] = s[3]
  out[#out + 1] = s[4]
end
return out
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
    /// Bounds every call and keeps Redis's health (timeout and breaker: see the module doc).
    guard: RedisGuard,
    /// Whether limits are shared (Redis answers); only for logging the changes, once each.
    shared: AtomicBool,
}

impl RedisLimiter {
    /// Sets up the connection without waiting for Redis (a Redis that is down only means
    /// local limits until it is up). Fails only on an invalid URL.
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let guard =
            RedisGuard::new(CALL_TIMEOUT, BreakerConfig { failures: FAILURES_FOR_OUTAGE, cool_down: OUTAGE_PAUSE });
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let conn = guard.connection(client).context("setting up the Redis connection (REDIS_URL)")?;
        let ping = guard.run(redis::cmd("PING").query_async::<String>(&mut conn.clone())).await;
        if let Err(err) = &ping {
            tracing::warn!(error = %err, "throttle: Redis did not answer PING; limiting in process until it does");
        }
        let prefix = format!("{namespace}:throttle:");
        Ok(Self { conn, prefix, local: MemoryLimiter::new(), guard, shared: AtomicBool::new(ping.is_ok()) })
    }

    /// Logs what an outcome changes: a failure at debug level, the switch to local limits
    /// (the breaker opened) and back once each.
    fn record<T>(&self, outcome: Result<T, RedisUnavailable>, doing: &str) -> Option<T> {
        match outcome {
            Ok(value) => {
                if !self.shared.swap(true, Ordering::Relaxed) {
                    tracing::info!("throttle: Redis answers again; limits are shared again");
                }
                Some(value)
            }
            Err(err) => {
                if !matches!(err, RedisUnavailable::Open) {
                    tracing::debug!(error = %err, "throttle: Redis failed while {doing}; decided in process");
                }
                let open = !matches!(self.guard.snapshot().state, BreakerState::Closed { .. });
                if open && self.shared.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "throttle: Redis unavailable while {doing}; limiting in process");
                }
                None
            }
        }
    }

    /// Runs a script; `None` when Redis did not answer in time (the caller decides locally).
    async fn eval(&self, script: &str, key: &str, args: &[u64], doing: &str) -> Option<Decision> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(format!("{}{key}", self.prefix));
        for arg in args {
            cmd.arg(*arg);
        }
        let mut conn = self.conn.clone();
        let outcome = self.guard.run(cmd.query_async::<(i64, i64, i64)>(&mut conn)).await;
        let (allowed, retry_after_us, remaining) = self.record(outcome, doing)?;
        Some(Decision::from_us(
            allowed == 1,
            u64::try_from(retry_after_us).unwrap_or(0),
            u32::try_from(remaining).unwrap_or(0),
        ))
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
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(format!("{}{key}", self.prefix));
        let outcome = self.guard.run(del.query_async::<i64>(&mut conn)).await;
        self.record(outcome, "clearing a count");
    }

    async fn acquire_all(&self, takes: &[Take], outage: Outage) -> Option<Vec<Level>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA_ALL).arg(takes.len());
        for take in takes {
            cmd.arg(format!("{}{}", self.prefix, take.key));
        }
        for take in takes {
            cmd.arg(take.quota.interval_us()).arg(take.quota.burst).arg(take.cost);
        }
        let mut conn = self.conn.clone();
        let outcome = self.guard.run(cmd.query_async::<Vec<i64>>(&mut conn)).await;
        let levels = self.record(outcome, "rate limiting a plan").and_then(|flat| {
            let levels: Vec<Level> = flat
                .chunks_exact(4)
                .map(|step| {
                    let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
                    Level {
                        allowed: step[0] == 1,
                        retry_after: micros(step[1]),
                        remaining: u32::try_from(step[2]).unwrap_or(0),
                        reset: micros(step[3]),
                    }
                })
                .collect();
            // A reply of another shape is a failure like no reply.
            (levels.len() == takes.len()).then_some(levels)
        });
        match (levels, outage) {
            (Some(levels), _) => Some(levels),
            (None, Outage::DecideLocally) => Some(self.local.take_all(takes)),
            (None, Outage::Refuse) => None,
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
    async fn the_combined_script_takes_all_or_nothing() {
        let Some(limiter) = limiter().await else { return };
        let take = |key: &str, per_minute: u32, burst: u32, cost: u32| Take {
            key: key.into(),
            quota: Quota::per(Duration::from_secs(60), per_minute, burst).unwrap(),
            cost,
        };
        let takes = [take("{t}:requests", 60, 10, 1), take("{t}:key", 1, 2, 1), take("{t}:cost", 600, 600, 100)];
        for remaining in [1, 0] {
            let levels = limiter.acquire_all(&takes, Outage::Refuse).await.expect("Redis answers");
            assert!(levels.iter().all(|l| l.allowed));
            assert_eq!(levels[1].remaining, remaining);
        }
        let refused = limiter.acquire_all(&takes, Outage::Refuse).await.unwrap();
        assert_eq!(refused.iter().map(|l| l.allowed).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(secs_of(refused[1].retry_after), 60);
        assert_eq!((refused[0].remaining, refused[2].remaining), (8, 400), "nothing taken from the others");
        assert_eq!(secs_of(refused[2].reset), 20, "two takes of 100 at 10/s: whole again in 20 s");
        // The memory limiter, given the same takes, decides the same.
        let memory = MemoryLimiter::new();
        for _ in 0..2 {
            memory.acquire_all(&takes, Outage::Refuse).await.unwrap();
        }
        let local = memory.acquire_all(&takes, Outage::Refuse).await.unwrap();
        assert_eq!(
            local.iter().map(|l| (l.allowed, l.remaining)).collect::<Vec<_>>(),
            [(true, 8), (false, 0), (true, 400)]
        );
    }

    fn secs_of(d: Duration) -> u64 {
        d.as_secs_f64().round() as u64
    }

    #[tokio::test]
    async fn an_unreachable_redis_refuses_or_decides_locally_as_told() {
        // Nothing listens on port 1: every call fails at once.
        let limiter = RedisLimiter::connect("redis://127.0.0.1:1", "test-outage").await.expect("a valid URL");
        let takes = [Take { key: "k".into(), quota: Quota::per(Duration::from_secs(60), 1, 1).unwrap(), cost: 1 }];
        assert_eq!(limiter.acquire_all(&takes, Outage::Refuse).await, None);
        let local = limiter.acquire_all(&takes, Outage::DecideLocally).await.expect("decided locally");
        assert!(local[0].allowed);
        assert!(!limiter.acquire_all(&takes, Outage::DecideLocally).await.unwrap()[0].allowed, "and held locally");
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
