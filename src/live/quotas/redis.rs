//! The live quotas' shared counts in Redis: one sorted set per tenant and quota, members scored
//! by their expiry in Redis's clock (so replicas' clocks never matter).
//!
//! # Keys (under `FINQL_CACHE_NAMESPACE`)
//! - `{ns}:live:quota:connections:{tenant}`: members `{replica}/{n}`, one per open connection;
//! - `{ns}:live:quota:symbols:{tenant}`: members `{symbol}|{replica}`, one per symbol a replica
//!   follows for the tenant (the distinct symbols are the members' symbol parts).
//!
//! Each decision is one script: drop expired members, count, refuse or add. Each replica
//! renews its members every third of `FINQL_LIVE_LEASE_MS` (re-adding any that Redis lost:
//! they are real holdings); a replica that dies stops renewing, so its members stop counting
//! one lease after its last renewal. Both keys also expire a lease after their last write, so a
//! tenant that stops using live data leaves nothing behind.
//!
//! Releases are sent to the renewal task (a guard's `Drop` cannot wait on Redis). A symbol's
//! release and a new admission of the same symbol on this replica are ordered by
//! [`RedisQuotas::order`], and the release removes the member only if the ledger still holds
//! nothing of it: otherwise a late release could remove what a new subscription just added.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use redis::{Cmd, aio::ConnectionManager};
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{HoldingsSnapshot, LiveQuotas};
use crate::{config::Config, resilience::redis::RedisGuard};

/// Admit one connection if the tenant is under its limit. KEYS[1] the set; ARGV member, max,
/// TTL in ms. Answers {admitted (0|1), held (after admission)}.
const ACQUIRE_CONNECTION: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, held + 1}
";

/// Admit symbols (all or none) if the tenant's distinct symbols stay within its limit.
/// KEYS[1] the set; ARGV replica, max, TTL in ms, then the symbols. Answers {admitted, held}.
const ACQUIRE_SYMBOLS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local distinct, held = {}, 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local symbol = string.match(member, '^(.*)|[^|]*$')
  if symbol and not distinct[symbol] then distinct[symbol] = true; held = held + 1 end
end
local fresh = 0
for i = 4, #ARGV do
  if not distinct[ARGV[i]] then distinct[ARGV[i]] = true; fresh = fresh + 1 end
end
if held + fresh > tonumber(ARGV[2]) then return {0, held} end
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i] .. '|' .. ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, held + fresh}
";

/// Renew (or restore) members. KEYS[1] the set; ARGV TTL in ms, then the members.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return #ARGV - 1
";

/// A holding this replica gave back, for the renewal task to remove from Redis.
enum Release {
    Connection(Uuid, u64),
    Symbols(Uuid, Vec<String>),
}

/// The Redis side of [`LiveQuotas`]. Cheap to clone.
#[derive(Clone)]
pub struct RedisQuotas {
    inner: Arc<Shared>,
}

struct Shared {
    conn: ConnectionManager,
    /// Bounds every call (`FINQL_REDIS_TIMEOUT_MS`) and trips on an outage.
    guard: RedisGuard,
    /// `{ns}:live:quota:`.
    prefix: String,
    replica: String,
    /// How long a member counts without renewal (`FINQL_LIVE_LEASE_MS`).
    ttl: Duration,
    order: AsyncMutex<()>,
    releases: mpsc::UnboundedSender<Release>,
    pending: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Release>>>,
}

/// A script call: `EVAL source 1 key` (the scripts are small; the throttle sends its scripts
/// the same way), arguments to be appended.
fn eval(source: &str, key: String) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source).arg(1).arg(key);
    cmd
}

impl RedisQuotas {
    /// Sets up the connection without waiting for Redis (an outage follows the deployment's
    /// outage mode). Fails only on an invalid URL.
    pub async fn connect(url: &str, config: &Config) -> anyhow::Result<Self> {
        let guard = RedisGuard::new(config.resilience.redis_timeout, config.resilience.breaker());
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let conn = guard.connection(client).context("setting up the Redis connection (REDIS_URL)")?;
        let (releases, pending) = mpsc::unbounded_channel();
        Ok(Self {
            inner: Arc::new(Shared {
                conn,
                guard,
                prefix: format!("{}:live:quota:", config.cache_namespace),
                replica: config.live_replicas.replica_id.clone(),
                ttl: config.live_replicas.lease_ttl,
                order: AsyncMutex::new(()),
                releases,
                pending: std::sync::Mutex::new(Some(pending)),
            }),
        })
    }

    fn key(&self, kind: &str, tenant: Uuid) -> String {
        format!("{}{kind}:{tenant}", self.inner.prefix)
    }

    fn connection_member(&self, id: u64) -> String {
        format!("{}/{id}", self.inner.replica)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.inner.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Held while this replica decides on, or releases, symbols.
    pub(super) async fn order(&self) -> AsyncMutexGuard<'_, ()> {
        self.inner.order.lock().await
    }

    /// `Some(Ok)` admitted, `Some(Err(held))` refused, `None` Redis did not answer.
    pub(super) async fn acquire_connection(&self, tenant: Uuid, id: u64, max: u32) -> Option<Result<(), u64>> {
        let mut invocation = eval(ACQUIRE_CONNECTION, self.key("connections", tenant));
        invocation.arg(self.connection_member(id)).arg(max).arg(self.ttl_ms());
        let mut conn = self.inner.conn.clone();
        let answer = self.inner.guard.run(invocation.query_async::<(i64, i64)>(&mut conn)).await;
        decision(answer, "admitting a connection")
    }

    /// Like [`Self::acquire_connection`], for symbols this replica does not follow yet.
    pub(super) async fn acquire_symbols(&self, tenant: Uuid, symbols: &[String], max: u32) -> Option<Result<(), u64>> {
        let mut invocation = eval(ACQUIRE_SYMBOLS, self.key("symbols", tenant));
        invocation.arg(&self.inner.replica).arg(max).arg(self.ttl_ms());
        for symbol in symbols {
            invocation.arg(symbol);
        }
        let mut conn = self.inner.conn.clone();
        let answer = self.inner.guard.run(invocation.query_async::<(i64, i64)>(&mut conn)).await;
        decision(answer, "admitting symbols")
    }

    pub(super) fn release_connection(&self, tenant: Uuid, id: u64) {
        // The task may have stopped (shutdown): the member then expires with its lease.
        let _ = self.inner.releases.send(Release::Connection(tenant, id));
    }

    pub(super) fn release_symbols(&self, tenant: Uuid, symbols: Vec<String>) {
        let _ = self.inner.releases.send(Release::Symbols(tenant, symbols));
    }

    /// Starts the task that renews this replica's members every third of a lease and removes
    /// released ones, until `shutdown` (then it removes everything this replica still holds).
    pub(super) fn spawn_renewal(&self, quotas: LiveQuotas, shutdown: CancellationToken) {
        let pending = self.inner.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let Some(mut releases) = pending else { return };
        let redis = self.clone();
        tokio::spawn(async move {
            let mut heartbeat = tokio::time::interval(redis.inner.ttl / 3);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = heartbeat.tick() => redis.renew_all(&quotas).await,
                    Some(release) = releases.recv() => redis.release(&quotas, release).await,
                    () = shutdown.cancelled() => break,
                }
            }
            redis.remove_all(&quotas).await;
        });
    }

    async fn renew_all(&self, quotas: &LiveQuotas) {
        let HoldingsSnapshot { connections, symbols } = quotas.holdings().snapshot();
        let ttl = self.ttl_ms();
        for (tenant, ids) in connections {
            let members = ids.into_iter().map(|id| self.connection_member(id));
            self.renew(self.key("connections", tenant), ttl, members).await;
        }
        for (tenant, held) in symbols {
            let members = held.into_iter().map(|symbol| format!("{symbol}|{}", self.inner.replica));
            self.renew(self.key("symbols", tenant), ttl, members).await;
        }
    }

    async fn release(&self, quotas: &LiveQuotas, release: Release) {
        match release {
            Release::Connection(tenant, id) => {
                self.remove(self.key("connections", tenant), [self.connection_member(id)]).await
            }
            Release::Symbols(tenant, symbols) => {
                let _order = self.order().await;
                // A symbol subscribed again since its release was sent stays.
                let gone: Vec<String> = {
                    let holdings = quotas.holdings();
                    symbols.into_iter().filter(|s| holdings.symbol_count(tenant, s) == 0).collect()
                };
                let members: Vec<String> = gone.iter().map(|s| format!("{s}|{}", self.inner.replica)).collect();
                if !members.is_empty() {
                    self.remove(self.key("symbols", tenant), members).await;
                }
            }
        }
    }

    /// On shutdown: what this replica holds stops counting now rather than a lease later.
    async fn remove_all(&self, quotas: &LiveQuotas) {
        let HoldingsSnapshot { connections, symbols } = quotas.holdings().snapshot();
        for (tenant, ids) in connections {
            let members: Vec<String> = ids.into_iter().map(|id| self.connection_member(id)).collect();
            self.remove(self.key("connections", tenant), members).await;
        }
        for (tenant, held) in symbols {
            let members: Vec<String> = held.into_iter().map(|s| format!("{s}|{}", self.inner.replica)).collect();
            self.remove(self.key("symbols", tenant), members).await;
        }
    }

    async fn remove(&self, key: String, members: impl IntoIterator<Item = String>) {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(key);
        for member in members {
            zrem.arg(member);
        }
        let mut conn = self.inner.conn.clone();
        if let Err(err) = self.inner.guard.run(zrem.query_async::<i64>(&mut conn)).await {
            // The member expires with its lease instead.
            tracing::debug!(error = %err, "live quotas: Redis failed while releasing");
        }
    }

    async fn renew(&self, key: String, ttl: u64, members: impl Iterator<Item = String>) {
        let mut invocation = eval(RENEW, key);
        invocation.arg(ttl);
        for member in members {
            invocation.arg(member);
        }
        let mut conn = self.inner.conn.clone();
        if let Err(err) = self.inner.guard.run(invocation.query_async::<i64>(&mut conn)).await {
            tracing::debug!(error = %err, "live quotas: Redis failed while renewing");
        }
    }
}

fn decision(
    answer: Result<(i64, i64), crate::resilience::redis::RedisUnavailable>,
    doing: &str,
) -> Option<Result<(), u64>> {
    match answer {
        Ok((1, _)) => Some(Ok(())),
        Ok((_, held)) => Some(Err(u64::try_from(held).unwrap_or(0))),
        // An open breaker was logged when it opened (`resilience`): once, not per decision.
        Err(crate::resilience::redis::RedisUnavailable::Open) => None,
        Err(err) => {
            tracing::warn!(error = %err, "live quotas: Redis failed while {doing}; deciding by the outage mode");
            None
        }
    }
}
