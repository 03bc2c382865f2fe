//! finql: one GraphQL endpoint for market data, reference data, accounts and personal-finance
//! ledgers.
//!
//! Code tour, in the order a request travels:

#![forbid(unsafe_code)]

/// Users, passwords (argon2id), access tokens (JWT) and rotating refresh tokens.
pub mod accounts;
/// `App::build` wires config -> database -> services -> state -> router; `run_until` serves
/// until a signal. The top: nothing but `main` imports it.
pub mod app;
/// The audit trail: one record per GraphQL operation (who, which fields of which symbols, what
/// came of it), written in batches off the request path; read by tenant admins and `finql audit`.
pub mod audit;
/// The operator's commands (`finql tenant …`, `finql key …`) on the configured database, through
/// the tenancy service; only `main` imports it.
pub mod cli;
/// Typed configuration read once from the environment (and `.env`); secrets never print.
pub mod config;
/// Proprietary datasets: manifests (`FINQL_DATASETS_DIR`), their tables, loads from CSV or
/// JSON Lines, and the GraphQL that serves them beside market data.
pub mod datasets;
/// Database connection and migrations (SQLite by default, PostgreSQL in production).
pub mod db;
/// The one error enum (`AppError`, services to resolvers), how each variant becomes a GraphQL
/// `extensions.code`, and how a market source's `SourceError` becomes an `AppError`.
pub mod error;
/// The GraphQL kit every domain's API uses: request context, scalars, paging, argument checks,
/// edge guards, the documents cache, error-code mapping. Imports no domain. No business logic.
pub mod graphql;
/// HTTP edge: GraphQL over HTTP and WebSocket, GraphiQL, health and readiness. Serves an
/// `AppState`; never imports `app`.
pub mod http;
/// Who a request says it is (`Credentials`) and who that makes it (`Principal`: tenant, role,
/// plan): shared by `accounts` and `tenancy`, which check credentials, and the GraphQL kit,
/// which carries them.
pub mod identity;
/// Personal-finance transactions: money, CRUD, keyset pagination and SQL analytics.
pub mod ledger;
/// Live market data: the `MarketStream` seam, feeds (one process or replicas), the fan-out hub,
/// subscriptions.
pub mod live;
/// Market data: quotes, klines, order books and ticks from pluggable sources; and the market
/// API (`market::graphql`), which also serves the catalog's `Security` with its market data.
pub mod market;
/// Prometheus metrics: the process-wide recorder (installed once), the families' descriptions,
/// the HTTP middleware, and the exposition `GET /metrics` serves. Code emits through the
/// `metrics` facade macros; a leaf: imports no domain.
pub mod metrics;
/// Object identification: the `Node` interface over users, transactions, securities and
/// quotes, and `Query.node` / `nodes`; at the top beside `schema` (it names three domains' types).
pub mod node;
/// Persisted documents: APQ's `extensions.persistedQuery` and the GraphQL-over-HTTP
/// `documentId` resolved to their text before the edges read a request, registrations shared
/// through Redis, the safelist mode and its manifest. Imports only leaves.
pub mod persisted;
/// T+1 reconciliation: a day's daily bars and corporate actions compared across sources,
/// reported in the database (`finql reconcile`, `reconciliation(date:)`, `FINQL_RECONCILE_AT`).
pub mod reconcile;
/// Reference data: the instrument catalog, symbols and ISO 4217 currencies; no GraphQL (the
/// `Security` type is the market API's).
pub mod reference;
/// Bounded waits on what finql does not control: circuit breakers, Redis call timeouts.
pub mod resilience;
/// Every domain's `Query`, `Mutation` and `Subscription` merged into the one schema, and its SDL.
pub mod schema;
/// Market-data providers, each owning its request side (`MarketSource`) and its live side
/// (`MarketStream`): iTick and the simulated market; `build_source` and `build_stream`.
pub mod sources;
/// `AppState`: the services built at start, and `prepare`, which attaches the request context
/// and each domain's DataLoaders to a GraphQL request.
pub mod state;
/// Logs (human-readable, or JSON with `FINQL_LOG_FORMAT=json`) and traces: each request's W3C
/// trace id and spans, `traceparent` in and out, OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set. A leaf: imports only `config`.
pub mod telemetry;
/// Tenants on plans, their API keys and members; who a request's credentials make the caller
/// (`identity::Principal`).
pub mod tenancy;
/// Throttling of logins, sign-ups and refreshes: GCRA rates and failure backoff, in process or
/// shared through Redis.
pub mod throttle;
/// Usage metering: requests, cost, errors, rate-limited requests, response bytes and
/// subscription-seconds per tenant, actor and UTC hour; counted in memory, flushed in batches
/// that add across replicas; reported to tenant admins and operators (`finql usage`).
pub mod usage;

pub use app::App;
pub use config::Config;
pub use state::AppState;
