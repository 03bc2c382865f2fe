//! Configuration, read once at start-up from the environment (and an optional `.env`).
//!
//! Every setting has a safe default for a laptop; `FINQL_ENV=production` tightens the ones that
//! must not be defaulted in production (the JWT secret, introspection, GraphiQL). Parsing goes
//! through [`Config::from_lookup`] so tests build configs through the same code path as the
//! binary, with no process-global environment mutation.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;

use crate::throttle::{Backoff, Quota, ThrottleSettings, address::TrustedProxies};

/// The audit trail: retention, the JSON log, the writer's buffer (`FINQL_AUDIT_*`).
pub mod audit;
/// Browser access: origins, allowed and exposed headers (`http::cors`).
pub mod cors;
/// The data freshness alarm (`FINQL_SOURCE_STALE_SECS`, `FINQL_ALERT_WEBHOOK_URL`).
pub mod freshness;
/// Persisted documents: safelist mode, manifest, registration bounds (`FINQL_PERSISTED_*`).
pub mod persisted;
/// Plans: limits and entitlements by name (`FINQL_PLANS_FILE`).
pub mod plans;
/// `FINQL_ROUTES`: the routing table of market sources.
pub mod routes;
/// Tenants, sign-up and anonymous access (`FINQL_DEFAULT_TENANT`, `FINQL_ANONYMOUS_PLAN`, ...).
pub mod tenancy;

pub use audit::AuditSettings;
pub use cors::CorsSettings;
pub use freshness::FreshnessSettings;
pub use persisted::PersistedSettings;
pub use plans::{Access, Plan, Plans};
pub use tenancy::{RedisOutage, TenancySettings};

/// Where finql runs: `development` (default) or `production`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must never appear in logs or debug output.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub environment: Environment,
    /// `FINQL_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// `FINQL_METRICS_ADDR`: where `GET /metrics` is served when set (its own port, so that
    /// the API's load balancer never exposes it); unset, it is served at `FINQL_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    /// `FINQL_METRICS` (`on`, the default, or `off`): whether this app records metrics and
    /// serves `/metrics` at all (off: no recorder, no route, no per-request bookkeeping).
    pub metrics: bool,
    pub log_format: LogFormat,
    /// `FINQL_DATA_DIR`: the SQLite file and the generated development JWT secret live here.
    pub data_dir: PathBuf,
    /// `FINQL_DATASETS_DIR`: where the proprietary datasets' manifests (`*.toml`) are; none
    /// when unset (`datasets::manifest`).
    pub datasets_dir: Option<PathBuf>,
    /// `FINQL_DATASET_CACHE_SECS` (default 30; 0 turns it off): how long a dataset read is
    /// served from memory, which is also how long another replica's load takes to show here.
    pub dataset_cache_ttl: Duration,
    pub database: DatabaseConfig,
    /// `REDIS_URL`: shared cache and pub/sub for multi-replica deployments (used by market data).
    pub redis_url: Option<Secret<String>>,
    /// `FINQL_CACHE_NAMESPACE` (default `finql`): prefix of every shared-cache key, so several
    /// deployments (or test runs) can share one Redis.
    pub cache_namespace: String,
    /// Time budgets and circuit breakers for upstream sources and Redis.
    pub resilience: ResilienceSettings,
    pub auth: AuthConfig,
    pub market: MarketSettings,
    pub limits: Limits,
    pub websocket: WebSocketConfig,
    /// Timeouts and caps on TCP connections (`http::server`).
    pub connections: ConnectionSettings,
    /// How replicas share one upstream stream through Redis (used when `REDIS_URL` is set).
    pub live_replicas: LiveReplicaSettings,
    /// Live market data (subscriptions).
    pub live: LiveSettings,
    /// Browser access: `FINQL_CORS_ORIGINS`, `FINQL_CORS_ALLOW_HEADERS`,
    /// `FINQL_CORS_EXPOSE_HEADERS` (see [`CorsSettings`]).
    pub cors: CorsSettings,
    /// `FINQL_SHUTDOWN_GRACE_SECS`: how long in-flight requests get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// `FINQL_TRUSTED_PROXIES`: comma-separated CIDR blocks (or addresses) of the reverse
    /// proxies in front of finql. Empty (the default) trusts none: the TCP peer is the client.
    /// When the peer is one of them, the client is the right-most `X-Forwarded-For` address
    /// that is not (see `throttle::address`).
    pub trusted_proxies: TrustedProxies,
    /// Throttling of `login`, `signUp` and `refreshToken`: each field of
    /// [`ThrottleSettings`] names its variables and defaults.
    pub throttle: ThrottleSettings,
    /// Tenants, plans, anonymous access and usage metering (`config::tenancy`).
    pub tenancy: TenancySettings,
    /// The audit trail (`config::audit`).
    pub audit: AuditSettings,
    /// The data freshness alarm: stale threshold and alert webhook (`config::freshness`).
    pub freshness: FreshnessSettings,
    /// Cross-source checks: `FINQL_DIVERGENCE_BPS`, `FINQL_CROSSCHECK_RATE`, `FINQL_RECONCILE_AT`.
    pub reconcile: ReconcileSettings,
    /// Persisted documents: APQ and `documentId` bounds, the safelist (`config::persisted`).
    pub persisted: PersistedSettings,
    /// Things worth a warning found while reading the configuration. Logged at start-up
    /// (configuration is read before logging exists).
    pub warnings: Vec<String>,
}

/// How sources are checked against each other (`reconcile`).
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// `FINQL_DIVERGENCE_BPS` (default 50): the largest difference between two sources' values,
    /// in basis points of the reference's, that still agrees.
    pub divergence_bps: u32,
    /// `FINQL_RECONCILE_AT` (`HH:MM`, UTC; unset: no schedule): when the previous day is
    /// reconciled each day.
    pub at: Option<chrono::NaiveTime>,
    /// `FINQL_CROSSCHECK_RATE` (0 to 1, default 0.01): the share of quote batches and kline
    /// windows fetched from a source that are checked against another (T+0,
    /// `market::crosscheck`); 0 turns it off.
    pub crosscheck_rate: f64,
}

impl ReconcileSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let divergence_bps = parse_or(get, "FINQL_DIVERGENCE_BPS", 50u32)?;
        if divergence_bps == 0 || divergence_bps > 10_000 {
            bail!("FINQL_DIVERGENCE_BPS must be between 1 and 10000");
        }
        let at = match get("FINQL_RECONCILE_AT").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(raw) => Some(
                chrono::NaiveTime::parse_from_str(raw.trim(), "%H:%M")
                    .map_err(|_| anyhow::anyhow!("FINQL_RECONCILE_AT must be HH:MM (UTC), not `{raw}`"))?,
            ),
        };
        let crosscheck_rate = parse_or(get, "FINQL_CROSSCHECK_RATE", 0.01f64)?;
        if !(0.0..=1.0).contains(&crosscheck_rate) {
            bail!("FINQL_CROSSCHECK_RATE must be between 0 and 1");
        }
        Ok(Self { divergence_bps, at, crosscheck_rate })
    }
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`: `sqlite://…` (default `sqlite://<data dir>/finql.db`) or `postgres://…`.
    pub url: Secret<String>,
    /// `FINQL_DATABASE_SCHEMA`: PostgreSQL schema to use (search_path), when not `public`.
    pub schema: Option<String>,
    /// `FINQL_DB_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `FINQL_DB_MIN_CONNECTIONS` (default: `max_connections`): connections kept open while
    /// idle. A warm pool meets a burst with connections ready instead of opening them under
    /// load (a PostgreSQL connection costs a fork and an authentication).
    pub min_connections: u32,
    /// `FINQL_DB_ACQUIRE_TIMEOUT_MS` (default 5000): how long a request waits for a pooled
    /// connection before it is answered `SERVICE_UNAVAILABLE` (retry).
    pub acquire_timeout: Duration,
    /// `FINQL_MIGRATE`: run migrations at start-up (default true).
    pub migrate_on_start: bool,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `JWT_SECRET`: HMAC key for access tokens.
    pub jwt_secret: Secret<Vec<u8>>,
    pub issuer: String,
    pub audience: String,
    /// `FINQL_ACCESS_TOKEN_TTL_SECS` (default 900: short-lived, as refresh tokens renew them).
    pub access_token_ttl: Duration,
    /// `FINQL_REFRESH_TOKEN_TTL_SECS` (default 30 days).
    pub refresh_token_ttl: Duration,
    /// `FINQL_JWT_LEEWAY_SECS` (default 5, at most 30): clock skew tolerated on a token's
    /// `exp`, `iat` and `nbf`, for HTTP requests and WebSocket connections alike. Replicas
    /// synchronised by NTP differ by milliseconds; 5 s covers a badly kept clock, and every
    /// second of it is a second an expired token still works.
    pub leeway: Duration,
}

/// Which market-data source serves quotes and candles, and how long data stays fresh.
#[derive(Clone, Debug)]
pub struct MarketSettings {
    /// `FINQL_MARKET_SOURCE`: `simulated` (default: no account, no network), `itick` or
    /// `polygon`, or a comma-separated fallback order (`polygon,itick,simulated`): a source is
    /// tried when the one before it fails.
    pub sources: Vec<MarketSourceKind>,
    /// `FINQL_ROUTES`: sources by asset class and region (`config::routes`); what no rule
    /// matches goes to `sources`.
    pub routes: routes::Routes,
    /// `FINQL_QUOTE_TTL_MS` (default 1000): how long a quote is served from cache.
    pub quote_ttl: Duration,
    /// `FINQL_MAX_STALE_SECS` (default 300): how old a last known quote may be and still be
    /// served (marked `stale`) while the source is down.
    pub max_stale: Duration,
    pub itick: ItickSettings,
    pub polygon: PolygonSettings,
    /// `FINQL_SIM_TICKS_PER_SEC` (default 2): how often per second the simulated live stream
    /// samples each subscribed topic. The simulated market moves once a second, so 2 catches
    /// every second within half a second; more only lowers that delay.
    pub sim_ticks_per_sec: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarketSourceKind {
    Simulated,
    Itick,
    Polygon,
}

impl MarketSourceKind {
    pub const ALL: [Self; 3] = [Self::Simulated, Self::Itick, Self::Polygon];

    /// The source's name: in settings, plans, and on every value it produces
    /// (`MarketSource::name`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::Itick => "itick",
            Self::Polygon => "polygon",
        }
    }

    /// The source named `name` (exactly, lower case), if finql has it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

#[derive(Clone, Debug)]
pub struct PolygonSettings {
    /// `POLYGON_API_KEY`: the API key; required when a source is `polygon`.
    pub api_key: Option<Secret<String>>,
    /// `POLYGON_BASE_URL` (default `https://api.massive.com`, Polygon's host since it became
    /// Massive; `https://api.polygon.io` still answers).
    pub base_url: String,
    /// `POLYGON_REQUESTS_PER_MINUTE` (default 6000: Polygon asks paid plans to stay under about
    /// 100 a second; the free plan allows 5 a minute), enforced client-side.
    pub requests_per_minute: u32,
    /// `POLYGON_TIMEOUT_MS` (default 5000) per request.
    pub timeout: Duration,
    /// `POLYGON_MAX_RETRIES` (default 3) for 429, 5xx and network errors.
    pub max_retries: u32,
}

#[derive(Clone, Debug)]
pub struct ItickSettings {
    /// `ITICK_TOKEN`: the API key; required when the source is `itick`.
    pub token: Option<Secret<String>>,
    /// `ITICK_BASE_URL` (default `https://api.itick.org`).
    pub base_url: String,
    /// `ITICK_WS_URL` (default `wss://api.itick.org`), for live streams.
    pub ws_url: String,
    /// `ITICK_WS_PING_SECS` (default 30): heartbeat interval of the live stream. iTick asks for a
    /// ping at least every 30 s and disconnects after a minute without one.
    pub ws_ping_interval: Duration,
    /// `ITICK_WS_SILENCE_SECS` (default twice the ping interval): a live connection on which
    /// nothing at all arrived for this long (not even a pong) is considered dead and reconnected.
    pub ws_silence_timeout: Duration,
    /// `ITICK_WS_BACKOFF_MIN_MS` (default 500) and `ITICK_WS_BACKOFF_MAX_SECS` (default 60): bounds
    /// of the exponential, jittered delay between reconnection attempts.
    pub ws_backoff_min: Duration,
    pub ws_backoff_max: Duration,
    /// `ITICK_WS_AUTH_BACKOFF_SECS` (default 300): the wait before trying again after iTick
    /// rejected the token (retrying sooner cannot fix a wrong key, and would count against the
    /// plan's connection limit).
    pub ws_auth_backoff: Duration,
    /// `ITICK_REQUESTS_PER_MINUTE` (default 600): the plan's REST rate, enforced client-side.
    pub requests_per_minute: u32,
    /// `ITICK_TIMEOUT_MS` (default 5000) per request.
    pub timeout: Duration,
    /// `ITICK_MAX_RETRIES` (default 3) for 429, 5xx and network errors.
    pub max_retries: u32,
}

/// How long finql waits for what it does not control (market sources, Redis), and when it
/// stops asking (`crate::resilience`).
#[derive(Clone, Debug)]
pub struct ResilienceSettings {
    /// `FINQL_UPSTREAM_BUDGET_MS` (default 2000): the most one request waits for upstream market
    /// data, across retries and fallback sources. Within it finql serves a stale quote when it
    /// has one, else `UPSTREAM_UNAVAILABLE`. Two seconds is far above a healthy iTick answer
    /// (~100 ms) with a retry, and short enough that a client never hangs on a dead upstream.
    pub upstream_budget: Duration,
    /// `FINQL_REDIS_TIMEOUT_MS` (default 100): the most any one Redis call may take; a Redis on
    /// the same network answers in well under a millisecond.
    pub redis_timeout: Duration,
    /// `FINQL_BREAKER_FAILURES` (default 5): consecutive failures (errors or timeouts) of one
    /// source, or of Redis, that open its circuit breaker: then calls fail at once.
    pub breaker_failures: u32,
    /// `FINQL_BREAKER_COOLDOWN_MS` (default 5000): how long an open breaker refuses calls before
    /// it lets one probe through (whose success closes it).
    pub breaker_cool_down: Duration,
}

impl ResilienceSettings {
    /// The breaker settings every source and Redis use.
    pub fn breaker(&self) -> crate::resilience::breaker::BreakerConfig {
        crate::resilience::breaker::BreakerConfig { failures: self.breaker_failures, cool_down: self.breaker_cool_down }
    }
}

/// Guards against expensive or abusive requests. Each rejection carries `extensions.code`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `FINQL_MAX_BODY_BYTES` (default 100 KiB: far above any hand-written query).
    pub max_body_bytes: usize,
    /// `FINQL_MAX_BATCH` operations in one HTTP request (default 10; 0 refuses batches).
    pub max_batch: usize,
    /// `FINQL_MAX_DEPTH` (default 16: the deepest query finql's own API allows is about 6, but
    /// the introspection query GraphiQL and code generators send is 15 deep, through nine
    /// levels of `ofType`).
    pub max_depth: usize,
    /// `FINQL_MAX_COMPLEXITY` (default 2000 fields).
    pub max_complexity: usize,
    /// `FINQL_MAX_ALIASES` (default 30: aliases multiply work, e.g. many `login`s in one request).
    /// Counted as executed: an alias inside a fragment spread twice counts twice.
    pub max_aliases: usize,
    /// `FINQL_MAX_FIELDS` (default 1000): fields one operation executes once its fragments are
    /// expanded, each spread counted every time it appears. The largest query finql's own tools
    /// send, GraphiQL's introspection query, executes 226; the README tour's largest, under 40.
    /// 1000 leaves room for big generated queries and refuses a ten-level doubling fragment bomb
    /// (1024 fields).
    pub max_fields: usize,
    /// `FINQL_MAX_TOKENS` (default 10000): names, values and punctuation in one document, counted
    /// before it is parsed, so a huge document is refused without building its tree. The
    /// introspection query is 180 tokens, a 500-symbol list about 500; a 100 KiB body could
    /// otherwise carry 50,000.
    pub max_tokens: usize,
    /// `FINQL_REQUEST_TIMEOUT_MS` (default 10000): how long one HTTP request (all operations of a
    /// batch together) or one WebSocket query or mutation may execute. Subscriptions are not
    /// bounded by it. finql answers its queries in milliseconds, and upstream calls have their
    /// own timeouts; this is the ceiling on what any one request can hold (connections, memory,
    /// a database transaction) whatever it waits on, well under the 30-60 s after which proxies
    /// and clients give up on their own. At least 1.
    pub request_timeout: Duration,
    /// Whether introspection and field suggestions are on (off in production).
    pub introspection: bool,
}

#[derive(Clone, Debug)]
pub struct WebSocketConfig {
    /// `FINQL_WS_INIT_TIMEOUT_MS`: time allowed for `connection_init` (default 5000).
    pub init_timeout: Duration,
    /// `FINQL_WS_KEEPALIVE_SECS`: interval of server pings / `ka` messages (default 15).
    pub keepalive_interval: Duration,
    /// `FINQL_WS_MAX_SUBSCRIPTIONS`: operations running at once on one connection (default 100).
    pub max_subscriptions: usize,
    /// `FINQL_WS_SLOW_CLIENT_MS` (default 10000): how long a client may leave its messages unread
    /// (its outbox full) before the server closes the connection with 1008 "slow consumer".
    pub slow_client_timeout: Duration,
}

/// How long a connection may take to say what it wants, and how many may be open: the
/// slowloris and connection-flood defences of `http::server`.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    /// `FINQL_HEADER_READ_TIMEOUT_MS` (default 5000): time to send a complete request head,
    /// counted from the accept for a connection's first request and from the first byte for
    /// the next ones on a keep-alive connection.
    pub header_read_timeout: Duration,
    /// `FINQL_BODY_READ_TIMEOUT_MS` (default 10000): time to send the whole request body once
    /// the head arrived (100 KiB at the default body limit is well under a second on any link
    /// that can use the API; a client dribbling a byte a second would hold the request 28 h).
    pub body_read_timeout: Duration,
    /// `FINQL_IDLE_TIMEOUT_SECS` (default 60; fractions allowed): an HTTP connection on which no
    /// byte moved either way for this long, while no request of it is being handled, is closed:
    /// a keep-alive connection waiting for its next request, a client that stopped reading its
    /// response. Upgraded connections (WebSocket) are exempt: they have their own keep-alive and
    /// slow-client rules.
    pub idle_timeout: Duration,
    /// `FINQL_MAX_CONNECTIONS` (default 10000): open TCP connections (WebSockets included)
    /// served normally. Above it a connection gets a `503` with `Retry-After` and is closed.
    pub max_connections: usize,
    /// `FINQL_CONNECTION_RESERVE` (default 32): connections beyond `max_connections` kept for
    /// `/health` and `/ready`, so probes answer during a flood (anything else gets a `503`). A
    /// reserve connection serves one request and must send it within a second.
    pub reserve: usize,
}

/// Live market data (subscriptions): see `live::hub`.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// `FINQL_LIVE_GRACE_MS` (default 5000): how long a topic stays subscribed upstream after
    /// its last subscriber left, so a page reload does not unsubscribe and resubscribe.
    pub grace: Duration,
    /// `FINQL_LIVE_MAX_SYMBOLS` (default 500, iTick's batch size): symbols per subscription.
    pub max_symbols: usize,
    /// `FINQL_LIVE_TICK_BUFFER` (default 1024): trades of one symbol a `ticks` subscriber may be
    /// behind before its subscription is ended (every trade matters, so ticks are not conflated).
    pub tick_buffer: usize,
    /// `FINQL_LIVE_STALE_MS` (default 10000): a quote topic that received nothing for this long
    /// (upstream disconnected, silent, or its lease holder gone) has its last quote sent again
    /// with `stale: true`, so subscribers learn the upstream is down instead of hearing nothing.
    pub stale_after: Duration,
    /// `FINQL_LIVE_DELAY_SLOTS` (default 180): how many values a delayed quote, bar or book
    /// subscription holds per symbol while they age (`live::delay`). The delay is cut into this
    /// many slots, one value each: 180 gives one value per 5 s on a 15-minute delay, as often
    /// as delayed feeds usually snapshot, for about 45 KiB per symbol per subscription at most.
    pub delay_slots: usize,
    /// `FINQL_LIVE_DELAY_TICKS` (default 4096): trades of one symbol a delayed `ticks`
    /// subscription may hold while they age (every trade is kept, so this bounds its memory,
    /// about 100 bytes a trade); more within one delay ends the subscription with an error.
    pub delay_ticks: usize,
}

/// How replicas share one live upstream connection through Redis (`live::replicas`).
#[derive(Clone, Debug)]
pub struct LiveReplicaSettings {
    /// `FINQL_LIVE_LEASE_MS` (default 3000): how long the upstream lease lasts without renewal
    /// (renewed every third of it). It bounds how long live data pauses after the holder
    /// crashes, and how long a replica cut off from Redis keeps its stream; a demand that is
    /// not refreshed expires after the same time. Minimum 30.
    pub lease_ttl: Duration,
    /// `FINQL_REPLICA_ID` (default `{HOSTNAME}-{pid}-{random}`): this process in the lease and
    /// demand keys. Must differ between replicas; the random part makes the default unique.
    pub replica_id: String,
}

impl LiveReplicaSettings {
    /// Settings with a fresh random replica id.
    pub fn new(lease_ttl: Duration) -> Self {
        Self { lease_ttl, replica_id: default_replica_id(None) }
    }
}

fn default_replica_id(hostname: Option<String>) -> String {
    format!("{}-{}-{:08x}", hostname.unwrap_or_else(|| "finql".into()), std::process::id(), rand::rng().next_u32())
}

/// The largest clock-skew leeway accepted: beyond half a minute, it stops being skew and starts
/// being a longer token lifetime nobody configured.
const MAX_LEEWAY_SECS: u64 = 30;

/// The shortest JWT secret accepted in production: 256 bits, the HS256 key size.
const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds a config from any key -> value lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let environment = match get("FINQL_ENV").as_deref() {
            None | Some("development") | Some("dev") | Some("test") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => bail!("FINQL_ENV must be `development` or `production`, not `{other}`"),
        };
        let production = environment == Environment::Production;
        let data_dir = PathBuf::from(get("FINQL_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let db_max_connections = match parse_or(&get, "FINQL_DB_MAX_CONNECTIONS", 16u32)? {
            0 => bail!("FINQL_DB_MAX_CONNECTIONS must be at least 1"),
            max => max,
        };
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}/finql.db?mode=rwc", data_dir.display()));
        let log_format = match get("FINQL_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("FINQL_LOG_FORMAT must be `text` or `json`, not `{other}`"),
        };
        let mut warnings = Vec::new();
        let jwt_secret = match get("JWT_SECRET") {
            Some(secret) if secret.len() >= MIN_SECRET_BYTES => secret.into_bytes(),
            Some(_) if production => bail!(
                "JWT_SECRET is too short: production needs at least {MIN_SECRET_BYTES} bytes \
                 (e.g. `openssl rand -base64 48`)"
            ),
            Some(secret) => {
                warnings.push(format!(
                    "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; acceptable only in development"
                ));
                secret.into_bytes()
            }
            None if production => bail!(
                "JWT_SECRET is not set: production needs a secret of at least {MIN_SECRET_BYTES} bytes \
                 shared by all replicas (e.g. `openssl rand -base64 48`)"
            ),
            None => {
                let (secret, path) = development_secret(&data_dir)?;
                warnings.push(format!(
                    "JWT_SECRET is not set: using the development secret in {} (set JWT_SECRET in production)",
                    path.display()
                ));
                secret
            }
        };
        let ws_ping_secs: u64 = parse_or(&get, "ITICK_WS_PING_SECS", 30)?;
        if ws_ping_secs == 0 {
            bail!("ITICK_WS_PING_SECS must be at least 1");
        }
        Ok(Config {
            environment,
            addr: parse_or(&get, "FINQL_ADDR", "127.0.0.1:8000".parse()?)?,
            metrics_addr: get("FINQL_METRICS_ADDR")
                .map(|raw| {
                    raw.trim().parse().map_err(|err| anyhow::anyhow!("FINQL_METRICS_ADDR=`{raw}` is not valid: {err}"))
                })
                .transpose()?,
            metrics: match get("FINQL_METRICS").as_deref().map(str::trim) {
                None | Some("" | "on") => true,
                Some("off") => false,
                Some(other) => bail!("FINQL_METRICS must be `on` or `off`, not `{other}`"),
            },
            log_format,
            database: DatabaseConfig {
                url: Secret::new(database_url),
                schema: get("FINQL_DATABASE_SCHEMA"),
                max_connections: db_max_connections,
                min_connections: match parse_or(&get, "FINQL_DB_MIN_CONNECTIONS", db_max_connections)? {
                    min if min > db_max_connections => {
                        bail!(
                            "FINQL_DB_MIN_CONNECTIONS ({min}) must not exceed FINQL_DB_MAX_CONNECTIONS ({db_max_connections})"
                        )
                    }
                    min => min,
                },
                acquire_timeout: match parse_or(&get, "FINQL_DB_ACQUIRE_TIMEOUT_MS", 5000u64)? {
                    0 => bail!("FINQL_DB_ACQUIRE_TIMEOUT_MS must be at least 1"),
                    ms => Duration::from_millis(ms),
                },
                migrate_on_start: parse_or(&get, "FINQL_MIGRATE", true)?,
            },
            data_dir,
            datasets_dir: get("FINQL_DATASETS_DIR").filter(|dir| !dir.is_empty()).map(PathBuf::from),
            dataset_cache_ttl: Duration::from_secs(parse_or(&get, "FINQL_DATASET_CACHE_SECS", 30)?),
            redis_url: get("REDIS_URL").map(Secret::new),
            cache_namespace: get("FINQL_CACHE_NAMESPACE").unwrap_or_else(|| "finql".into()),
            resilience: ResilienceSettings {
                upstream_budget: match parse_or(&get, "FINQL_UPSTREAM_BUDGET_MS", 2000u64)? {
                    0 => bail!("FINQL_UPSTREAM_BUDGET_MS must be at least 1"),
                    ms => Duration::from_millis(ms),
                },
                redis_timeout: match parse_or(&get, "FINQL_REDIS_TIMEOUT_MS", 100u64)? {
                    0 => bail!("FINQL_REDIS_TIMEOUT_MS must be at least 1"),
                    ms => Duration::from_millis(ms),
                },
                breaker_failures: match parse_or(&get, "FINQL_BREAKER_FAILURES", 5u32)? {
                    0 => bail!("FINQL_BREAKER_FAILURES must be at least 1"),
                    n => n,
                },
                breaker_cool_down: Duration::from_millis(parse_or(&get, "FINQL_BREAKER_COOLDOWN_MS", 5000)?),
            },
            auth: AuthConfig {
                jwt_secret: Secret::new(jwt_secret),
                issuer: get("FINQL_JWT_ISSUER").unwrap_or_else(|| "finql".into()),
                audience: get("FINQL_JWT_AUDIENCE").unwrap_or_else(|| "finql-api".into()),
                access_token_ttl: secs(parse_or(&get, "FINQL_ACCESS_TOKEN_TTL_SECS", 900)?),
                refresh_token_ttl: secs(parse_or(&get, "FINQL_REFRESH_TOKEN_TTL_SECS", 30 * 86_400)?),
                leeway: match parse_or(&get, "FINQL_JWT_LEEWAY_SECS", 5u64)? {
                    n if n > MAX_LEEWAY_SECS => {
                        bail!("FINQL_JWT_LEEWAY_SECS must be at most {MAX_LEEWAY_SECS}, not {n}")
                    }
                    n => secs(n),
                },
            },
            market: MarketSettings {
                sources: parse_sources(
                    "FINQL_MARKET_SOURCE",
                    get("FINQL_MARKET_SOURCE").as_deref().unwrap_or("simulated"),
                )?,
                routes: routes::Routes::parse(get("FINQL_ROUTES").as_deref().unwrap_or_default())?,
                quote_ttl: Duration::from_millis(parse_or(&get, "FINQL_QUOTE_TTL_MS", 1000)?),
                max_stale: secs(parse_or(&get, "FINQL_MAX_STALE_SECS", 300)?),
                itick: ItickSettings {
                    token: get("ITICK_TOKEN").map(Secret::new),
                    base_url: get("ITICK_BASE_URL").unwrap_or_else(|| "https://api.itick.org".into()),
                    ws_url: get("ITICK_WS_URL").unwrap_or_else(|| "wss://api.itick.org".into()),
                    ws_ping_interval: secs(ws_ping_secs),
                    ws_silence_timeout: secs(parse_or(&get, "ITICK_WS_SILENCE_SECS", ws_ping_secs.saturating_mul(2))?),
                    ws_backoff_min: Duration::from_millis(parse_or(&get, "ITICK_WS_BACKOFF_MIN_MS", 500)?),
                    ws_backoff_max: secs(parse_or(&get, "ITICK_WS_BACKOFF_MAX_SECS", 60)?),
                    ws_auth_backoff: secs(parse_or(&get, "ITICK_WS_AUTH_BACKOFF_SECS", 300)?),
                    requests_per_minute: parse_or(&get, "ITICK_REQUESTS_PER_MINUTE", 600)?,
                    timeout: Duration::from_millis(parse_or(&get, "ITICK_TIMEOUT_MS", 5000)?),
                    max_retries: parse_or(&get, "ITICK_MAX_RETRIES", 3)?,
                },
                polygon: PolygonSettings {
                    api_key: get("POLYGON_API_KEY").map(Secret::new),
                    base_url: get("POLYGON_BASE_URL").unwrap_or_else(|| "https://api.massive.com".into()),
                    requests_per_minute: parse_or(&get, "POLYGON_REQUESTS_PER_MINUTE", 6000)?,
                    timeout: Duration::from_millis(parse_or(&get, "POLYGON_TIMEOUT_MS", 5000)?),
                    max_retries: parse_or(&get, "POLYGON_MAX_RETRIES", 3)?,
                },
                sim_ticks_per_sec: match parse_or(&get, "FINQL_SIM_TICKS_PER_SEC", 2u32)? {
                    0 => bail!("FINQL_SIM_TICKS_PER_SEC must be at least 1"),
                    n => n.min(1000),
                },
            },
            limits: Limits {
                max_body_bytes: parse_or(&get, "FINQL_MAX_BODY_BYTES", 100 * 1024)?,
                max_batch: parse_or(&get, "FINQL_MAX_BATCH", 10)?,
                max_depth: parse_or(&get, "FINQL_MAX_DEPTH", 16)?,
                max_complexity: parse_or(&get, "FINQL_MAX_COMPLEXITY", 2000)?,
                max_aliases: parse_or(&get, "FINQL_MAX_ALIASES", 30)?,
                max_fields: parse_or(&get, "FINQL_MAX_FIELDS", 1000)?,
                max_tokens: parse_or(&get, "FINQL_MAX_TOKENS", 10_000)?,
                request_timeout: match parse_or(&get, "FINQL_REQUEST_TIMEOUT_MS", 10_000u64)? {
                    0 => bail!("FINQL_REQUEST_TIMEOUT_MS must be at least 1"),
                    ms => Duration::from_millis(ms),
                },
                introspection: !production,
            },
            websocket: WebSocketConfig {
                init_timeout: Duration::from_millis(parse_or(&get, "FINQL_WS_INIT_TIMEOUT_MS", 5000)?),
                keepalive_interval: secs(parse_or(&get, "FINQL_WS_KEEPALIVE_SECS", 15)?),
                max_subscriptions: parse_or(&get, "FINQL_WS_MAX_SUBSCRIPTIONS", 100)?,
                slow_client_timeout: Duration::from_millis(parse_or(&get, "FINQL_WS_SLOW_CLIENT_MS", 10_000)?),
            },
            connections: ConnectionSettings {
                header_read_timeout: positive_millis(&get, "FINQL_HEADER_READ_TIMEOUT_MS", 5000)?,
                body_read_timeout: positive_millis(&get, "FINQL_BODY_READ_TIMEOUT_MS", 10_000)?,
                idle_timeout: fractional_secs(&get, "FINQL_IDLE_TIMEOUT_SECS", 60.0)?,
                max_connections: match parse_or(&get, "FINQL_MAX_CONNECTIONS", 10_000usize)? {
                    0 => bail!("FINQL_MAX_CONNECTIONS must be at least 1"),
                    n => n,
                },
                reserve: parse_or(&get, "FINQL_CONNECTION_RESERVE", 32)?,
            },
            live: LiveSettings {
                grace: Duration::from_millis(parse_or(&get, "FINQL_LIVE_GRACE_MS", 5000)?),
                max_symbols: parse_or(&get, "FINQL_LIVE_MAX_SYMBOLS", 500)?,
                tick_buffer: match parse_or(&get, "FINQL_LIVE_TICK_BUFFER", 1024usize)? {
                    0 => bail!("FINQL_LIVE_TICK_BUFFER must be at least 1"),
                    n => n,
                },
                stale_after: match parse_or(&get, "FINQL_LIVE_STALE_MS", 10_000u64)? {
                    0 => bail!("FINQL_LIVE_STALE_MS must be at least 1"),
                    ms => Duration::from_millis(ms),
                },
                delay_slots: match parse_or(&get, "FINQL_LIVE_DELAY_SLOTS", 180usize)? {
                    0 => bail!("FINQL_LIVE_DELAY_SLOTS must be at least 1"),
                    n => n,
                },
                delay_ticks: match parse_or(&get, "FINQL_LIVE_DELAY_TICKS", 4096usize)? {
                    0 => bail!("FINQL_LIVE_DELAY_TICKS must be at least 1"),
                    n => n,
                },
            },
            live_replicas: LiveReplicaSettings {
                lease_ttl: match parse_or(&get, "FINQL_LIVE_LEASE_MS", 3000u64)? {
                    ms if ms < 30 => bail!("FINQL_LIVE_LEASE_MS must be at least 30, not {ms}"),
                    ms => Duration::from_millis(ms),
                },
                replica_id: get("FINQL_REPLICA_ID").unwrap_or_else(|| default_replica_id(get("HOSTNAME"))),
            },
            cors: CorsSettings::from_lookup(&get)?,
            shutdown_grace: secs(parse_or(&get, "FINQL_SHUTDOWN_GRACE_SECS", 30)?),
            trusted_proxies: TrustedProxies::parse(get("FINQL_TRUSTED_PROXIES").as_deref().unwrap_or(""))
                .map_err(|err| anyhow::anyhow!("FINQL_TRUSTED_PROXIES: {err}"))?,
            throttle: throttle_settings(&get)?,
            tenancy: TenancySettings::from_lookup(&get, production)?,
            audit: AuditSettings::from_lookup(&get)?,
            freshness: FreshnessSettings::from_lookup(&get)?,
            reconcile: ReconcileSettings::from_lookup(&get)?,
            persisted: PersistedSettings::from_lookup(&get)?,
            warnings,
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// The `FINQL_LOGIN_*`, `FINQL_SIGNUP_*` and `FINQL_REFRESH_*` variables (defaults and their
/// reasons in `throttle::defaults`). A rate of 0, or a backoff base of 0, switches that limit off.
fn throttle_settings(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<ThrottleSettings> {
    use crate::throttle::defaults::*;
    const MINUTE: Duration = Duration::from_secs(60);
    let base = Duration::from_millis(parse_or(get, "FINQL_LOGIN_BACKOFF_BASE_MS", LOGIN_BACKOFF_BASE_MS)?);
    let login_backoff = match base.is_zero() {
        true => None,
        false => Some(Backoff {
            free: parse_or(get, "FINQL_LOGIN_FREE_FAILURES", LOGIN_FREE_FAILURES)?,
            base,
            max: secs(parse_or(get, "FINQL_LOGIN_BACKOFF_MAX_SECS", LOGIN_BACKOFF_MAX_SECS)?).max(base),
            memory: secs(parse_or(get, "FINQL_LOGIN_FAILURE_MEMORY_SECS", LOGIN_FAILURE_MEMORY_SECS)?),
        }),
    };
    let quota = |rate: &str, burst: &str, period: Duration, defaults: (u32, u32)| -> anyhow::Result<Option<Quota>> {
        Ok(Quota::per(period, parse_or(get, rate, defaults.0)?, parse_or(get, burst, defaults.1)?))
    };
    Ok(ThrottleSettings {
        login_backoff,
        login_per_address: quota(
            "FINQL_LOGIN_PER_ADDR_PER_MIN",
            "FINQL_LOGIN_PER_ADDR_BURST",
            MINUTE,
            (LOGIN_PER_ADDR_PER_MIN, LOGIN_PER_ADDR_BURST),
        )?,
        signup_per_address: quota(
            "FINQL_SIGNUP_PER_ADDR_PER_HOUR",
            "FINQL_SIGNUP_PER_ADDR_BURST",
            60 * MINUTE,
            (SIGNUP_PER_ADDR_PER_HOUR, SIGNUP_PER_ADDR_BURST),
        )?,
        refresh_per_address: quota(
            "FINQL_REFRESH_PER_ADDR_PER_MIN",
            "FINQL_REFRESH_PER_ADDR_BURST",
            MINUTE,
            (REFRESH_PER_ADDR_PER_MIN, REFRESH_PER_ADDR_BURST),
        )?,
    })
}

/// A comma list of source names (`itick,simulated`), each once; `what` names the setting in
/// errors.
fn parse_sources(what: &str, raw: &str) -> anyhow::Result<Vec<MarketSourceKind>> {
    let mut sources = Vec::new();
    for name in raw.split(',').map(str::trim) {
        let Some(kind) = MarketSourceKind::parse(name) else {
            bail!("{what} lists `{name}`: the sources are `simulated`, `itick` and `polygon`")
        };
        if sources.contains(&kind) {
            bail!("{what} lists `{name}` twice");
        }
        sources.push(kind);
    }
    Ok(sources)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A duration in milliseconds that must not be zero (a zero timeout would refuse everything).
fn positive_millis(get: &impl Fn(&str) -> Option<String>, key: &str, default: u64) -> anyhow::Result<Duration> {
    match parse_or(get, key, default)? {
        0 => bail!("{key} must be at least 1"),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// A positive number of seconds, fractions allowed (`0.5`), so tests can use short timeouts
/// under the same variable operators set in whole seconds.
fn fractional_secs(get: &impl Fn(&str) -> Option<String>, key: &str, default: f64) -> anyhow::Result<Duration> {
    let secs: f64 = parse_or(get, key, default)?;
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => bail!("{key}=`{secs}` must be a positive number of seconds"),
    }
}

fn parse_or<T>(get: &impl Fn(&str) -> Option<String>, key: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match get(key) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|err| anyhow::anyhow!("{key}=`{raw}` is not valid: {err}")),
    }
}

/// Development convenience: a random secret generated once and kept in the data folder (0600),
/// so tokens survive restarts without anyone having to invent a secret.
fn development_secret(data_dir: &Path) -> anyhow::Result<(Vec<u8>, PathBuf)> {
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok((existing.as_bytes().to_vec(), path));
        }
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data folder {}", data_dir.display()))?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok((secret.into_bytes(), path))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// `vars` as the environment would answer them, for the settings' unit tests.
#[cfg(test)]
fn test_lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: std::collections::HashMap<String, String> =
        vars.iter().map(|(key, value)| ((*key).into(), (*value).into())).collect();
    move |key| vars.get(key).cloned()
}

#[cfg(test)]
mod tests;
