//! Where registered documents are kept: in process (always), and in Redis when it is configured,
//! so that a document registered on one replica is known to all of them.
//!
//! Both are bounded whatever clients send. In process, by the total length of the texts kept
//! (moka's TinyLFU evicts by frequency, so a flood of new documents cannot push out the hot
//! ones) and by the registration TTL. In Redis, each document is a key that expires with the
//! TTL, listed in a sorted set by the time it was registered; registering past
//! `FINQL_PERSISTED_MAX_SHARED` documents deletes the oldest, in the same script, so the shared
//! store never holds more than that many documents of at most `FINQL_PERSISTED_MAX_BYTES` each.
//!
//! Redis is never a reason to fail a request: every call goes through a `RedisGuard`
//! (`FINQL_REDIS_TIMEOUT_MS` and the `redis` breaker), and a call that fails is a miss (the
//! client registers the document again, in process) or a registration kept in process only.
//! Keys: `{namespace}:persisted:doc:{hash}` and the index `{namespace}:persisted:index`.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use moka::sync::Cache;
use redis::aio::ConnectionManager;

use super::hash::DocumentHash;
use crate::resilience::redis::{RedisGuard, RedisUnavailable};

/// About this many bytes of registered document text in process: thousands of typical
/// operations, and a fixed ceiling on what endless registrations can take from one replica.
const MAX_LOCAL_BYTES: u64 = 8 * 1024 * 1024;

/// Registered documents in this process.
#[derive(Clone)]
pub struct LocalDocuments(Cache<DocumentHash, Arc<str>>);

impl LocalDocuments {
    pub fn new(ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(MAX_LOCAL_BYTES)
            .weigher(|_: &DocumentHash, text: &Arc<str>| u32::try_from(text.len()).unwrap_or(u32::MAX))
            .time_to_live(ttl)
            .build();
        Self(cache)
    }

    pub fn get(&self, hash: &DocumentHash) -> Option<Arc<str>> {
        self.0.get(hash)
    }

    pub fn insert(&self, hash: DocumentHash, text: Arc<str>) {
        self.0.insert(hash, text);
    }
}

/// The store replicas share. A trait, so that the service does not depend on Redis itself.
#[async_trait]
pub trait SharedDocuments: Send + Sync {
    /// The document registered as `hash`, if any; `Err` when the store did not answer.
    async fn get(&self, hash: &DocumentHash) -> Result<Option<String>, RedisUnavailable>;
    /// Keeps `text` as `hash` for the TTL, forgetting the oldest documents past the cap.
    async fn put(&self, hash: &DocumentHash, text: &str) -> Result<(), RedisUnavailable>;
}

/// Registers a document and trims the index: `KEYS[1]` the document, `KEYS[2]` the index;
/// `ARGV` the text, the TTL (ms), now (ms), the cap. The documents evicted are keys of the same
/// namespace, named by the index (as the revocation set's keys are, one Redis per deployment).
const PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
";

/// Documents in Redis: see the module doc for the keys and the bound.
pub struct RedisDocuments {
    conn: ConnectionManager,
    guard: RedisGuard,
    /// `{namespace}:persisted:`.
    prefix: String,
    ttl: Duration,
    max: usize,
}

impl RedisDocuments {
    /// Sets up the connection without waiting for Redis (a Redis that is down only means
    /// documents are not shared until it is up). Fails only on an invalid URL.
    pub fn connect(url: &str, namespace: &str, guard: RedisGuard, ttl: Duration, max: usize) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let conn = guard.connection(client).context("setting up the Redis connection (REDIS_URL)")?;
        Ok(Self { conn, guard, prefix: format!("{namespace}:persisted:"), ttl, max })
    }

    fn key(&self, hash: &DocumentHash) -> String {
        format!("{}doc:{hash}", self.prefix)
    }
}

#[async_trait]
impl SharedDocuments for RedisDocuments {
    async fn get(&self, hash: &DocumentHash) -> Result<Option<String>, RedisUnavailable> {
        let mut conn = self.conn.clone();
        self.guard.run(redis::cmd("GET").arg(self.key(hash)).query_async(&mut conn)).await
    }

    async fn put(&self, hash: &DocumentHash, text: &str) -> Result<(), RedisUnavailable> {
        let mut cmd = redis::cmd("EVAL");
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let now_ms = chrono::Utc::now().timestamp_millis();
        cmd.arg(PUT).arg(2).arg(self.key(hash)).arg(format!("{}index", self.prefix));
        cmd.arg(text).arg(ttl_ms).arg(now_ms).arg(self.max);
        let mut conn = self.conn.clone();
        self.guard.run(cmd.query_async::<i64>(&mut conn)).await.map(|_| ())
    }
}
