//! The in-process limiter: used when `REDIS_URL` is unset, and by the Redis limiter as its
//! fallback while Redis is unreachable.
//!
//! One map under one mutex: every operation is a few arithmetic steps on one entry, far
//! shorter than the lock hand-over itself, so sharding would buy nothing at login rates. Time
//! comes from a `Clock` (monotonic in production, a hand-advanced one in tests). The map is
//! bounded (`MAX_KEYS`): an attacker cycling through a million emails or addresses fills it,
//! and then expired entries are swept and, if that is not enough, the oldest-expiring half is
//! dropped; that forgets some throttling state (fails towards allowing) rather than growing
//! without bound.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use async_trait::async_trait;

use super::{
    Decision, Level, Limiter, Outage, Take,
    backoff::{self, Backoff},
    gcra::{self, Quota},
};

/// Keys kept at most: about 100 bytes each, so ~20 MB at worst, and far more than the distinct
/// addresses and accounts a replica sees within the failure memory in normal operation.
const MAX_KEYS: usize = 200_000;

enum Slot {
    Gcra { tat_us: u64 },
    Backoff(backoff::State),
}

struct Entry {
    slot: Slot,
    expires_at_us: u64,
}

/// Where the in-process limiter reads the time: microseconds since any fixed point.
pub trait Clock: Send + Sync + 'static {
    fn now_us(&self) -> u64;
}

/// The monotonic clock (immune to wall-clock steps), from when the limiter was made.
pub struct MonotonicClock(Instant);

impl Clock for MonotonicClock {
    fn now_us(&self) -> u64 {
        gcra::micros(self.0.elapsed())
    }
}

pub struct MemoryLimiter {
    entries: Mutex<HashMap<String, Entry>>,
    clock: Arc<dyn Clock>,
    max_keys: usize,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(MonotonicClock(Instant::now())), MAX_KEYS)
    }

    pub fn with_clock(clock: Arc<dyn Clock>, max_keys: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), clock, max_keys }
    }

    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// Runs `f` on the live entry of `key` (expired entries read as absent) and stores what
    /// it returns, with its expiry.
    fn update<T>(&self, key: &str, f: impl FnOnce(Option<&Slot>, u64) -> (T, Option<(Slot, u64)>)) -> T {
        let now = self.now_us();
        // A poisoned lock only means another request panicked mid-update of plain integers.
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = entries.get(key).filter(|e| e.expires_at_us > now).map(|e| &e.slot);
        let (result, store) = f(current, now);
        if let Some((slot, ttl_us)) = store {
            if entries.len() >= self.max_keys && !entries.contains_key(key) {
                make_room(&mut entries, now, self.max_keys);
            }
            entries.insert(key.to_owned(), Entry { slot, expires_at_us: now.saturating_add(ttl_us) });
        }
        result
    }
}

fn make_room(entries: &mut HashMap<String, Entry>, now: u64, max_keys: usize) {
    entries.retain(|_, e| e.expires_at_us > now);
    if entries.len() < max_keys {
        return;
    }
    let mut expiries: Vec<u64> = entries.values().map(|e| e.expires_at_us).collect();
    let middle = expiries.len() / 2;
    let (_, cut, _) = expiries.select_nth_unstable(middle);
    let cut = *cut;
    entries.retain(|_, e| e.expires_at_us > cut);
    tracing::warn!(kept = entries.len(), "throttle memory full: forgot the entries closest to expiry");
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn acquire(&self, key: &str, quota: Quota, cost: u32) -> Decision {
        self.update(key, |slot, now| {
            let tat = match slot {
                Some(Slot::Gcra { tat_us }) => Some(*tat_us),
                _ => None,
            };
            let step = gcra::step(tat, now, quota, cost);
            let store = step.allowed.then_some((Slot::Gcra { tat_us: step.tat_us }, step.ttl_us));
            (Decision::from_us(step.allowed, step.retry_after_us, step.remaining), store)
        })
    }

    async fn attempt(&self, key: &str, policy: Backoff) -> Decision {
        self.update(key, |slot, now| {
            let state = match slot {
                Some(Slot::Backoff(state)) => Some(*state),
                _ => None,
            };
            let step = policy.step(state, now);
            let store = step.allowed.then_some((Slot::Backoff(step.state), step.ttl_us));
            (Decision::from_us(step.allowed, step.retry_after_us, step.remaining), store)
        })
    }

    async fn forget(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }

    async fn acquire_all(&self, takes: &[Take], _outage: Outage) -> Option<Vec<Level>> {
        Some(self.take_all(takes))
    }
}

impl MemoryLimiter {
    /// [`Limiter::acquire_all`] in process: every bucket under the one lock, so the step is
    /// atomic here as the script is in Redis.
    pub(super) fn take_all(&self, takes: &[Take]) -> Vec<Level> {
        let now = self.now_us();
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tats: Vec<Option<u64>> = takes
            .iter()
            .map(|take| match entries.get(&take.key) {
                Some(Entry { slot: Slot::Gcra { tat_us }, expires_at_us }) if *expires_at_us > now => Some(*tat_us),
                _ => None,
            })
            .collect();
        let quotas: Vec<(Quota, u32)> = takes.iter().map(|take| (take.quota, take.cost)).collect();
        let (accepted, steps) = gcra::step_all(&tats, now, &quotas);
        if accepted {
            for (take, step) in takes.iter().zip(&steps) {
                if entries.len() >= self.max_keys && !entries.contains_key(&take.key) {
                    make_room(&mut entries, now, self.max_keys);
                }
                let entry =
                    Entry { slot: Slot::Gcra { tat_us: step.tat_us }, expires_at_us: now.saturating_add(step.ttl_us) };
                entries.insert(take.key.clone(), entry);
            }
        }
        steps.iter().map(Level::from_step).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        sync::atomic::{AtomicU64, Ordering},
        time::Duration,
    };

    use super::*;

    /// A clock that moves only when told.
    #[derive(Default)]
    pub(crate) struct ManualClock(AtomicU64);

    impl ManualClock {
        pub(crate) fn advance(&self, by: Duration) {
            self.0.fetch_add(gcra::micros(by), Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_us(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A limiter on a manual clock, and the clock.
    pub(crate) fn manual() -> (MemoryLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (MemoryLimiter::with_clock(clock.clone(), MAX_KEYS), clock)
    }

    fn policy() -> Backoff {
        Backoff { free: 2, base: Duration::from_secs(1), max: Duration::from_secs(4), memory: Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn backoff_follows_the_clock_and_forget_resets() {
        let (limiter, clock) = manual();
        let p = policy();
        assert!(limiter.attempt("a", p).await.allowed);
        assert!(limiter.attempt("a", p).await.allowed);
        let refused = limiter.attempt("a", p).await;
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(limiter.attempt("b", p).await.allowed, "keys are independent");
        clock.advance(Duration::from_secs(1));
        assert!(limiter.attempt("a", p).await.allowed);
        assert_eq!(limiter.attempt("a", p).await.retry_after, Duration::from_secs(2));
        limiter.forget("a").await;
        assert!(limiter.attempt("a", p).await.allowed, "a success clears the count");
    }

    #[tokio::test]
    async fn the_count_is_forgotten_after_its_memory() {
        let (limiter, clock) = manual();
        let p = policy();
        for _ in 0..2 {
            limiter.attempt("a", p).await;
        }
        clock.advance(Duration::from_secs(30));
        let remembered = limiter.attempt("a", p).await;
        assert_eq!((remembered.allowed, remembered.remaining), (true, 0), "the count is still there");
        // That third attempt blocks for 2 s; the count is kept 60 s after that.
        clock.advance(Duration::from_secs(63));
        let fresh = limiter.attempt("a", p).await;
        assert_eq!((fresh.allowed, fresh.remaining), (true, 1), "state expired: a first attempt again");
    }

    #[tokio::test]
    async fn gcra_refills_with_time() {
        let (limiter, clock) = manual();
        let quota = Quota::per(Duration::from_secs(60), 30, 3).unwrap();
        for _ in 0..3 {
            assert!(limiter.acquire("ip", quota, 1).await.allowed);
        }
        let refused = limiter.acquire("ip", quota, 1).await;
        assert_eq!((refused.allowed, refused.retry_after), (false, Duration::from_secs(2)));
        clock.advance(Duration::from_secs(2));
        assert!(limiter.acquire("ip", quota, 1).await.allowed);
    }

    #[tokio::test]
    async fn a_full_map_forgets_rather_than_grows() {
        let limiter = MemoryLimiter::with_clock(Arc::new(ManualClock::default()), 100);
        let quota = Quota::per(Duration::from_secs(60), 1, 1).unwrap();
        for i in 0..1000 {
            limiter.acquire(&format!("k{i}"), quota, 1).await;
        }
        assert!(limiter.entries.lock().unwrap().len() <= 100);
    }
}
