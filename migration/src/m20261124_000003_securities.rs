//! The reference catalog: the `securities` table, filled from `catalog_20261124.csv` (shipped in
//! the binary): the catalog as it was first released, frozen. A later change to the catalog is a
//! new migration (`m20261201_000001_catalog_listings` reloads the living `catalog.csv`), so every
//! database agrees on it.

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Securities {
    Table,
    Symbol,
    AssetClass,
    Name,
    Region,
    ExchangeMic,
    Currency,
    LotSize,
    Sector,
    Industry,
    UpstreamRegion,
    UpstreamCode,
    SearchText,
}

const CATALOG: &str = include_str!("catalog_20261124.csv");

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Securities as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(S::Symbol).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(S::AssetClass).string_len(8).not_null())
                    .col(ColumnDef::new(S::Name).string_len(200).not_null())
                    .col(ColumnDef::new(S::Region).string_len(8).not_null())
                    .col(ColumnDef::new(S::ExchangeMic).string_len(4).null())
                    .col(ColumnDef::new(S::Currency).string_len(3).not_null())
                    .col(ColumnDef::new(S::LotSize).big_integer().not_null())
                    .col(ColumnDef::new(S::Sector).string_len(100).null())
                    .col(ColumnDef::new(S::Industry).string_len(200).null())
                    .col(ColumnDef::new(S::UpstreamRegion).string_len(8).not_null())
                    .col(ColumnDef::new(S::UpstreamCode).string_len(32).not_null())
                    .col(ColumnDef::new(S::SearchText).string_len(300).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [("idx_securities_asset_class", S::AssetClass), ("idx_securities_region", S::Region)] {
            manager
                .create_index(
                    Index::create().name(name).table(S::Table).col(column).col(S::Symbol).if_not_exists().to_owned(),
                )
                .await?;
        }
        let rows = parse_catalog(CATALOG).map_err(DbErr::Custom)?;
        // One INSERT per 100 rows: 12 parameters each stays far below every backend's limit.
        for chunk in rows.chunks(100) {
            let mut insert = Query::insert();
            insert.into_table(S::Table).columns([
                S::Symbol,
                S::AssetClass,
                S::Name,
                S::Region,
                S::ExchangeMic,
                S::Currency,
                S::LotSize,
                S::Sector,
                S::Industry,
                S::UpstreamRegion,
                S::UpstreamCode,
                S::SearchText,
            ]);
            for row in chunk {
                let optional = |s: &str| if s.is_empty() { None } else { Some(s.to_owned()) };
                insert
                    .values([
                        row.symbol.clone().into(),
                        row.asset_class.clone().into(),
                        row.name.clone().into(),
                        row.region.clone().into(),
                        optional(&row.exchange_mic).into(),
                        row.currency.clone().into(),
                        row.lot_size.into(),
                        optional(&row.sector).into(),
                        optional(&row.industry).into(),
                        row.upstream_region.clone().into(),
                        row.upstream_code.clone().into(),
                        format!("{} {}", row.symbol, row.name).to_lowercase().into(),
                    ])
                    .map_err(|err| DbErr::Custom(err.to_string()))?;
            }
            manager.get_connection().execute(&insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Securities::Table).to_owned()).await
    }
}

struct CatalogRow {
    symbol: String,
    asset_class: String,
    name: String,
    region: String,
    exchange_mic: String,
    currency: String,
    lot_size: i64,
    sector: String,
    industry: String,
    upstream_region: String,
    upstream_code: String,
}

/// Parses the catalog: CSV with a header, fields quoted with `"` when they hold a comma.
fn parse_catalog(text: &str) -> Result<Vec<CatalogRow>, String> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line);
        let [symbol, asset_class, name, region, mic, currency, lot, sector, industry, up_region, up_code] =
            <[String; 11]>::try_from(fields)
                .map_err(|f| format!("catalog line {}: {} fields, not 11", number + 1, f.len()))?;
        rows.push(CatalogRow {
            lot_size: lot.parse().map_err(|_| format!("catalog line {}: lot size `{lot}`", number + 1))?,
            symbol,
            asset_class,
            name,
            region,
            exchange_mic: mic,
            currency,
            sector,
            industry,
            upstream_region: up_region,
            upstream_code: up_code,
        });
    }
    Ok(rows)
}

/// Splits one CSV line into trimmed fields (`"` quotes a field; `""` inside one is a quote).
pub(crate) fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields.into_iter().map(|f| f.trim().to_owned()).collect()
}
