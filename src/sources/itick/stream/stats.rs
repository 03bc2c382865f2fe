//! What the stream is doing, for tests, health checks and metrics: connection states and
//! counters, updated by the connection tasks and read as one [`ItickStreamStats`] snapshot.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
};

use chrono::{DateTime, Utc};

/// Where one connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or authenticating.
    Connecting,
    /// Authenticated: subscriptions are live.
    Live,
    /// Waiting (backoff) before the next attempt after a failure.
    Waiting,
    /// iTick rejected the token; waiting the long auth backoff.
    AuthRejected,
}

/// One upstream connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// `stock`, `forex`, `indices` or `crypto`.
    pub endpoint: &'static str,
    pub state: ConnectionState,
    /// Upstream symbols this connection carries (at most 500).
    pub symbols: usize,
}

/// A snapshot of the stream.
#[derive(Clone, Debug, Default)]
pub struct ItickStreamStats {
    /// The connections the stream keeps open now, by slot.
    pub connections: Vec<ConnectionStatus>,
    /// Connection attempts, first ones included.
    pub connects: u64,
    /// Attempts after a connection was lost or failed.
    pub reconnects: u64,
    /// Times iTick rejected the token.
    pub auth_failures: u64,
    /// Pushes dropped by validation (bad numbers, high below low, future timestamps, …).
    pub rejected_pushes: u64,
    /// Pushes ignored: unknown type, or for a symbol or channel not subscribed.
    pub ignored_pushes: u64,
    /// Events handed to the hub.
    pub events: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// Subscribe or unsubscribe requests iTick answered with `code: 0`.
    pub subscribe_errors: u64,
    /// Topics asked for that iTick cannot stream (futures).
    pub unsupported_topics: u64,
    /// Topics currently wanted and carried by a connection.
    pub subscribed_topics: usize,
    /// The newest upstream time of any event delivered.
    pub newest_upstream_time: Option<DateTime<Utc>>,
    /// The last connection or auth failure, for humans.
    pub last_error: Option<String>,
}

impl ItickStreamStats {
    /// Endpoints with a live (authenticated) connection, once per connection, sorted.
    pub fn connected_endpoints(&self) -> Vec<&'static str> {
        let mut endpoints: Vec<_> =
            self.connections.iter().filter(|c| c.state == ConnectionState::Live).map(|c| c.endpoint).collect();
        endpoints.sort_unstable();
        endpoints
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: Mutex<BTreeMap<u64, ConnectionStatus>>,
    last_error: Mutex<Option<String>>,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub auth_failures: AtomicU64,
    pub rejected: AtomicU64,
    pub ignored: AtomicU64,
    pub events: AtomicU64,
    pub pings: AtomicU64,
    pub pongs: AtomicU64,
    pub subscribe_errors: AtomicU64,
    pub unsupported: AtomicU64,
    pub subscribed_topics: AtomicUsize,
    /// Milliseconds; 0 means none yet.
    newest_upstream_ms: AtomicI64,
    /// Learned once: the server ignores the `token` header and wants the auth message.
    pub legacy_auth: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_connection(&self, slot: u64, endpoint: &'static str, state: ConnectionState, symbols: usize) {
        lock(&self.connections).insert(slot, ConnectionStatus { endpoint, state, symbols });
    }

    pub fn remove_connection(&self, slot: u64) {
        lock(&self.connections).remove(&slot);
    }

    pub fn set_error(&self, error: String) {
        *lock(&self.last_error) = Some(error);
    }

    pub fn saw_upstream_time(&self, at: DateTime<Utc>) {
        self.newest_upstream_ms.fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ItickStreamStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let newest = self.newest_upstream_ms.load(Ordering::Relaxed);
        ItickStreamStats {
            connections: lock(&self.connections).values().cloned().collect(),
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            auth_failures: get(&self.auth_failures),
            rejected_pushes: get(&self.rejected),
            ignored_pushes: get(&self.ignored),
            events: get(&self.events),
            pings_sent: get(&self.pings),
            pongs_received: get(&self.pongs),
            subscribe_errors: get(&self.subscribe_errors),
            unsupported_topics: get(&self.unsupported),
            subscribed_topics: self.subscribed_topics.load(Ordering::Relaxed),
            newest_upstream_time: (newest != 0).then(|| DateTime::from_timestamp_millis(newest)).flatten(),
            last_error: lock(&self.last_error).clone(),
        }
    }
}
