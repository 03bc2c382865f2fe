//! Audit retention deletes by id (UUID v7: time-ordered, by the primary key) rather than by
//! `at`, so the `at` index is no longer read, only written: one index fewer per audit record
//! (the writer appends thousands a second; see `audit::append` in the server).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_audit_log_at").table(Alias::new("audit_log")).if_exists().to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table(Alias::new("audit_log"))
                    .col(Alias::new("at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
