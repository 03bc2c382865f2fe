//! T+1 reconciliation: the day's daily bars (OHLCV) and corporate actions of every instrument,
//! asked of every configured source and compared, with a report in the database for tenant
//! admins (`reconciliation(date:)`) and operators (`finql reconcile`).
//!
//! Providers disagree more often than one would hope (a late print, a consolidated versus a
//! primary-exchange volume, a split one of them missed); finding it the next morning, with each
//! difference named, is how a desk trusts the numbers it serves. The rules are in `compare`
//! (pure), the walk over the catalog in `service`, the report in `store`, and the daily run
//! in `schedule` (`FINQL_RECONCILE_AT`; one replica runs each day, by a claim in the
//! database).

/// One instrument's day compared across sources: verdicts and differences.
pub mod compare;
/// `reconciliation(date:, market:)`: the latest report of a day.
pub mod graphql;
/// The daily run at `FINQL_RECONCILE_AT`, claimed by one replica.
pub mod schedule;
/// `Reconciler`: the walk over the catalog.
pub mod service;
/// Runs and items in the database.
pub mod store;

pub use service::Reconciler;
pub use store::ReconciliationStore;
