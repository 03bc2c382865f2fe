//! finql's integration tests: one binary whose modules mirror `src/` (crates.io style), so a
//! module's tests are where the module is: `accounts`, `ledger/`, `market/`, `sources/itick/`,
//! `live/`, `http/` (with `http::ws`), `database` (the pool under pressure), `metrics/`, `telemetry`, `node` (global ids), `nulls` (null
//! propagation), `scalars` and `schema`. `abuse/` replays attacks that cross modules;
//! `helpers/` is the harness every test shares (`spawn_app`, `TestApp`, `backend_tests!`, waits,
//! finql as its own process, and the plumbing of the fake upstreams).
//!
//! Most tests start the real server on a random port and speak GraphQL to it over HTTP or
//! WebSocket; the provider tests drive a source or stream directly against a fake upstream.
//! Each database test runs against a fresh SQLite database, and again against PostgreSQL (in a
//! schema of its own) when `TEST_DATABASE_URL` is set; see `backend_tests!`.

// A test that cannot unwrap has failed: panicking is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod abuse;
mod accounts;
mod audit;
mod database;
mod datasets;
mod http;
mod ledger;
mod live;
mod market;
mod metrics;
mod node;
mod nulls;
mod scalars;
mod schema;
mod sources;
mod telemetry;
mod tenancy;
