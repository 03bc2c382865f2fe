//! SeaORM models for finql's tables, and nothing else.
//!
//! These are storage shapes, never published directly: the GraphQL layer has its own output types
//! (a `users` row carries `password_hash`, which must never reach a client).

pub mod api_key;
pub mod audit_log;
pub mod idempotency_key;
pub mod kline;
pub mod kline_coverage;
pub mod reconciliation_item;
pub mod reconciliation_run;
pub mod refresh_token;
pub mod security;
pub mod tenant;
pub mod transaction;
pub mod usage_hourly;
pub mod user;
