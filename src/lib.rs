//! finql: one GraphQL endpoint for market data, reference data, accounts and personal-finance
//! ledgers.
//!
//! Code tour, in the order a request travels:

#![forbid(unsafe_code)]

/// Users, passwords (argon2id), access tokens (JWT) and rotating refresh tokens.
pub mod accounts;
/// `App::build` wires config -> database -> services -> router; `run_until` serves until a signal.
pub mod app;
/// Typed configuration read once from the environment (and `.env`); secrets never print.
pub mod config;
/// Database connection and migrations (SQLite by default, PostgreSQL in production).
pub mod db;
/// The one error enum (`AppError`, services to resolvers), how each variant becomes a GraphQL
/// `extensions.code`, and how a market source's `SourceError` becomes an `AppError`.
pub mod error;
/// Schema assembly, request context, safety limits and error-code mapping. No business logic.
pub mod graphql;
/// HTTP edge: GraphQL over HTTP and WebSocket, GraphiQL, health and readiness.
pub mod http;
/// Personal-finance transactions: money, CRUD, keyset pagination and SQL analytics.
pub mod ledger;
/// Live market data: the `MarketStream` seam, feeds (one process or replicas), the fan-out hub,
/// subscriptions.
pub mod live;
/// Market data: quotes, klines, order books and ticks from pluggable sources.
pub mod market;
/// Reference data: symbols and the instrument catalog.
pub mod reference;
/// Bounded waits on what finql does not control: circuit breakers, Redis call timeouts.
pub mod resilience;
/// Market-data providers, each owning its request side (`MarketSource`) and its live side
/// (`MarketStream`): iTick and the simulated market; `build_source` and `build_stream`.
pub mod sources;
/// Logging set-up: human-readable by default, JSON with `FINQL_LOG_FORMAT=json`.
pub mod telemetry;
/// Throttling of logins, sign-ups and refreshes: GCRA rates and failure backoff, in process or
/// shared through Redis.
pub mod throttle;

pub use app::{App, AppState};
pub use config::Config;
