//! Kline history: closed bars kept in the database, and the ranges known to be complete.
//!
//! A closed bar never changes, and upstream plans allow a few hundred calls a minute, so a
//! range fetched once is served from here forever after. Bars alone cannot say whether a range
//! is complete (markets close at night and at weekends, so gaps are normal), hence
//! `kline_coverage`: each row says every bar of `[from_time, to_time)` is stored.
//!
//! Rows are keyed by the source that produced them: switching `FINQL_MARKET_SOURCE` never
//! serves one provider's history as another's. Prices and sizes are exact decimal strings:
//! nothing aggregates them in SQL, SQLite has no exact decimal type, and a scaled integer
//! cannot hold both a 10⁻⁸ crypto price and a 10¹² turnover.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Klines {
    Table,
    Source,
    Symbol,
    Interval,
    Time,
    Open,
    High,
    Low,
    Close,
    Volume,
    Turnover,
}

#[derive(DeriveIden)]
enum KlineCoverage {
    Table,
    Source,
    Symbol,
    Interval,
    FromTime,
    ToTime,
    HistoryStart,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Klines as K;
        let decimal = |column: K| ColumnDef::new(column).string_len(40).not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(K::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(K::Source).string_len(32).not_null())
                    .col(ColumnDef::new(K::Symbol).string_len(32).not_null())
                    .col(ColumnDef::new(K::Interval).string_len(4).not_null())
                    .col(ColumnDef::new(K::Time).timestamp_with_time_zone().not_null())
                    .col(decimal(K::Open))
                    .col(decimal(K::High))
                    .col(decimal(K::Low))
                    .col(decimal(K::Close))
                    .col(decimal(K::Volume))
                    .col(decimal(K::Turnover))
                    // One bar per (source, symbol, interval, start): the key is also the index
                    // every read walks, newest first.
                    .primary_key(Index::create().col(K::Source).col(K::Symbol).col(K::Interval).col(K::Time))
                    .to_owned(),
            )
            .await?;
        use KlineCoverage as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(C::Source).string_len(32).not_null())
                    .col(ColumnDef::new(C::Symbol).string_len(32).not_null())
                    .col(ColumnDef::new(C::Interval).string_len(4).not_null())
                    .col(ColumnDef::new(C::FromTime).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(C::ToTime).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(C::HistoryStart).boolean().not_null())
                    .primary_key(Index::create().col(C::Source).col(C::Symbol).col(C::Interval).col(C::FromTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(KlineCoverage::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Klines::Table).to_owned()).await
    }
}
