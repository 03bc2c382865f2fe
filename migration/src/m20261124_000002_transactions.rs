//! The personal-finance ledger. See `entity::transaction` for why amounts are scaled integers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Id,
    UserId,
    AmountScaled,
    Currency,
    Kind,
    Status,
    Description,
    Category,
    OccurredAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Transactions::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Transactions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Transactions::UserId).uuid().not_null())
                    .col(ColumnDef::new(Transactions::AmountScaled).big_integer().not_null())
                    .col(ColumnDef::new(Transactions::Currency).string_len(3).not_null())
                    .col(ColumnDef::new(Transactions::Kind).string_len(8).not_null())
                    .col(ColumnDef::new(Transactions::Status).string_len(8).not_null())
                    .col(ColumnDef::new(Transactions::Description).string_len(500).null())
                    .col(ColumnDef::new(Transactions::Category).string_len(100).null())
                    .col(ColumnDef::new(Transactions::OccurredAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Transactions::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Transactions::UpdatedAt).timestamp_with_time_zone().not_null())
                    .check(Expr::col(Transactions::AmountScaled).gt(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_transactions_user")
                            .from(Transactions::Table, Transactions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Keyset pagination walks (user, sort key, id) in either direction; analytics scan a
        // user's rows by time. One index per sort order the API offers.
        //
        // The time-ordered index also carries the columns of a typical list view (amount,
        // currency, kind, status): a user's rows are scattered over the table (interleaved with
        // everyone else's), so without them a 50-row page costs 50 heap-page visits. With them,
        // PostgreSQL answers from the index alone (INCLUDE); SQLite, which has no INCLUDE,
        // gets them as trailing key columns, which it also uses as a covering index.
        let list_columns =
            [Transactions::AmountScaled, Transactions::Currency, Transactions::Kind, Transactions::Status];
        let mut by_time = Index::create();
        by_time
            .name("idx_transactions_user_occurred")
            .table(Transactions::Table)
            .col(Transactions::UserId)
            .col(Transactions::OccurredAt)
            .col(Transactions::Id)
            .if_not_exists();
        for column in list_columns {
            if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
                by_time.include(column);
            } else {
                by_time.col(column);
            }
        }
        manager.create_index(by_time.to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_transactions_user_amount")
                    .table(Transactions::Table)
                    .col(Transactions::UserId)
                    .col(Transactions::AmountScaled)
                    .col(Transactions::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Transactions::Table).to_owned()).await
    }
}
