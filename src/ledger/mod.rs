//! The personal-finance ledger: a user's transactions, and analytics over them.
//!
//! Every query here is scoped by the owner's id in SQL, so another user's transaction is
//! indistinguishable from one that does not exist.

/// Totals, averages, busiest day and breakdowns, from the per-day rollups.
pub mod analytics;
/// Resolvers: `transaction(s)`, mutations, `transactionAnalytics`.
pub mod graphql;
/// Idempotency keys: a retried write answered with the first result, applied once.
pub mod idempotency;
/// Filtered, ordered keyset pagination with opaque cursors; column selection.
pub mod listing;
/// `Currency` (ISO 4217 with minor units) and `Money` (exact, scaled integers).
pub mod money;
/// Per-day rollups kept with every write, and the cells analyses read from them.
pub mod rollup;
/// The transaction record, its enums, and create / read / update / delete.
pub mod service;
/// `OccurredAt` (1970 to 2099) and time-range bounds.
pub mod time;

pub use service::LedgerService;
