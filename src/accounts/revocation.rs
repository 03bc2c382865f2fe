//! Ended sessions: the set of session ids (`sid` claims) whose access tokens must stop working
//! before they expire.
//!
//! An access token is a self-contained JWT: checking it needs no database, which is why every
//! request can afford it. The price is that logging out (or a refresh-token reuse, which
//! revokes the whole family) used to leave the family's access tokens working for the rest of
//! their lifetime. Every access token now carries `sid`, the id of its refresh-token family,
//! and a revoked family's id goes into this set until the last token that can carry it has
//! expired (access lifetime + leeway + a margin). Checking a token is then signature + claims
//! + one hash-map lookup, all in memory: no Redis round trip per request.
//!
//! Sharing between replicas (when `REDIS_URL` is set), behind `SharedRevocations`:
//! - a revocation is a member of the sorted set `{namespace}:sessions:revoked`, scored by the
//!   time (ms) it can be forgotten, written together (MULTI) with a new random value of
//!   `{namespace}:sessions:version`;
//! - every replica reads the version every `POLL_INTERVAL` and, when it changed, reloads the
//!   set's live members and merges them into its own. A random version rather than a counter
//!   (INCR): a Redis that restarted empty would count again from 1 and a replica that had seen
//!   "1" before would miss the next revocation. Polling rather than pub/sub: a lost message (a
//!   reconnect) cannot lose a revocation, and the cost is one GET per replica per poll;
//! - the merge only adds: a Redis outage or restart never un-revokes anything a replica knows.
//!   Entries a replica knows that are missing from a reloaded set (Redis restarted empty) are
//!   written back, so replicas started later learn them too;
//! - a revocation that could not be written (Redis down) is kept and retried on every poll,
//!   and holds on the replica that took it at once;
//! - every Redis call goes through a `RedisGuard` (a short timeout and a circuit breaker):
//!   requests never wait on Redis (they only read the in-memory set), `logout` waits at most
//!   `REDIS_TIMEOUT`, and not at all while the breaker is open (Redis failed
//!   `FAILURES_FOR_OUTAGE` times in a row). Polls go on every `POLL_INTERVAL` during an
//!   outage; refused at once while the breaker is open, the first after each `COOL_DOWN`
//!   probes Redis, so a Redis that returns is used again within a second.
//!
//! Without Redis the set is in memory only: exact for one process.
//!
//! Connections that must end when their session does (WebSockets) watch [`Revocations::watch`]:
//! it changes each time the set grows, and they check their own `sid` then.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, Weak},
    time::Duration,
};

use anyhow::Context;
use chrono::Utc;
use rand::RngCore;
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::resilience::{breaker::BreakerConfig, redis::RedisGuard};

/// How often each replica looks for revocations made elsewhere: four times a second keeps the
/// effect of a logout on other replicas well within a second, for one small GET each time.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Redis must answer fast or not at all: a slow Redis must not hold a logout, nor delay the
/// next poll by more than this (the guard's call timeout, which also bounds connecting).
const REDIS_TIMEOUT: Duration = Duration::from_millis(300);
/// Failed calls in a row after which the breaker opens and logouts stop waiting on Redis: one
/// slow answer is retried at the next poll, three (about a second of polls) are an outage.
const FAILURES_FOR_OUTAGE: u32 = 3;
/// How long the open breaker refuses calls before one probes Redis. With polls every 250 ms,
/// a Redis that returns is found again within `COOL_DOWN` + one poll (750 ms), so revocations
/// made during the outage reach the other replicas within about a second of its return. Any
/// shorter and the breaker would spare a dead Redis (and logouts) almost nothing.
const COOL_DOWN: Duration = Duration::from_millis(500);

/// Kept beyond the last possible expiry of a revoked family's tokens: covers a `refreshToken`
/// that was already past its checks when the family was revoked and signs its access token a
/// moment later.
const MARGIN: Duration = Duration::from_secs(60);

/// The revoked session ids, with the time (Unix ms) each can be forgotten. Cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    revoked: RwLock<HashMap<Uuid, i64>>,
    /// Bumped every time the set grows.
    changed: watch::Sender<u64>,
    /// How long a revocation is kept: the longest a token of the session can still be valid.
    keep: Duration,
    shared: Option<Arc<dyn SharedRevocations>>,
    /// Revocations not yet written to the shared set (Redis was unreachable).
    pending: Mutex<HashMap<Uuid, i64>>,
}

/// The set as shared by replicas. One implementation: Redis ([`RedisRevocations`]). Each call
/// must be bounded (a short timeout) by the implementation: callers do not add their own.
#[async_trait::async_trait]
pub trait SharedRevocations: Send + Sync {
    /// Adds revocations (session id, forget-after Unix ms) and changes the version.
    async fn add(&self, entries: &[(Uuid, i64)]) -> anyhow::Result<()>;
    /// A value that changes whenever the set does (`None`: no set yet, or it was lost).
    async fn version(&self) -> anyhow::Result<Option<String>>;
    /// Every revocation still in force at `now_ms`.
    async fn load(&self, now_ms: i64) -> anyhow::Result<Vec<(Uuid, i64)>>;
}

impl Revocations {
    /// Shared through Redis when `redis_url` is set, in memory otherwise. `keep` is how long a
    /// token of a revoked session can still be accepted (access lifetime + leeway).
    pub async fn connect(redis_url: Option<&str>, namespace: &str, keep: Duration) -> anyhow::Result<Self> {
        let shared: Option<Arc<dyn SharedRevocations>> = match redis_url {
            Some(url) => Some(Arc::new(RedisRevocations::connect(url, namespace)?)),
            None => None,
        };
        Ok(Self::with_shared(keep, shared))
    }

    /// An in-memory set (one process), keeping each revocation for `keep`.
    pub fn local(keep: Duration) -> Self {
        Self::with_shared(keep, None)
    }

    /// A set shared through `shared`; call [`Revocations::spawn_sync`] to follow it.
    pub fn with_shared(keep: Duration, shared: Option<Arc<dyn SharedRevocations>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                revoked: RwLock::new(HashMap::new()),
                changed: watch::Sender::new(0),
                keep: keep + MARGIN,
                shared,
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether the session was revoked (and tokens carrying it must be refused).
    pub fn is_revoked(&self, session: Uuid) -> bool {
        let now = now_ms();
        read(&self.inner.revoked).get(&session).is_some_and(|until| *until > now)
    }

    /// Revokes a session here at once, and on every replica within a poll (when shared).
    /// Never fails: a revocation Redis could not take is retried by the sync task.
    pub async fn revoke(&self, session: Uuid) {
        let until = now_ms() + self.inner.keep.as_millis() as i64;
        self.merge([(session, until)]);
        if let Some(shared) = &self.inner.shared {
            let entry = [(session, until)];
            if let Err(err) = shared.add(&entry).await {
                tracing::warn!(error = %err, %session, "revocation not shared yet (Redis); retrying");
                lock(&self.inner.pending).insert(session, until);
            }
        }
    }

    /// Changes each time the set grows: watchers then check their own session.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Follows the shared set until `shutdown` (or until every handle is dropped). Does nothing
    /// for an in-memory set.
    pub fn spawn_sync(&self, shutdown: CancellationToken) {
        let Some(shared) = self.inner.shared.clone() else { return };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sync = Follower { shared, seen: None, healthy: true };
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let Some(inner) = Weak::upgrade(&weak) else { return };
                let result = sync.once(&Self { inner }).await;
                sync.report(result);
            }
        });
    }

    /// Adds entries; returns whether the set grew (and wakes the watchers if so).
    fn merge(&self, entries: impl IntoIterator<Item = (Uuid, i64)>) -> bool {
        let now = now_ms();
        let mut grew = false;
        {
            let mut revoked = write(&self.inner.revoked);
            revoked.retain(|_, until| *until > now);
            for (session, until) in entries {
                if until <= now {
                    continue;
                }
                let known = revoked.entry(session).or_insert(0);
                if *known < until {
                    grew |= *known <= now;
                    *known = until;
                }
            }
        }
        if grew {
            self.inner.changed.send_modify(|generation| *generation += 1);
        }
        grew
    }
}

/// The sync task's state.
struct Follower {
    shared: Arc<dyn SharedRevocations>,
    /// The version last loaded.
    seen: Option<Option<String>>,
    /// Whether the last round worked (errors are logged on the change only).
    healthy: bool,
}

impl Follower {
    async fn once(&mut self, revocations: &Revocations) -> anyhow::Result<()> {
        let inner = &revocations.inner;
        let pending: Vec<(Uuid, i64)> = lock(&inner.pending).iter().map(|(k, v)| (*k, *v)).collect();
        if !pending.is_empty() {
            self.shared.add(&pending).await?;
            let mut still = lock(&inner.pending);
            for (session, _) in &pending {
                still.remove(session);
            }
        }
        let version = self.shared.version().await?;
        if self.seen.as_ref() == Some(&version) {
            return Ok(());
        }
        let now = now_ms();
        let loaded = self.shared.load(now).await?;
        let remote: HashMap<Uuid, i64> = loaded.iter().copied().collect();
        revocations.merge(loaded);
        // What this replica knows and Redis lost (it restarted empty) goes back, so replicas
        // that start later learn it too.
        let missing: Vec<(Uuid, i64)> = read(&inner.revoked)
            .iter()
            .filter(|(session, until)| **until > now && !remote.contains_key(session))
            .map(|(k, v)| (*k, *v))
            .collect();
        if !missing.is_empty() {
            lock(&inner.pending).extend(missing);
        }
        self.seen = Some(version);
        Ok(())
    }

    fn report(&mut self, result: anyhow::Result<()>) {
        match result {
            Ok(()) if !self.healthy => {
                tracing::info!("session revocations: Redis reachable again");
                self.healthy = true;
            }
            Err(err) if self.healthy => {
                tracing::warn!(error = %err, "session revocations: Redis unreachable; using the last known set");
                self.healthy = false;
            }
            _ => {}
        }
    }
}

/// The set in Redis: see the module doc for the keys.
pub struct RedisRevocations {
    conn: ConnectionManager,
    /// Bounds every call and keeps Redis's health (see the module doc).
    guard: RedisGuard,
    set_key: String,
    version_key: String,
}

impl RedisRevocations {
    /// Sets up the connection without waiting for Redis: the sync task's first poll (at once)
    /// connects, and a Redis that is down only means the set is not shared until it is up.
    /// Fails only on an invalid URL.
    pub fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let guard =
            RedisGuard::new(REDIS_TIMEOUT, BreakerConfig { failures: FAILURES_FOR_OUTAGE, cool_down: COOL_DOWN });
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let conn = guard.connection(client).context("setting up the Redis connection (REDIS_URL)")?;
        Ok(Self {
            conn,
            guard,
            set_key: format!("{namespace}:sessions:revoked"),
            version_key: format!("{namespace}:sessions:version"),
        })
    }
}

#[async_trait::async_trait]
impl SharedRevocations for RedisRevocations {
    async fn add(&self, entries: &[(Uuid, i64)]) -> anyhow::Result<()> {
        let Some(last) = entries.iter().map(|(_, until)| *until).max() else { return Ok(()) };
        let now = now_ms();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (session, until) in entries {
            pipe.cmd("ZADD").arg(&self.set_key).arg("GT").arg(*until).arg(session.to_string()).ignore();
        }
        // Forget what expired; the keys themselves go once nothing in them can matter.
        pipe.cmd("ZREMRANGEBYSCORE").arg(&self.set_key).arg("-inf").arg(now).ignore();
        let keep = (last - now).max(1);
        pipe.cmd("PEXPIRE").arg(&self.set_key).arg(keep).arg("GT").ignore();
        pipe.cmd("PEXPIRE").arg(&self.set_key).arg(keep).arg("NX").ignore();
        let version = rand::rng().next_u64().to_string();
        pipe.cmd("SET").arg(&self.version_key).arg(version).arg("PX").arg(keep).ignore();
        let mut conn = self.conn.clone();
        self.guard.run(pipe.query_async::<()>(&mut conn)).await?;
        Ok(())
    }

    async fn version(&self) -> anyhow::Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(self.guard.run(redis::cmd("GET").arg(&self.version_key).query_async(&mut conn)).await?)
    }

    async fn load(&self, now_ms: i64) -> anyhow::Result<Vec<(Uuid, i64)>> {
        let mut conn = self.conn.clone();
        let mut range = redis::cmd("ZRANGE");
        range.arg(&self.set_key).arg(format!("({now_ms}")).arg("+inf").arg("BYSCORE").arg("WITHSCORES");
        let members: Vec<(String, f64)> = self.guard.run(range.query_async(&mut conn)).await?;
        Ok(members.into_iter().filter_map(|(id, until)| Some((Uuid::parse_str(&id).ok()?, until as i64))).collect())
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

// Poison-tolerant locks: a panic elsewhere must not turn every later token check into one.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared set in memory: what Redis would hold, with a switch to make it fail.
    #[derive(Default)]
    struct FakeShared {
        set: Mutex<HashMap<Uuid, i64>>,
        version: Mutex<Option<String>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl FakeShared {
        fn check(&self) -> anyhow::Result<()> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) { anyhow::bail!("down") } else { Ok(()) }
        }
    }

    #[async_trait::async_trait]
    impl SharedRevocations for FakeShared {
        async fn add(&self, entries: &[(Uuid, i64)]) -> anyhow::Result<()> {
            self.check()?;
            lock(&self.set).extend(entries.iter().copied());
            *lock(&self.version) = Some(Uuid::new_v4().to_string());
            Ok(())
        }
        async fn version(&self) -> anyhow::Result<Option<String>> {
            self.check()?;
            Ok(lock(&self.version).clone())
        }
        async fn load(&self, now_ms: i64) -> anyhow::Result<Vec<(Uuid, i64)>> {
            self.check()?;
            Ok(lock(&self.set).iter().filter(|(_, u)| **u > now_ms).map(|(k, v)| (*k, *v)).collect())
        }
    }

    #[tokio::test]
    async fn revocations_reach_other_replicas_survive_outages_and_are_written_back() {
        let shared = Arc::new(FakeShared::default());
        let a = Revocations::with_shared(Duration::from_secs(60), Some(shared.clone()));
        let b = Revocations::with_shared(Duration::from_secs(60), Some(shared.clone()));
        let mut b_sync = Follower { shared: shared.clone(), seen: None, healthy: true };
        let mut watch = b.watch();
        let session = Uuid::new_v4();
        a.revoke(session).await;
        assert!(a.is_revoked(session), "at once on the replica that revoked");
        assert!(!b.is_revoked(session));
        b_sync.once(&b).await.unwrap();
        assert!(b.is_revoked(session), "after one poll elsewhere");
        assert!(watch.has_changed().unwrap(), "watchers are woken");
        watch.mark_unchanged();

        // Redis down: a revocation holds here, and is written once Redis is back.
        shared.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let later = Uuid::new_v4();
        b.revoke(later).await;
        assert!(b.is_revoked(later));
        assert!(b_sync.once(&b).await.is_err());
        assert!(b.is_revoked(session), "the last known set is kept");
        shared.down.store(false, std::sync::atomic::Ordering::SeqCst);
        b_sync.once(&b).await.unwrap();
        assert!(lock(&shared.set).contains_key(&later));

        // Redis restarted empty: what a replica knows is written back.
        lock(&shared.set).clear();
        *lock(&shared.version) = None;
        b_sync.once(&b).await.unwrap();
        assert!(b.is_revoked(session), "nothing is un-revoked");
        b_sync.once(&b).await.unwrap();
        assert!(lock(&shared.set).contains_key(&session), "written back");
        assert!(!a.is_revoked(Uuid::new_v4()));
    }

    /// A Redis that accepts connections and never answers: a logout waits at most the call
    /// timeout, then not at all once the breaker is open (the revocation holds here and waits
    /// to be written); polls fail at once; after the cool-down one call probes Redis again.
    #[tokio::test(start_paused = true)]
    async fn a_silent_redis_bounds_logouts_and_is_probed_again_after_the_cool_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let shared = Arc::new(RedisRevocations::connect(&url, "test").unwrap());
        let set = Revocations::with_shared(Duration::from_secs(60), Some(shared.clone()));
        let timed_revoke = async |session| {
            let started = tokio::time::Instant::now();
            set.revoke(session).await;
            assert!(set.is_revoked(session), "holds here at once");
            started.elapsed()
        };
        for _ in 0..FAILURES_FOR_OUTAGE {
            let took = timed_revoke(Uuid::new_v4()).await;
            assert!(took > Duration::ZERO && took <= REDIS_TIMEOUT, "{took:?}");
        }
        assert_eq!(shared.guard.snapshot().opened, 1, "an outage after {FAILURES_FOR_OUTAGE} failures");
        assert_eq!(timed_revoke(Uuid::new_v4()).await, Duration::ZERO, "refused without waiting");
        let mut sync = Follower { shared: shared.clone(), seen: None, healthy: true };
        let started = tokio::time::Instant::now();
        assert!(sync.once(&set).await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO, "a poll fails at once too");
        assert_eq!(lock(&set.inner.pending).len(), 4, "every revocation waits to be written");

        tokio::time::advance(COOL_DOWN).await;
        let probe = timed_revoke(Uuid::new_v4()).await;
        assert!(probe > Duration::ZERO && probe <= REDIS_TIMEOUT, "the probe went to Redis: {probe:?}");
        assert_eq!(shared.guard.snapshot().opened, 2, "the failed probe opened it again");
    }

    #[test]
    fn revocations_expire() {
        let set = Revocations::local(Duration::ZERO);
        let session = Uuid::new_v4();
        assert!(!set.merge([(session, now_ms() - 1)]));
        assert!(!set.is_revoked(session));
        assert!(set.merge([(session, now_ms() + 60_000)]));
        assert!(set.is_revoked(session));
    }
}
