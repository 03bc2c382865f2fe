//! finql's schema history. Each migration is a module; `Migrator` runs them in order.
//! Used by `finql migrate`, by `finql serve` at start-up, and by the `migration` CLI.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_accounts;
mod m20261124_000002_transactions;
mod m20261124_000003_securities;
mod m20261124_000004_klines;
mod m20261130_000001_idempotency_keys;
mod m20261201_000001_catalog_listings;
mod m20261202_000001_tenancy;
mod m20261203_000002_audit_log;
mod m20261204_000001_audit_log_retention_by_id;
mod m20261205_000001_transaction_rollups;
mod m20261206_000001_datasets;
mod m20261207_000001_reconciliation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_accounts::Migration),
            Box::new(m20261124_000002_transactions::Migration),
            Box::new(m20261124_000003_securities::Migration),
            Box::new(m20261124_000004_klines::Migration),
            Box::new(m20261130_000001_idempotency_keys::Migration),
            Box::new(m20261201_000001_catalog_listings::Migration),
            Box::new(m20261202_000001_tenancy::Migration),
            Box::new(m20261203_000002_audit_log::Migration),
            Box::new(m20261204_000001_audit_log_retention_by_id::Migration),
            Box::new(m20261205_000001_transaction_rollups::Migration),
            Box::new(m20261206_000001_datasets::Migration),
            Box::new(m20261207_000001_reconciliation::Migration),
        ]
    }
}
