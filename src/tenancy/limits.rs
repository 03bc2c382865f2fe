//! The plan limits: how many requests, and how much query cost, a caller may spend.
//!
//! Every GraphQL request (each operation of an HTTP batch, each WebSocket `subscribe`) is
//! admitted here before it runs, on up to three GCRA buckets taken in one atomic step
//! (`Limiter::acquire_all`: all or nothing, one Redis script on Redis's clock when `REDIS_URL`
//! is set, so every replica spends the same allowance and the limit is exact across them):
//! - `requests`: the plan's `rate_per_second` with `burst` at once, per tenant (all its keys
//!   and users together); for anonymous callers, per client address (an IPv4 address or an
//!   IPv6 /64) under the anonymous plan;
//! - `key`: an API key's own lower rate, when it has one, on top of its tenant's;
//! - `cost`: the plan's `cost_per_minute` units of estimated query cost
//!   (`graphql::guard::demand`), refilled continuously, a whole minute's worth available at
//!   once. A request costs its estimate up front: what it would cost is known before it runs,
//!   and a refusal then costs finql nothing.
//!
//! A request whose estimate exceeds the whole minute's budget can never run: it is refused as
//! `BAD_USER_INPUT` (`reason: QUERY_TOO_COSTLY`), not told to retry. Callers without a plan
//! (invalid credentials, anonymous where the deployment has no anonymous plan) are not
//! limited here: they reach no data, and their refusal costs a cached lookup.
//!
//! When Redis does not answer (the limiter's 250 ms timeout and breaker), the deployment's
//! `FINQL_RATE_LIMIT_REDIS_OUTAGE` decides: `local` applies the same limits per replica (at
//! worst N times the plan across N replicas), `refuse` refuses with `RATE_LIMITED`
//! (`reason: LIMITER_UNAVAILABLE`) until Redis answers again.
//!
//! What was decided is reported on every response in the IETF `RateLimit-Policy` and
//! `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-09), one item per bucket:
//! `RateLimit-Policy: "requests";q=5;w=1, "cost";q=20000;w=60;qu="cost-units"` and
//! `RateLimit: "requests";r=4;t=1, "cost";r=19990;t=1`. For a GCRA bucket, `q` is the burst,
//! `w` how long the whole burst takes to refill, `r` what is left now and `t` the seconds until
//! the bucket is whole again.

use std::{net::IpAddr, sync::Arc, time::Duration};

use async_graphql::ServerError;
use sha2::{Digest, Sha256};

use crate::{
    config::{Plan, RedisOutage},
    error::ErrorCode,
    identity::{Credentials, Principal},
    throttle::{Level, Limiter, Outage, Quota, Take, address},
};

/// How long a client is told to wait when the shared limiter cannot answer (`refuse` mode):
/// the Redis limiter's breaker probes Redis again after about this long.
const OUTAGE_RETRY: Duration = Duration::from_secs(2);
/// Cost units a minute: the cost budget's period.
const COST_PERIOD: Duration = Duration::from_secs(60);

/// What a bucket limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Requests,
    /// Estimated query cost (`extensions.cost`).
    Cost,
}

/// One limit applied to a request, as `RateLimit-Policy` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `requests`, `key` or `cost` (also `extensions.policy` of a refusal).
    pub name: &'static str,
    /// Units available at once (the burst).
    pub quota: u32,
    /// Seconds the whole quota takes to refill.
    pub window_secs: u64,
    pub unit: Unit,
}

/// A policy and what its bucket holds after this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyState {
    pub policy: Policy,
    /// `None` when the shared limiter could not say (`refuse` mode during an outage).
    pub level: Option<Level>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over `policy`'s limit: come back in `retry_after`.
    Limited { policy: &'static str, retry_after: Duration },
    /// The shared limiter did not answer and the deployment refuses then.
    Unavailable { policy: &'static str },
    /// The estimate exceeds the plan's whole cost budget: no wait makes it fit.
    TooCostly { cost: u64, budget: u32 },
}

impl Refusal {
    /// How long to wait before retrying, when waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited { retry_after, .. } => Some(*retry_after),
            Self::Unavailable { .. } => Some(OUTAGE_RETRY),
            Self::TooCostly { .. } => None,
        }
    }

    /// Whether the refusal is `RATE_LIMITED` (a wait helps), not `QUERY_TOO_COSTLY`.
    pub fn is_rate_limited(&self) -> bool {
        !matches!(self, Self::TooCostly { .. })
    }

    /// The GraphQL error: `RATE_LIMITED` with `retryAfterMs` (and `retryAfter`, whole seconds,
    /// as the authentication throttle gives) and `policy`; or `BAD_USER_INPUT`
    /// `QUERY_TOO_COSTLY` with the cost and the budget.
    pub fn error(&self) -> ServerError {
        let message = match self {
            Self::Limited { policy, retry_after } => {
                format!("rate limit `{policy}` exceeded; retry in {} ms", millis(*retry_after))
            }
            Self::Unavailable { .. } => "rate limits cannot be checked right now; retry shortly".into(),
            Self::TooCostly { cost, budget } => format!(
                "query costs {cost} units, more than the plan's whole budget of {budget} a minute: ask for fewer items"
            ),
        };
        let mut error = ServerError::new(message, None);
        let ext = error.extensions.get_or_insert_with(Default::default);
        match self {
            Self::Limited { policy, retry_after } => {
                ext.set("code", ErrorCode::RateLimited.as_str());
                ext.set("retryAfterMs", millis(*retry_after));
                ext.set("retryAfter", seconds(*retry_after));
                ext.set("policy", *policy);
            }
            Self::Unavailable { policy } => {
                ext.set("code", ErrorCode::RateLimited.as_str());
                ext.set("retryAfterMs", millis(OUTAGE_RETRY));
                ext.set("retryAfter", seconds(OUTAGE_RETRY));
                ext.set("policy", *policy);
                ext.set("reason", "LIMITER_UNAVAILABLE");
            }
            Self::TooCostly { cost, budget } => {
                ext.set("code", ErrorCode::BadUserInput.as_str());
                ext.set("reason", "QUERY_TOO_COSTLY");
                ext.set("cost", *cost);
                ext.set("budget", *budget);
            }
        }
        error
    }
}

/// What the limiter decided for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// The limits that applied (none for a caller without a plan), for the headers.
    pub policies: Vec<PolicyState>,
    /// `None`: admitted.
    pub refusal: Option<Refusal>,
}

impl Admission {
    pub fn admitted(&self) -> bool {
        self.refusal.is_none()
    }

    /// The `RateLimit-Policy` and `RateLimit` field values; `None` when no limit applied.
    pub fn headers(&self) -> Option<(String, String)> {
        if self.policies.is_empty() {
            return None;
        }
        let policy = self
            .policies
            .iter()
            .map(|state| {
                let p = state.policy;
                let unit = match p.unit {
                    Unit::Requests => "",
                    Unit::Cost => ";qu=\"cost-units\"",
                };
                format!("\"{}\";q={};w={}{unit}", p.name, p.quota, p.window_secs)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let current = self
            .policies
            .iter()
            .map(|state| {
                let (remaining, reset) = match state.level {
                    Some(level) => (level.remaining, seconds(level.reset)),
                    None => (0, seconds(OUTAGE_RETRY)),
                };
                format!("\"{}\";r={remaining};t={reset}", state.policy.name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some((policy, current))
    }
}

/// Applies the plans' rate and cost limits with a [`Limiter`]. Cheap to clone.
#[derive(Clone)]
pub struct PlanLimiter {
    /// `None`: limits are off (`FINQL_PLAN_LIMITS=false`).
    limiter: Option<Arc<dyn Limiter>>,
    outage: Outage,
    /// Keys the hash of client addresses in limiter keys (no address in clear in Redis).
    salt: [u8; 32],
}

impl PlanLimiter {
    /// `secret` keys the hashes of client addresses: the same on every replica (the JWT
    /// secret is), so that replicas share an anonymous address's bucket.
    pub fn new(limiter: Arc<dyn Limiter>, outage: RedisOutage, secret: &[u8]) -> Self {
        let salt = Sha256::new().chain_update(b"finql plan limit keys\0").chain_update(secret).finalize().into();
        let outage = match outage {
            RedisOutage::Local => Outage::DecideLocally,
            RedisOutage::Refuse => Outage::Refuse,
        };
        Self { limiter: Some(limiter), outage, salt }
    }

    /// A limiter that admits everything and reports no policy (`FINQL_PLAN_LIMITS=false`).
    pub fn off() -> Self {
        Self { limiter: None, outage: Outage::DecideLocally, salt: [0; 32] }
    }

    /// Admits `operations` requests of total estimated `cost` for `principal` calling from
    /// `addr` (`None`: an in-process caller, not limited by address), or says why not. A
    /// rate-limited refusal is counted in `finql_rate_limited_total{tenant, policy}`, once per
    /// refused request (a batch is one), whichever transport asked.
    pub async fn admit(&self, principal: &Principal, addr: Option<IpAddr>, operations: u32, cost: u64) -> Admission {
        let admission = self.decide(principal, addr, operations, cost).await;
        if let Some(Refusal::Limited { policy, .. } | Refusal::Unavailable { policy }) = &admission.refusal {
            metrics::counter!("finql_rate_limited_total", "tenant" => principal.tenant_label(), "policy" => *policy)
                .increment(1);
        }
        admission
    }

    async fn decide(&self, principal: &Principal, addr: Option<IpAddr>, operations: u32, cost: u64) -> Admission {
        let (Some(limiter), Some(plan)) = (&self.limiter, &principal.plan) else { return Admission::default() };
        // Every bucket of one caller shares a Redis hash tag (`{…}`), so the script's keys sit
        // in one slot of a Redis Cluster.
        let subject = match (&principal.tenant, addr) {
            (Some(tenant), _) => format!("{{t:{}}}", tenant.id.simple()),
            (None, Some(addr)) => format!("{{a:{}}}", self.address_hash(addr)),
            (None, None) => return Admission::default(),
        };
        let mut buckets = vec![(requests_policy("requests", plan.rate_per_second, plan.burst), operations)];
        if let Credentials::ApiKey(key) = &principal.credentials
            && let Some((rate, burst)) = key.rate
        {
            buckets.push((requests_policy("key", rate, burst), operations));
        }
        let cost = match u32::try_from(cost).ok().filter(|c| *c <= plan.cost_per_minute) {
            Some(units) => units,
            None => {
                let refusal = Refusal::TooCostly { cost, budget: plan.cost_per_minute };
                let policies = buckets.iter().map(|((p, _), _)| *p).chain([cost_policy(plan).0]);
                let policies = policies.map(|policy| PolicyState { policy, level: None }).collect();
                return Admission { policies, refusal: Some(refusal) };
            }
        };
        buckets.push((cost_policy(plan), cost));
        // A bucket without a quota (a zero rate) limits nothing and is not taken.
        let buckets: Vec<(Policy, Quota, u32)> =
            buckets.into_iter().filter_map(|((policy, quota), units)| Some((policy, quota?, units))).collect();
        let key_of = |policy: &Policy| match (policy.name, &principal.credentials) {
            ("key", Credentials::ApiKey(key)) => format!("plan:{subject}:key:{}", key.id.simple()),
            (name, _) => format!("plan:{subject}:{name}"),
        };
        let takes: Vec<Take> = buckets
            .iter()
            .map(|(policy, quota, units)| Take { key: key_of(policy), quota: *quota, cost: *units })
            .collect();
        let levels = limiter.acquire_all(&takes, self.outage).await;
        let Some(levels) = levels else {
            let policies = buckets.iter().map(|(policy, _, _)| PolicyState { policy: *policy, level: None }).collect();
            return Admission { policies, refusal: Some(Refusal::Unavailable { policy: "requests" }) };
        };
        let policies: Vec<PolicyState> = buckets
            .iter()
            .zip(&levels)
            .map(|((policy, _, _), level)| PolicyState { policy: *policy, level: Some(*level) })
            .collect();
        // The bucket that needs the longest wait is the one to name: waiting for it is enough.
        let refusal = policies
            .iter()
            .filter_map(|state| state.level.filter(|l| !l.allowed).map(|l| (state.policy.name, l.retry_after)))
            .max_by_key(|(_, retry_after)| *retry_after)
            .map(|(policy, retry_after)| Refusal::Limited { policy, retry_after });
        Admission { policies, refusal }
    }

    /// `{keyed hash of the address's bucket}`: 128 bits keep buckets apart.
    fn address_hash(&self, addr: IpAddr) -> String {
        let digest = Sha256::new().chain_update(self.salt).chain_update(address::bucket(addr)).finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `rate` requests a second, `burst` at once: the policy, and its GCRA quota.
fn requests_policy(name: &'static str, rate: u32, burst: u32) -> (Policy, Option<Quota>) {
    let rate = rate.max(1);
    let burst = burst.max(1);
    let policy = Policy { name, quota: burst, window_secs: u64::from(burst.div_ceil(rate)), unit: Unit::Requests };
    (policy, Quota::per(Duration::from_secs(1), rate, burst))
}

/// The plan's cost budget: `cost_per_minute` a minute, all of it available at once (a client
/// that has been idle may spend its whole minute on one large query).
fn cost_policy(plan: &Plan) -> (Policy, Option<Quota>) {
    let policy =
        Policy { name: "cost", quota: plan.cost_per_minute, window_secs: COST_PERIOD.as_secs(), unit: Unit::Cost };
    (policy, Quota::per(COST_PERIOD, plan.cost_per_minute, plan.cost_per_minute))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up (never 0 for a wait that is not over).
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    //! The limiter in process on a hand-moved clock: exact counts over simulated time.

    use uuid::Uuid;

    use super::*;
    use crate::{
        config::Plans,
        identity::{KeyGrant, Scopes, TenantRef},
        throttle::memory::{MemoryLimiter, tests::ManualClock},
    };

    fn plan(rate: u32, burst: u32, cost_per_minute: u32) -> Arc<Plan> {
        let text = format!(
            "[plans.p]\nrate_per_second = {rate}\nburst = {burst}\ncost_per_minute = {cost_per_minute}\n\
             max_connections = 1\nmax_live_symbols = 1\nhistory_days = 1\nfundamentals = false\ndelay_minutes = 15\n"
        );
        Plans::parse(&text).unwrap().get("p").unwrap().clone()
    }

    fn tenant(plan: Arc<Plan>, key_rate: Option<(u32, u32)>) -> Principal {
        let key = KeyGrant { id: Uuid::new_v4(), prefix: "abc".into(), scopes: Scopes::ALL, rate: key_rate };
        Principal {
            credentials: Credentials::ApiKey(key),
            tenant: Some(TenantRef { id: Uuid::new_v4(), slug: "desk".into() }),
            role: None,
            plan: Some(plan),
        }
    }

    fn limiter() -> (PlanLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let memory = MemoryLimiter::with_clock(clock.clone(), 1000);
        (PlanLimiter::new(Arc::new(memory), RedisOutage::Local, b"secret"), clock)
    }

    fn refused_by(admission: &Admission) -> Option<&'static str> {
        match admission.refusal {
            Some(Refusal::Limited { policy, .. }) => Some(policy),
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_request_rate_is_exact_over_a_window() {
        let (limiter, clock) = limiter();
        let caller = tenant(plan(5, 5, 1_000_000), None);
        let mut accepted = 0;
        // Ten seconds of three requests every 10 ms.
        for tick in 0..=1000 {
            if tick > 0 {
                clock.advance(Duration::from_millis(10));
            }
            for _ in 0..3 {
                accepted += usize::from(limiter.admit(&caller, None, 1, 1).await.admitted());
            }
        }
        assert_eq!(accepted, 5 + 5 * 10, "the burst, then five a second for ten seconds");
        let refused = limiter.admit(&caller, None, 1, 1).await;
        assert_eq!(refused_by(&refused), Some("requests"));
        assert_eq!(refused.refusal.and_then(|r| r.retry_after()), Some(Duration::from_millis(200)));
    }

    #[tokio::test]
    async fn cost_is_spent_up_front_and_refills_per_minute() {
        let (limiter, clock) = limiter();
        let caller = tenant(plan(100, 100, 100), None);
        for _ in 0..3 {
            assert!(limiter.admit(&caller, None, 1, 30).await.admitted());
        }
        let refused = limiter.admit(&caller, None, 1, 30).await;
        assert_eq!(refused_by(&refused), Some("cost"));
        // 10 units left, 20 more needed at 100 a minute: 12 s.
        assert_eq!(refused.refusal.and_then(|r| r.retry_after()), Some(Duration::from_secs(12)));
        assert!(limiter.admit(&caller, None, 1, 10).await.admitted(), "a cheaper query still fits");
        clock.advance(Duration::from_secs(18));
        assert!(limiter.admit(&caller, None, 1, 30).await.admitted());
        let too_costly = limiter.admit(&caller, None, 1, 101).await;
        assert_eq!(too_costly.refusal, Some(Refusal::TooCostly { cost: 101, budget: 100 }));
        assert_eq!(too_costly.refusal.unwrap().retry_after(), None, "no wait makes it fit");
    }

    #[tokio::test]
    async fn a_key_with_its_own_lower_rate_is_held_to_it_without_spending_its_tenant() {
        let (limiter, _) = limiter();
        let mut caller = tenant(plan(10, 10, 1_000_000), Some((1, 2)));
        for _ in 0..2 {
            assert!(limiter.admit(&caller, None, 1, 1).await.admitted());
        }
        let refused = limiter.admit(&caller, None, 1, 1).await;
        assert_eq!(refused_by(&refused), Some("key"));
        assert_eq!(refused.policies[0].level.unwrap().remaining, 8, "the tenant's allowance is untouched");
        // Another key of the same tenant (no own rate) shares the tenant's remaining 8.
        let Credentials::ApiKey(key) = &mut caller.credentials else { unreachable!() };
        key.id = Uuid::new_v4();
        key.rate = None;
        let mut accepted = 0;
        for _ in 0..20 {
            accepted += usize::from(limiter.admit(&caller, None, 1, 1).await.admitted());
        }
        assert_eq!(accepted, 8);
    }

    #[tokio::test]
    async fn anonymous_callers_are_limited_per_address() {
        let (limiter, _) = limiter();
        let anonymous = Principal::without_tenant(Credentials::Anonymous, Some(plan(1, 2, 100)));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(limiter.admit(&anonymous, Some(a), 2, 1).await.admitted(), "a batch of two");
        assert!(!limiter.admit(&anonymous, Some(a), 1, 1).await.admitted());
        assert!(limiter.admit(&anonymous, Some(b), 2, 1).await.admitted(), "another address");
        assert!(!limiter.admit(&anonymous, Some(b_neighbour), 1, 1).await.admitted(), "the same /64");
        let without_plan = Principal::without_tenant(Credentials::Invalid("bad"), None);
        assert_eq!(limiter.admit(&without_plan, Some(a), 1, 1).await, Admission::default());
    }

    #[tokio::test]
    async fn headers_and_errors_name_the_policies() {
        let (limiter, _) = limiter();
        let caller = tenant(plan(5, 10, 20_000), Some((1, 3)));
        let admission = limiter.admit(&caller, None, 1, 10).await;
        let (policy, current) = admission.headers().unwrap();
        assert_eq!(policy, "\"requests\";q=10;w=2, \"key\";q=3;w=3, \"cost\";q=20000;w=60;qu=\"cost-units\"");
        assert_eq!(current, "\"requests\";r=9;t=1, \"key\";r=2;t=1, \"cost\";r=19990;t=1");
        let error = Refusal::Limited { policy: "key", retry_after: Duration::from_micros(1_500_001) }.error();
        let ext = serde_json::to_value(error.extensions.unwrap()).unwrap();
        assert_eq!(
            ext,
            serde_json::json!({ "code": "RATE_LIMITED", "retryAfterMs": 1501, "retryAfter": 2, "policy": "key" })
        );
    }

    #[tokio::test]
    async fn refuse_mode_refuses_when_the_shared_limiter_cannot_answer() {
        struct Down;
        #[async_trait::async_trait]
        impl Limiter for Down {
            async fn acquire(&self, _: &str, _: Quota, _: u32) -> crate::throttle::Decision {
                unreachable!()
            }
            async fn attempt(&self, _: &str, _: crate::throttle::Backoff) -> crate::throttle::Decision {
                unreachable!()
            }
            async fn forget(&self, _: &str) {}
            async fn acquire_all(&self, _: &[Take], outage: Outage) -> Option<Vec<Level>> {
                assert_eq!(outage, Outage::Refuse);
                None
            }
        }
        let limiter = PlanLimiter::new(Arc::new(Down), RedisOutage::Refuse, b"secret");
        let admission = limiter.admit(&tenant(plan(5, 5, 100), None), None, 1, 1).await;
        assert_eq!(admission.refusal, Some(Refusal::Unavailable { policy: "requests" }));
        let ext = serde_json::to_value(admission.refusal.unwrap().error().extensions.unwrap()).unwrap();
        assert_eq!(ext["reason"], "LIMITER_UNAVAILABLE");
        assert_eq!(admission.headers().unwrap().1, "\"requests\";r=0;t=2, \"cost\";r=0;t=2");
    }
}
