//! Live quotas of a tenant's plan: `max_connections` WebSockets open at once and
//! `max_live_symbols` distinct symbols subscribed at once, counted over the whole deployment.
//!
//! # What is counted
//! A connection is counted from its accepted `connection_init` until it closes, whatever it
//! subscribes to. A symbol is counted once per tenant however many of the tenant's
//! subscriptions, connections or replicas follow it (and on whatever channels): the plan sells
//! breadth of the market, and the upstream cost is per symbol too. Callers without a tenant
//! (anonymous connections) are not counted: they may not subscribe (`live::graphql`).
//!
//! # Where the counts live
//! Every replica keeps what IT holds in a `Holdings` ledger (connection ids, symbols with a
//! reference count per tenant), released when the guard ([`ConnectionLease`](crate::live::quotas::ConnectionLease),
//! [`SymbolsLease`](crate::live::quotas::SymbolsLease)) is dropped: a client's `complete`, a disconnect, a crash of the operation
//! task. Without Redis that ledger is the count. With Redis (`redis`), each holding is also a
//! member of a per-tenant sorted set scored by its expiry (Redis's clock), renewed by the
//! replica every third of `FINQL_LIVE_LEASE_MS`: a replica that dies stops renewing, and its
//! holdings stop counting one lease later, with no one having to clean up after it. A decision
//! is one Lua script (expire, count, admit or refuse, record), so two replicas admitting at the
//! same instant cannot both take the last place.
//!
//! # When Redis does not answer
//! The deployment's `FINQL_RATE_LIMIT_REDIS_OUTAGE` decides, as for rate limits: `local` counts
//! this replica's holdings only (a tenant can then exceed its quota by the other replicas'
//! share until Redis returns; holdings made meanwhile are written to Redis by the next
//! renewal), `refuse` refuses new connections and subscriptions (`UPSTREAM_UNAVAILABLE`) while
//! running ones go on.

mod redis;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::{Config, Plan, RedisOutage},
    identity::TenantRef,
    reference::Symbol,
};

pub use self::redis::RedisQuotas;

/// Which limit a refusal is about (named as in the plan file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    MaxConnections,
    MaxLiveSymbols,
}

impl Limit {
    /// The plan-file key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::MaxLiveSymbols => "max_live_symbols",
        }
    }
}

/// Why a connection or subscription is not admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant is at its plan's limit: `held` of `max` are in use (across replicas).
    Exceeded { limit: Limit, max: u32, held: u64 },
    /// Redis did not answer and the deployment refuses rather than count locally.
    Unavailable,
}

/// The live quotas of this replica. Cheap to clone.
#[derive(Clone)]
pub struct LiveQuotas {
    inner: Arc<Inner>,
}

struct Inner {
    holdings: Mutex<Holdings>,
    /// Shared counts; `None` without `REDIS_URL`.
    redis: Option<RedisQuotas>,
    outage: RedisOutage,
    /// Numbers this replica's connections.
    next_connection: AtomicU64,
}

/// What this replica holds, per tenant.
#[derive(Default)]
pub(crate) struct Holdings {
    connections: HashMap<Uuid, HashSet<u64>>,
    /// Symbol -> how many of this replica's subscriptions follow it.
    symbols: HashMap<Uuid, HashMap<String, usize>>,
}

impl Holdings {
    fn symbol_count(&self, tenant: Uuid, symbol: &str) -> usize {
        self.symbols.get(&tenant).and_then(|held| held.get(symbol)).copied().unwrap_or(0)
    }

    /// Every holding, for the renewal to write to Redis.
    pub(crate) fn snapshot(&self) -> HoldingsSnapshot {
        HoldingsSnapshot {
            connections: self
                .connections
                .iter()
                .map(|(tenant, ids)| (*tenant, ids.iter().copied().collect()))
                .collect(),
            symbols: self.symbols.iter().map(|(tenant, held)| (*tenant, held.keys().cloned().collect())).collect(),
        }
    }
}

/// A copy of [`Holdings`], per tenant: connection numbers, and symbols followed.
pub(crate) struct HoldingsSnapshot {
    pub(crate) connections: Vec<(Uuid, Vec<u64>)>,
    pub(crate) symbols: Vec<(Uuid, Vec<String>)>,
}

impl LiveQuotas {
    /// Quotas counted in this process only.
    pub fn local() -> Self {
        Self::with(None, RedisOutage::Local)
    }

    /// The quotas the deployment calls for: shared through Redis when `REDIS_URL` is set (with
    /// a renewal task until `shutdown`), in process otherwise.
    pub async fn start(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let Some(url) = &config.redis_url else { return Ok(Self::local()) };
        let redis = RedisQuotas::connect(url.expose(), config).await?;
        let quotas = Self::with(Some(redis.clone()), config.tenancy.redis_outage);
        redis.spawn_renewal(quotas.clone(), shutdown);
        Ok(quotas)
    }

    fn with(redis: Option<RedisQuotas>, outage: RedisOutage) -> Self {
        Self {
            inner: Arc::new(Inner {
                holdings: Mutex::new(Holdings::default()),
                redis,
                outage,
                next_connection: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn holdings(&self) -> MutexGuard<'_, Holdings> {
        // Every update is a single insert, remove or counter change: a panic elsewhere while
        // holding the lock cannot leave the ledger inconsistent.
        self.inner.holdings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits one more WebSocket connection of `tenant` under `plan`'s `max_connections`.
    pub async fn connect(&self, tenant: &TenantRef, plan: &Plan) -> Result<ConnectionLease, Refusal> {
        let id = self.inner.next_connection.fetch_add(1, Ordering::Relaxed);
        let max = plan.max_connections;
        let shared = match &self.inner.redis {
            Some(redis) => redis.acquire_connection(tenant.id, id, max).await,
            None => None,
        };
        let mut holdings = self.holdings();
        let admitted = match shared {
            Some(admitted) => admitted,
            None if self.inner.redis.is_some() && self.inner.outage == RedisOutage::Refuse => {
                return Err(Refusal::Unavailable);
            }
            None => {
                let held = holdings.connections.get(&tenant.id).map_or(0, HashSet::len) as u64;
                if held < u64::from(max) { Ok(()) } else { Err(held) }
            }
        };
        if let Err(held) = admitted {
            return Err(Refusal::Exceeded { limit: Limit::MaxConnections, max, held });
        }
        holdings.connections.entry(tenant.id).or_default().insert(id);
        Ok(ConnectionLease { quotas: self.clone(), tenant: tenant.id, id })
    }

    /// Admits `symbols` for a subscription of `tenant` under `plan`'s `max_live_symbols`: the
    /// tenant's distinct symbols, these included, must not exceed it. All or none.
    pub async fn subscribe(
        &self,
        tenant: &TenantRef,
        plan: &Plan,
        symbols: &[Symbol],
    ) -> Result<SymbolsLease, Refusal> {
        let mut wanted: Vec<String> = symbols.iter().map(|s| s.as_str().to_owned()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let max = plan.max_live_symbols;
        // Serialises this replica's symbol decisions with its releases (see `redis`): a
        // release of a symbol must not remove, in Redis, what an admission just wrote.
        let _order = match &self.inner.redis {
            Some(redis) => Some(redis.order().await),
            None => None,
        };
        let fresh: Vec<String> = {
            let holdings = self.holdings();
            wanted.iter().filter(|s| holdings.symbol_count(tenant.id, s) == 0).cloned().collect()
        };
        let shared = match &self.inner.redis {
            Some(redis) if !fresh.is_empty() => redis.acquire_symbols(tenant.id, &fresh, max).await,
            Some(_) => Some(Ok(())),
            None => None,
        };
        let mut holdings = self.holdings();
        let admitted = match shared {
            Some(admitted) => admitted,
            None if self.inner.redis.is_some() && self.inner.outage == RedisOutage::Refuse => {
                return Err(Refusal::Unavailable);
            }
            None => {
                let held = holdings.symbols.get(&tenant.id).map_or(0, HashMap::len) as u64;
                if held + fresh.len() as u64 <= u64::from(max) { Ok(()) } else { Err(held) }
            }
        };
        if let Err(held) = admitted {
            return Err(Refusal::Exceeded { limit: Limit::MaxLiveSymbols, max, held });
        }
        let held = holdings.symbols.entry(tenant.id).or_default();
        for symbol in &wanted {
            *held.entry(symbol.clone()).or_insert(0) += 1;
        }
        Ok(SymbolsLease { quotas: self.clone(), tenant: tenant.id, symbols: wanted })
    }

    /// Connections and distinct symbols this replica holds for `tenant` (for tests and
    /// observability).
    pub fn held(&self, tenant: Uuid) -> (usize, usize) {
        let holdings = self.holdings();
        (
            holdings.connections.get(&tenant).map_or(0, HashSet::len),
            holdings.symbols.get(&tenant).map_or(0, HashMap::len),
        )
    }

    fn release_connection(&self, tenant: Uuid, id: u64) {
        {
            let mut holdings = self.holdings();
            if let Some(ids) = holdings.connections.get_mut(&tenant) {
                ids.remove(&id);
                if ids.is_empty() {
                    holdings.connections.remove(&tenant);
                }
            }
        }
        if let Some(redis) = &self.inner.redis {
            redis.release_connection(tenant, id);
        }
    }

    fn release_symbols(&self, tenant: Uuid, symbols: Vec<String>) {
        let mut gone = Vec::new();
        {
            let mut holdings = self.holdings();
            if let Some(held) = holdings.symbols.get_mut(&tenant) {
                for symbol in symbols {
                    if let Some(count) = held.get_mut(&symbol) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            held.remove(&symbol);
                            gone.push(symbol);
                        }
                    }
                }
                if held.is_empty() {
                    holdings.symbols.remove(&tenant);
                }
            }
        }
        if let Some(redis) = &self.inner.redis
            && !gone.is_empty()
        {
            redis.release_symbols(tenant, gone);
        }
    }
}

/// One admitted connection; dropping it gives its place back.
pub struct ConnectionLease {
    quotas: LiveQuotas,
    tenant: Uuid,
    id: u64,
}

impl Drop for ConnectionLease {
    fn drop(&mut self) {
        self.quotas.release_connection(self.tenant, self.id);
    }
}

/// The symbols of one admitted subscription; dropping it gives them back.
pub struct SymbolsLease {
    quotas: LiveQuotas,
    tenant: Uuid,
    symbols: Vec<String>,
}

impl Drop for SymbolsLease {
    fn drop(&mut self) {
        self.quotas.release_symbols(self.tenant, std::mem::take(&mut self.symbols));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Plans;

    fn tenant() -> TenantRef {
        TenantRef { id: Uuid::new_v4(), slug: "desk".into() }
    }

    fn symbols(raw: &[&str]) -> Vec<Symbol> {
        raw.iter().map(|s| Symbol::parse(s).unwrap()).collect()
    }

    #[tokio::test]
    async fn connections_are_counted_per_tenant_and_given_back_on_drop() {
        let quotas = LiveQuotas::local();
        let basic = Plans::builtin().get("basic").unwrap().clone(); // max_connections = 1
        let (a, b) = (tenant(), tenant());
        let first = quotas.connect(&a, &basic).await.unwrap();
        let refused = quotas.connect(&a, &basic).await.err().unwrap();
        assert_eq!(refused, Refusal::Exceeded { limit: Limit::MaxConnections, max: 1, held: 1 });
        // Another tenant has its own count.
        let _other = quotas.connect(&b, &basic).await.unwrap();
        drop(first);
        assert_eq!(quotas.held(a.id), (0, 0));
        quotas.connect(&a, &basic).await.unwrap();
    }

    #[tokio::test]
    async fn distinct_symbols_are_counted_once_per_tenant() {
        let quotas = LiveQuotas::local();
        let mut plan = (**Plans::builtin().get("basic").unwrap()).clone();
        plan.max_live_symbols = 3;
        let a = tenant();
        let one = quotas.subscribe(&a, &plan, &symbols(&["AAPL.US", "MSFT.US"])).await.unwrap();
        // The same symbols again (another subscription) cost nothing more.
        let again = quotas.subscribe(&a, &plan, &symbols(&["AAPL.US", "MSFT.US", "AAPL.US"])).await.unwrap();
        let third = quotas.subscribe(&a, &plan, &symbols(&["TSLA.US"])).await.unwrap();
        let refused = quotas.subscribe(&a, &plan, &symbols(&["NVDA.US", "AAPL.US"])).await.err().unwrap();
        assert_eq!(refused, Refusal::Exceeded { limit: Limit::MaxLiveSymbols, max: 3, held: 3 });
        // All or none: the refused subscription took nothing.
        assert_eq!(quotas.held(a.id), (0, 3));
        drop(one);
        assert_eq!(quotas.held(a.id), (0, 3), "AAPL and MSFT are still followed by `again`");
        drop(again);
        assert_eq!(quotas.held(a.id), (0, 1));
        quotas.subscribe(&a, &plan, &symbols(&["NVDA.US", "AAPL.US"])).await.unwrap();
        drop(third);
    }
}
