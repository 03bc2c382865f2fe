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
        for (name, sort_col) in [
            ("idx_transactions_user_occurred", Transactions::OccurredAt),
            ("idx_transactions_user_amount", Transactions::AmountScaled),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Transactions::Table)
                        .col(Transactions::UserId)
                        .col(sort_col)
                        .col(Transactions::Id)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Transactions::Table).to_owned()).await
    }
}
