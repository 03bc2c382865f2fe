//! The audit trail: one row per GraphQL operation (an HTTP request's, or a WebSocket
//! operation's; a subscription has a row when it starts and one when it ends).
//!
//! Rows are only ever appended (by the server's audit writer, in batches) and deleted (by
//! retention, oldest first), never updated. Lists (field paths, symbols, error codes) are
//! comma-separated text rather than child tables: a row is written in one INSERT with the
//! batch, and the symbol filter is a `LIKE '%,AAPL.US,%'` on a column whose values are wrapped
//! in commas (canonical symbols hold no comma, `%` or `_`). Portable across SQLite and
//! PostgreSQL; a deployment that searches symbols across months can add a trigram index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    TraceId,
    TenantId,
    Principal,
    Event,
    Transport,
    OperationType,
    OperationName,
    DocumentHash,
    Fields,
    Symbols,
    Outcome,
    ErrorCodes,
    DurationUs,
    ResponseBytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    // UUID v7: time-ordered, so the cursor (at, id) pages in insertion order.
                    .col(ColumnDef::new(AuditLog::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AuditLog::At).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(AuditLog::TraceId).string_len(64).null())
                    // Null for callers without a tenant (anonymous, refused credentials).
                    .col(ColumnDef::new(AuditLog::TenantId).uuid().null())
                    // `user:<id>`, `key:<prefix>` or `anonymous` (`identity::Principal::actor`).
                    .col(ColumnDef::new(AuditLog::Principal).string_len(64).not_null())
                    // `request`, `subscription_start`, `subscription_end`.
                    .col(ColumnDef::new(AuditLog::Event).string_len(24).not_null())
                    // `http` or `ws`.
                    .col(ColumnDef::new(AuditLog::Transport).string_len(8).not_null())
                    .col(ColumnDef::new(AuditLog::OperationType).string_len(16).null())
                    .col(ColumnDef::new(AuditLog::OperationName).string_len(128).null())
                    // SHA-256 of the query text, hex.
                    .col(ColumnDef::new(AuditLog::DocumentHash).string_len(64).null())
                    .col(ColumnDef::new(AuditLog::Fields).text().not_null())
                    .col(ColumnDef::new(AuditLog::Symbols).text().not_null())
                    // `ok`, `error` or `refused`.
                    .col(ColumnDef::new(AuditLog::Outcome).string_len(16).not_null())
                    .col(ColumnDef::new(AuditLog::ErrorCodes).string_len(512).not_null())
                    .col(ColumnDef::new(AuditLog::DurationUs).big_integer().not_null())
                    .col(ColumnDef::new(AuditLog::ResponseBytes).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // A tenant admin's pages (newest first) and the CLI's ranges.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_tenant_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::TenantId)
                    .col(AuditLog::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Retention deletes the oldest rows, whatever their tenant.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditLog::Table).if_exists().to_owned()).await?;
        Ok(())
    }
}
