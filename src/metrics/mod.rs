//! Prometheus metrics: the recorder, the families' descriptions, and the exposition that
//! `GET /metrics` serves (`http::metrics`).
//!
//! Code emits through the `metrics` facade (`metrics::counter!("finql_…", "label" => v)`):
//! before a recorder exists a macro is a no-op, after it a few atomic operations, and no domain
//! depends on the exporter. The exporter is `metrics-exporter-prometheus` without its default
//! features (they bring an HTTP listener and a push gateway over aws-lc-rs; finql serves the
//! text itself, on its own router). `process_*` comes from `metrics-process` (procfs on Linux),
//! sampled at each scrape, as Prometheus' own client libraries do.
//!
//! The facade has one global slot, so the recorder is process-wide: `Metrics::install` is
//! idempotent and every `App` in a process (the tests start dozens) shares it. What belongs to
//! one app stays with it: its database pool is sampled by the `Metrics` the app holds, at its
//! own scrape, and its upkeep task stops with it.
//!
//! Label values are bounded: tenant slugs (`-` for anonymous or unknown callers, see
//! `identity::Principal::tenant_label`), route templates, error codes, source and cache names;
//! never user ids, symbols or raw paths.

use std::{sync::OnceLock, time::Duration};

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};
use tokio_util::sync::CancellationToken;

/// Helpers for the GraphQL transports: operation type and outcome labels, and the recording.
pub mod graphql;
/// The axum middleware behind `finql_http_requests_total` and `finql_http_request_duration_seconds`.
pub mod http;

/// Latency buckets (seconds) for every `*_duration_seconds` histogram: from a cached answer
/// (about a millisecond) to the longest request timeout finql allows (tens of seconds), dense
/// where the p99 of a healthy deployment sits (10 to 500 ms).
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often histogram samples are folded into their buckets when nobody scrapes: without it
/// they pile up in memory between scrapes. The exporter's own default.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide recorder's handle, once installed (`None`: another recorder was there first).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// One app's view of the process-wide recorder: renders the exposition with this app's pool.
#[derive(Clone)]
pub struct Metrics {
    /// `None` when another recorder was installed before finql's (an embedding program's):
    /// the exposition is then empty, and the facade feeds that recorder instead.
    handle: Option<PrometheusHandle>,
    /// Reads `process_*` at each scrape.
    process: metrics_process::Collector,
}

impl Metrics {
    /// Installs the Prometheus recorder, once per process, and describes every family.
    pub fn install() -> Self {
        let handle = HANDLE.get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|builder| builder.install_recorder());
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot install the Prometheus recorder; /metrics will be empty");
                    None
                }
            }
        });
        let process = metrics_process::Collector::default();
        process.describe();
        Self { handle: handle.clone(), process }
    }

    /// An app that records nothing of its own (`FINQL_METRICS=off`): no recorder installed, an
    /// empty exposition. (A recorder another app of the process installed still receives the
    /// facade's values: the slot is process-wide.)
    pub fn disabled() -> Self {
        Self { handle: None, process: metrics_process::Collector::default() }
    }

    /// Folds histogram samples into buckets every few seconds until `shutdown`.
    pub fn spawn_upkeep(&self, shutdown: CancellationToken) {
        let Some(handle) = self.handle.clone() else { return };
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = every.tick() => handle.run_upkeep(),
                }
            }
        });
    }

    /// The exposition in Prometheus' text format (version 0.0.4), after sampling what is read
    /// rather than counted: `process_*` and `db`'s pool.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        self.process.collect();
        sample_pool(db);
        self.handle.as_ref().map(PrometheusHandle::render).unwrap_or_default()
    }
}

/// `finql_db_pool_connections{state}`: `idle` and `in_use` connections of the pool, and `max`,
/// the most it opens (`FINQL_DB_MAX_CONNECTIONS`).
fn sample_pool(db: &DatabaseConnection) {
    // Matched on the backend first: the `get_*_pool` accessors panic on the other one.
    let (size, idle, max) = match &db.inner {
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    metrics::gauge!("finql_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("finql_db_pool_connections", "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("finql_db_pool_connections", "state" => "max").set(f64::from(max));
}

/// What kind of series a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// In seconds, with the latency buckets.
    Histogram,
}

/// Every family finql emits here, with its `# HELP`: the interface operators' dashboards and
/// alerts are written against (`deploy/`; a test checks they name only these, the `process_*`
/// families and the freshness gauges `finql_source_last_event_age_seconds`,
/// `finql_source_lag_seconds` and `finql_source_in_session`).
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "finql_graphql_requests_total",
        Kind::Counter,
        "GraphQL operations answered, by operation type, tenant slug and outcome (`OK` or the first error's code)",
    ),
    (
        "finql_graphql_request_duration_seconds",
        Kind::Histogram,
        "Time to answer a GraphQL operation (HTTP: the whole request; WebSocket: until the first result)",
    ),
    ("finql_http_requests_total", Kind::Counter, "HTTP requests by route template and status"),
    (
        "finql_http_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's arrival to its response's head, by route template",
    ),
    ("finql_cache_requests_total", Kind::Counter, "Cache look-ups by cache and result (hit, miss, stale)"),
    (
        "finql_upstream_requests_total",
        Kind::Counter,
        "Calls to market-data sources by source, endpoint and outcome (ok or the error kind)",
    ),
    (
        "finql_upstream_request_duration_seconds",
        Kind::Histogram,
        "Time of calls to market-data sources, by source and endpoint",
    ),
    (
        "finql_upstream_rejected_values_total",
        Kind::Counter,
        "Values from a source refused by validation, by source and kind",
    ),
    (
        "finql_source_crosschecks_total",
        Kind::Counter,
        "T+0 checks of fetched quotes against another source, by outcome (agreed, diverged, unchecked, skipped)",
    ),
    (
        "finql_source_divergences_total",
        Kind::Counter,
        "Values a source served that another source contradicted beyond FINQL_DIVERGENCE_BPS, by source, other and kind",
    ),
    (
        "finql_reconciliation_differences_total",
        Kind::Counter,
        "Instruments a T+1 reconciliation run in this process found different or missing across sources",
    ),
    (
        "finql_dataset_rows_loaded_total",
        Kind::Counter,
        "Rows written to proprietary datasets by this process's loads (loadDataset), by dataset",
    ),
    ("finql_ws_connections", Kind::Gauge, "Open GraphQL WebSocket connections"),
    ("finql_subscriptions_active", Kind::Gauge, "Running live subscriptions by kind (the channel followed)"),
    ("finql_live_events_total", Kind::Counter, "Live events received from the upstream stream, by kind"),
    (
        "finql_live_conflated_total",
        Kind::Counter,
        "Live values overwritten before a slow subscriber read them (it gets the newest)",
    ),
    ("finql_live_slow_consumers_total", Kind::Counter, "WebSocket clients closed because they stopped reading (1008)"),
    ("finql_rate_limited_total", Kind::Counter, "Requests refused by a rate limit, by tenant slug and policy"),
    (
        "finql_redis_up",
        Kind::Gauge,
        "1 while Redis answers (the shared cache's circuit breaker is closed), 0 while it is considered down",
    ),
    ("finql_db_pool_connections", Kind::Gauge, "Database pool connections by state (idle, in_use, max)"),
];

/// `# HELP` and units for every family in [`FAMILIES`] (the exposition lists a family once it
/// has a value).
fn describe() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
            Kind::Histogram => describe_histogram!(*name, Unit::Seconds, *help),
        }
    }
}

/// One unit of a gauge held while the value lives (a connection, a subscription): incremented
/// when made, decremented when dropped, however its owner ends (an aborted task included).
pub struct Held(metrics::Gauge);

impl Held {
    /// Adds one to `gauge` until the returned value drops.
    pub fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `finql_cache_requests_total{cache, result}`'s `result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh value was there.
    Hit,
    /// Nothing usable: the caller goes further (the next level, the source).
    Miss,
    /// An expired value answered because the source could not (`Quote.stale`).
    Stale,
}

/// Counts one look-up in `cache` (`quotes`, `klines`, `books`, `fundamentals`, `documents`,
/// `redis`).
pub fn cache_lookup(cache: &'static str, result: Lookup) {
    let result = match result {
        Lookup::Hit => "hit",
        Lookup::Miss => "miss",
        Lookup::Stale => "stale",
    };
    metrics::counter!("finql_cache_requests_total", "cache" => cache, "result" => result).increment(1);
}

/// `Hit` or `Miss`, as `found` says.
pub fn hit_or_miss(found: bool) -> Lookup {
    if found { Lookup::Hit } else { Lookup::Miss }
}
