//! Tenancy: tenants, their API keys, each user's tenant and role, and hourly usage.
//!
//! `users.tenant_id` is added nullable: the default tenant's slug is configuration
//! (`FINQL_DEFAULT_TENANT`), unknown here, so the server creates that tenant on start and moves
//! every user without a tenant into it (`tenancy::TenancyService::ensure_default_tenant`). After
//! that first start no row has a null tenant; new users always get one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    Name,
    Plan,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    TenantId,
    Role,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Prefix,
    SecretHash,
    Name,
    Scopes,
    RatePerSecond,
    Burst,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum UsageHourly {
    Table,
    TenantId,
    Actor,
    Hour,
    Requests,
    Cost,
    Errors,
    RateLimited,
    ResponseBytes,
    SubscriptionSeconds,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Tenants::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Tenants::Slug).string_len(63).not_null().unique_key())
                    .col(ColumnDef::new(Tenants::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Tenants::Plan).string_len(64).not_null())
                    .col(ColumnDef::new(Tenants::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Tenants::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        // Two statements: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(ColumnDef::new(Users::TenantId).uuid().null()).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::Role).string_len(16).not_null().default("MEMBER"))
                    .to_owned(),
            )
            .await?;
        // Members are listed per tenant.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_tenant")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ApiKeys::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::TenantId).uuid().not_null())
                    // The visible part of `fq_<prefix>_<secret>`: how a key is found, unique.
                    .col(ColumnDef::new(ApiKeys::Prefix).string_len(16).not_null().unique_key())
                    .col(ColumnDef::new(ApiKeys::SecretHash).string_len(64).not_null())
                    .col(ColumnDef::new(ApiKeys::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ApiKeys::Scopes).string_len(32).not_null())
                    .col(ColumnDef::new(ApiKeys::RatePerSecond).integer().null())
                    .col(ColumnDef::new(ApiKeys::Burst).integer().null())
                    .col(ColumnDef::new(ApiKeys::CreatedBy).uuid().null())
                    .col(ColumnDef::new(ApiKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ApiKeys::ExpiresAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ApiKeys::LastUsedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_tenant")
                            .from(ApiKeys::Table, ApiKeys::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_tenant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::TenantId)
                    .col(ApiKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageHourly::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(UsageHourly::TenantId).uuid().not_null())
                    // `user:<id>`, `key:<prefix>` (see `identity::Principal::actor`).
                    .col(ColumnDef::new(UsageHourly::Actor).string_len(64).not_null())
                    // The hour's start, UTC.
                    .col(ColumnDef::new(UsageHourly::Hour).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(UsageHourly::Requests).big_integer().not_null().default(0))
                    .col(ColumnDef::new(UsageHourly::Cost).big_integer().not_null().default(0))
                    .col(ColumnDef::new(UsageHourly::Errors).big_integer().not_null().default(0))
                    .col(ColumnDef::new(UsageHourly::RateLimited).big_integer().not_null().default(0))
                    .col(ColumnDef::new(UsageHourly::ResponseBytes).big_integer().not_null().default(0))
                    .col(ColumnDef::new(UsageHourly::SubscriptionSeconds).big_integer().not_null().default(0))
                    // One row per (tenant, actor, hour): every replica adds to it with an upsert.
                    .primary_key(
                        Index::create().col(UsageHourly::TenantId).col(UsageHourly::Hour).col(UsageHourly::Actor),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsageHourly::Table).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(ApiKeys::Table).if_exists().to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_users_tenant").table(Users::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::Role).to_owned()).await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::TenantId).to_owned()).await?;
        manager.drop_table(Table::drop().table(Tenants::Table).if_exists().to_owned()).await?;
        Ok(())
    }
}
