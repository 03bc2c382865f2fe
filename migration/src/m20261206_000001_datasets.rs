//! The registry of proprietary datasets: one row per dataset whose table finql created from
//! its manifest (`FINQL_DATASETS_DIR`), with the columns that table has. The tables themselves
//! (`ds_<name>`) are created and widened by the server from the manifests (`datasets::store`),
//! since their shape is configuration, not code; this row is how a later start knows what
//! exists (a new field becomes a column; a changed type or key is refused) without reading
//! each backend's catalog.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Datasets {
    Table,
    Name,
    KeyColumns,
    Columns,
    RowCount,
    LoadedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Datasets as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(D::Name).string_len(48).not_null().primary_key())
                    // `symbol` or `symbol,time`.
                    .col(ColumnDef::new(D::KeyColumns).string_len(16).not_null())
                    // JSON: {"field": "type", …}, every column the table has (fields dropped from
                    // the manifest included: their data stays, and their type stays taken).
                    .col(ColumnDef::new(D::Columns).text().not_null())
                    .col(ColumnDef::new(D::RowCount).big_integer().not_null().default(0))
                    .col(ColumnDef::new(D::LoadedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(D::CreatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Datasets::Table).to_owned()).await
    }
}
