//! Throttling: how many times, how fast, a client may try something.
//!
//! Two questions, answered by one `Limiter`:
//! - *rate* ("at most 30 a minute, 10 at once"): GCRA (`gcra`), one integer per key, exact
//!   at any rate and over any window. The tenancy plans' request rates and cost budgets
//!   (`tenancy::limits`) use it through `Limiter::acquire_all`: several buckets (tenant, key,
//!   cost) taken all or nothing in one atomic step;
//! - *backoff* ("after 5 failures, wait 1 s, then 2 s, 4 s… up to 15 min"): `backoff`, two
//!   integers per key, reset by a success.
//!
//! Both are pure functions of "now" so that the two limiters compute exactly the same thing:
//! `memory::MemoryLimiter` in process (no `REDIS_URL`: one replica), and
//! `redis::RedisLimiter` (atomic Lua scripts on Redis's clock, shared by every replica,
//! falling back to the in-process limiter, within 250 ms, when Redis does not answer: never
//! failing open, never making a login wait on a dead Redis; for the plan limits the
//! deployment may choose to refuse instead, `FINQL_RATE_LIMIT_REDIS_OUTAGE=refuse`). GCRA rather than a sliding
//! window: one integer instead of a log or two counters, no burst of twice the rate across a
//! window edge, and a cost per request (what the tenancy plans' cost budgets need); `Decision`
//! carries `retry_after` and `remaining`, what `Retry-After` and `RateLimit` headers need.
//!
//! `AuthThrottle` is the policy on top, applied by the `signUp`, `login` and `refreshToken`
//! resolvers to every call, so each alias in a document and each operation of a batch counts,
//! and so do parallel requests on any replica:
//! - `login`, per client address (GCRA), then per account (backoff), both *before* the
//!   password is checked: a refused attempt costs no argon2 time, and answers the same for a
//!   known, an unknown and a malformed email (the account key is the normalised email, whether
//!   or not an account has it). The attempt is counted when it starts, so concurrent guesses
//!   cannot all slip through before the first one fails;
//! - `signUp` and `refreshToken`, per client address (GCRA).
//!
//! Why a delay and not a lock-out: a lock-out lets anyone lock anyone out. Here the owner of a
//! targeted account waits at most the current delay (15 min at worst), refused attempts do not
//! lengthen it, and the right password after the wait clears it. The per-account count is what
//! stops guessing spread over many addresses (a botnet); the per-address rate is what stops
//! one address trying one password on many accounts. `signUp` still says "an account with this
//! email already exists" (a person needs to know): that reveals whether an email has an
//! account, at the sign-up rate of one address (5 an hour by default), where `login` reveals
//! nothing.
//!
//! Keys never contain an email or an address in clear: each is a keyed hash (SHA-256 under a
//! key derived from the JWT secret, which every replica shares), so Redis holds no personal
//! data and the keys cannot be reversed by hashing a list of known emails.

/// The client's address behind trusted proxies (`FINQL_TRUSTED_PROXIES`), and the unit an
/// address limit applies to.
pub mod address;
/// The throttling policy for `login`, `signUp` and `refreshToken`.
mod auth;
/// Exponential delay after failures (per account).
pub mod backoff;
/// Rate limits (GCRA).
pub mod gcra;
/// The in-process limiter.
pub mod memory;
/// The Redis limiter (shared by replicas).
pub mod redis;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

pub use auth::{AuthThrottle, ThrottleSettings, defaults};
pub use backoff::Backoff;
pub use gcra::Quota;

/// What a limiter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// How long until the same request would be allowed (zero when allowed).
    pub retry_after: Duration,
    /// For a rate: requests still allowed now. For a backoff: attempts before delays begin.
    pub remaining: u32,
}

impl Decision {
    fn from_us(allowed: bool, retry_after_us: u64, remaining: u32) -> Self {
        Self { allowed, retry_after: Duration::from_micros(retry_after_us), remaining }
    }
}

/// One bucket of a combined take ([`Limiter::acquire_all`]): `cost` units from `key` under
/// `quota`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    pub key: String,
    pub quota: Quota,
    pub cost: u32,
}

/// What a combined take found in one of its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Whether this bucket had room (the take as a whole succeeds only if every bucket had).
    pub allowed: bool,
    /// How long until this bucket would have room for its cost (zero when it has).
    pub retry_after: Duration,
    /// Units of cost 1 still available in this bucket now, after the take if it succeeded.
    pub remaining: u32,
    /// How long until this bucket is whole again (its full burst available).
    pub reset: Duration,
}

/// What a shared limiter does when its store does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// Decide in process (limits then hold per replica).
    DecideLocally,
    /// Decide nothing: `acquire_all` answers `None`, and the caller refuses.
    Refuse,
}

impl Level {
    fn from_step(step: &gcra::Step) -> Self {
        Self {
            allowed: step.allowed,
            retry_after: Duration::from_micros(step.retry_after_us),
            remaining: step.remaining,
            reset: Duration::from_micros(step.ttl_us),
        }
    }
}

/// Where throttling state lives. Keys are opaque strings chosen by the caller; each operation
/// is atomic for its key (concurrent callers, on any replica sharing the store, never both see
/// the old state).
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// GCRA: takes `cost` units from `key`'s allowance under `quota`. A refused request takes
    /// nothing.
    async fn acquire(&self, key: &str, quota: Quota, cost: u32) -> Decision;
    /// Backoff: counts an attempt on `key` unless it is blocked, and blocks it for the delay
    /// `policy` sets after that many attempts. A refused attempt changes nothing.
    async fn attempt(&self, key: &str, policy: Backoff) -> Decision;
    /// Clears `key` (a success ends the failures).
    async fn forget(&self, key: &str);
    /// GCRA on several buckets at once, all or nothing: when every bucket has room for its
    /// cost, each takes it; when one has not, none takes anything (a request refused by its
    /// key's rate does not spend its tenant's). One atomic step (one Redis script), so the
    /// buckets never disagree. `None` only when the shared store did not answer and `outage`
    /// is [`Outage::Refuse`].
    async fn acquire_all(&self, takes: &[Take], outage: Outage) -> Option<Vec<Level>>;
}

/// The limiter for this deployment: Redis when `REDIS_URL` is set, in process otherwise.
pub async fn build_limiter(redis_url: Option<&str>, namespace: &str) -> anyhow::Result<Arc<dyn Limiter>> {
    Ok(match redis_url {
        Some(url) => Arc::new(redis::RedisLimiter::connect(url, namespace).await?),
        None => Arc::new(memory::MemoryLimiter::new()),
    })
}
