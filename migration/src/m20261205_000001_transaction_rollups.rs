//! Per-day rollups of the ledger, so that analytics read a few rows per day a user has
//! transactions instead of every transaction (`ledger::rollup` in the server keeps them in the
//! same database transaction as every write). One row per user, currency, UTC day, kind,
//! status and category (`''` for none: a category is never blank), with the count and the
//! scaled amounts summed in two parts (whole units and 10^-4 remainders), as the raw
//! aggregates are, so no 64-bit sum overflows. The migration backfills existing ledgers.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TransactionRollups {
    Table,
    UserId,
    Currency,
    Day,
    Kind,
    Status,
    Category,
    N,
    Units,
    Rem,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use TransactionRollups as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(R::UserId).uuid().not_null())
                    .col(ColumnDef::new(R::Currency).string_len(3).not_null())
                    // `YYYY-MM-DD` (UTC): the same text on both backends, ordered as days are.
                    .col(ColumnDef::new(R::Day).string_len(10).not_null())
                    .col(ColumnDef::new(R::Kind).string_len(8).not_null())
                    .col(ColumnDef::new(R::Status).string_len(8).not_null())
                    .col(ColumnDef::new(R::Category).string_len(100).not_null())
                    .col(ColumnDef::new(R::N).big_integer().not_null())
                    .col(ColumnDef::new(R::Units).big_integer().not_null())
                    .col(ColumnDef::new(R::Rem).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(R::UserId)
                            .col(R::Currency)
                            .col(R::Day)
                            .col(R::Kind)
                            .col(R::Status)
                            .col(R::Category),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_transaction_rollups_user")
                            .from(R::Table, R::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let day = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            _ => "strftime('%Y-%m-%d', occurred_at)",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO transaction_rollups (user_id, currency, day, kind, status, category, n, units, rem) \
                 SELECT user_id, currency, {day}, kind, status, COALESCE(category, ''), COUNT(*), \
                 CAST(SUM(amount_scaled / 10000) AS BIGINT), CAST(SUM(amount_scaled % 10000) AS BIGINT) \
                 FROM transactions GROUP BY user_id, currency, {day}, kind, status, COALESCE(category, '')"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TransactionRollups::Table).if_exists().to_owned()).await
    }
}
