//! finql's integration tests: one binary, one module per area of the API. Every test starts the
//! real server on a random port and speaks GraphQL to it over HTTP or WebSocket.
//!
//! Each test runs against a fresh SQLite database, and again against PostgreSQL (in a schema of
//! its own) when `TEST_DATABASE_URL` is set; see `backend_tests!`.

// A test that cannot unwrap has failed: panicking is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod abuse;
mod accounts;
mod analytics;
mod catalog_indices;
mod catalog_klines_paging;
mod catalog_listing;
mod catalog_quote_currencies;
mod catalog_symbols;
mod fake_itick;
mod fake_itick_ws;
mod fake_server;
mod fundamentals;
mod http;
mod itick_stream;
mod kline_history;
mod ledger;
mod live;
mod live_e2e;
mod live_replicas;
mod market;
mod market_itick;
mod market_redis;
mod market_status;
mod process;
mod reference;
mod schema;
mod ws;
