//! T+1 reconciliation reports (`finql reconcile`, `FINQL_RECONCILE_AT`): one run per
//! comparison of a day's daily bars and corporate actions across the configured sources, and
//! one item per instrument with its verdict and differences. A scheduled run claims its day
//! (`claim` is unique), so among replicas started with the same schedule one runs it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReconciliationRuns {
    Table,
    Id,
    Day,
    Market,
    Claim,
    Sources,
    ToleranceBps,
    StartedAt,
    FinishedAt,
    Instruments,
    Matched,
    Different,
    Missing,
    Unavailable,
}

#[derive(DeriveIden)]
enum ReconciliationItems {
    Table,
    RunId,
    Symbol,
    Verdict,
    Differences,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ReconciliationRuns as R;
        let count = |column: R| ColumnDef::new(column).integer().not_null().default(0).to_owned();
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(R::Id).uuid().not_null().primary_key())
                    // `YYYY-MM-DD`: the same text on both backends, ordered as days are.
                    .col(ColumnDef::new(R::Day).string_len(10).not_null())
                    // A market name (`US`, `HK`, `FX`, …) or `*` for the whole catalog.
                    .col(ColumnDef::new(R::Market).string_len(8).not_null())
                    // `schedule:<day>:<market>` for a scheduled run; NULL for an operator's.
                    .col(ColumnDef::new(R::Claim).string_len(64).null().unique_key())
                    .col(ColumnDef::new(R::Sources).string_len(200).not_null())
                    .col(ColumnDef::new(R::ToleranceBps).integer().not_null())
                    .col(ColumnDef::new(R::StartedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(R::FinishedAt).timestamp_with_time_zone().null())
                    .col(count(R::Instruments))
                    .col(count(R::Matched))
                    .col(count(R::Different))
                    .col(count(R::Missing))
                    .col(count(R::Unavailable))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("reconciliation_runs_day")
                    .table(R::Table)
                    .col(R::Day)
                    .col(R::StartedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        use ReconciliationItems as I;
        manager
            .create_table(
                Table::create()
                    .table(I::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(I::RunId).uuid().not_null())
                    .col(ColumnDef::new(I::Symbol).string_len(32).not_null())
                    .col(ColumnDef::new(I::Verdict).string_len(16).not_null())
                    // JSON: [{"field", "source", "value", "reference", "referenceValue", "bps"}, …]
                    .col(ColumnDef::new(I::Differences).text().not_null())
                    .primary_key(Index::create().col(I::RunId).col(I::Symbol))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ReconciliationItems::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ReconciliationRuns::Table).to_owned()).await
    }
}
