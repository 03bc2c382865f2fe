//! `migration`: sea-orm-migration's CLI over finql's migrations (`up`, `down`, `status`, ...).
//! `finql migrate` does the same for the common case.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
