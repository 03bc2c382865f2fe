//! Idempotency keys of writes (see `entity::idempotency_key`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    Operation,
    RequestHash,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(IdempotencyKeys::UserId).uuid().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Key).string_len(255).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Operation).string_len(32).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::RequestHash).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Response).text().null())
                    .col(ColumnDef::new(IdempotencyKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    // The unique (user, key) pair is what makes one of several concurrent
                    // duplicates win: the others' inserts wait for it, then fail.
                    .primary_key(Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_idempotency_keys_user")
                            .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The periodic purge deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await
    }
}
