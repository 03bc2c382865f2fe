//! The catalog, second edition: each instrument's listing date, quote currencies beside ISO 4217
//! (USDT for pairs quoted in Tether, CNH for the offshore yuan) and fractional lot sizes (a
//! crypto pair's step size: BTCUSDT 0.00001).
//!
//! The table is rebuilt rather than altered: SQLite cannot change a column's type
//! (`lot_size` goes from an integer to an exact decimal, `currency` from 3 to 4 characters), and
//! the catalog is finql's own reference data, written only by migrations, so dropping and
//! reloading it loses nothing. Nothing references `securities` by foreign key.
//!
//! `catalog.csv` is the living catalog, loaded here; the first edition's data stays, frozen, in
//! `catalog_20261124.csv` for `m20261124_000003_securities` (and for `down`). A later change to
//! the catalog freezes this file in the same way and reloads in a new migration, so every
//! database, however old, ends with the same rows.
//!
//! ## `listed_at`
//! The instrument's first trading day (UTC calendar date), from public records: a stock's first
//! day of trading as a listed company (its IPO, or the day it began trading under its current
//! identity: GOOG 2014-04-03 when class C shares were created, TMUS 2013-05-01 after the
//! MetroPCS merger, PYPL and ABBV on their spin-offs; HSBC 1986-04-02, the first day of the
//! unified Stock Exchange of Hong Kong, since its earlier trading predates it), an ETF's
//! launch, an index's launch (first published value, not its back-dated base date), a
//! forex pair's current regime (the later currency's introduction or float: the euro pairs
//! 1999-01-04, USDJPY 1973-02-14, USDHKD's peg 1983-10-17, USDCNH's offshore market
//! 2010-07-19), a crypto pair's first day on Binance (iTick's crypto region), a future's first
//! contract.
//!
//! Where the year is on record but not the day, the date is the year's first trading day (XOM
//! 1920, CVX 1921, BA 1934, MRK 1941, PG 1891), or the best-attested day (GE 1892-06-23, IBM
//! 1916-11-01). JPM, BAC and WFC are left empty: each is a chain of bank mergers whose
//! surviving listing's first day is not on record here. Empty means "not known", not "never".

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

use crate::m20261124_000003_securities::{self as first_edition, split_csv_line};

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
    ListedAt,
}

const CATALOG: &str = include_str!("catalog.csv");

/// Columns of `catalog.csv`: the first edition's eleven, then `listed_at`.
const FIELDS: usize = 12;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Securities as S;
        // Parsed first: a bad catalog fails the migration before the old table is dropped.
        let rows = parse_catalog(CATALOG).map_err(DbErr::Custom)?;
        manager.drop_table(Table::drop().table(S::Table).if_exists().to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(ColumnDef::new(S::Symbol).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(S::AssetClass).string_len(8).not_null())
                    .col(ColumnDef::new(S::Name).string_len(200).not_null())
                    .col(ColumnDef::new(S::Region).string_len(8).not_null())
                    .col(ColumnDef::new(S::ExchangeMic).string_len(4).null())
                    // ISO 4217 codes are 3 letters; market codes beside them (USDT) are longer.
                    .col(ColumnDef::new(S::Currency).string_len(8).not_null())
                    // An exact decimal as text, like the prices in `klines`: SQLite has no exact
                    // decimal type, and a step size such as 0.00001 must not become a float.
                    .col(ColumnDef::new(S::LotSize).string_len(40).not_null())
                    .col(ColumnDef::new(S::Sector).string_len(100).null())
                    .col(ColumnDef::new(S::Industry).string_len(200).null())
                    .col(ColumnDef::new(S::UpstreamRegion).string_len(8).not_null())
                    .col(ColumnDef::new(S::UpstreamCode).string_len(32).not_null())
                    .col(ColumnDef::new(S::SearchText).string_len(300).not_null())
                    .col(ColumnDef::new(S::ListedAt).date().null())
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
        // One INSERT per 100 rows: 13 parameters each stays far below every backend's limit.
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
                S::ListedAt,
            ]);
            for row in chunk {
                let optional = |s: &str| if s.is_empty() { None } else { Some(s.to_owned()) };
                let [symbol, asset_class, name, region, mic, currency, lot, sector, industry, up_region, up_code] =
                    &row.fields;
                insert
                    .values([
                        symbol.clone().into(),
                        asset_class.clone().into(),
                        name.clone().into(),
                        region.clone().into(),
                        optional(mic).into(),
                        currency.clone().into(),
                        lot.clone().into(),
                        optional(sector).into(),
                        optional(industry).into(),
                        up_region.clone().into(),
                        up_code.clone().into(),
                        format!("{symbol} {name}").to_lowercase().into(),
                        row.listed_at.into(),
                    ])
                    .map_err(|err| DbErr::Custom(err.to_string()))?;
            }
            manager.get_connection().execute(&insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Securities::Table).to_owned()).await?;
        first_edition::Migration.up(manager).await
    }
}

struct CatalogRow {
    /// The first edition's columns, as text (`lot_size` checked to be a plain decimal).
    fields: [String; 11],
    listed_at: Option<chrono::NaiveDate>,
}

/// Parses the catalog: CSV with a header, fields quoted with `"` when they hold a comma.
fn parse_catalog(text: &str) -> Result<Vec<CatalogRow>, String> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = number + 1;
        let mut fields = split_csv_line(line);
        if fields.len() != FIELDS {
            return Err(format!("catalog line {line_no}: {} fields, not {FIELDS}", fields.len()));
        }
        let listed = fields.pop().unwrap_or_default();
        let listed_at = if listed.is_empty() {
            None
        } else {
            let date = chrono::NaiveDate::parse_from_str(&listed, "%Y-%m-%d")
                .map_err(|_| format!("catalog line {line_no}: listed_at `{listed}` is not YYYY-MM-DD"))?;
            Some(date)
        };
        let fields: [String; 11] =
            fields.try_into().map_err(|_| format!("catalog line {line_no}: wrong number of fields"))?;
        if !is_positive_decimal(&fields[6]) {
            return Err(format!("catalog line {line_no}: lot size `{}` is not a positive decimal", fields[6]));
        }
        rows.push(CatalogRow { fields, listed_at });
    }
    Ok(rows)
}

/// Plain positive decimal notation (`100`, `0.00001`): what `Security.lot_size` parses.
fn is_positive_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && digits(int)
        && digits(frac)
        && !(s.contains('.') && frac.is_empty())
        && s.bytes().any(|b| b.is_ascii_digit() && b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_parses_with_a_listing_date_for_nearly_every_instrument() {
        let rows = parse_catalog(CATALOG).expect("catalog.csv parses");
        assert_eq!(rows.len(), 140);
        let unknown: Vec<&str> = rows.iter().filter(|r| r.listed_at.is_none()).map(|r| r.fields[0].as_str()).collect();
        assert_eq!(unknown, ["JPM.US", "BAC.US", "WFC.US"]);
        let aapl = rows.iter().find(|r| r.fields[0] == "AAPL.US").expect("AAPL");
        assert_eq!(aapl.listed_at, chrono::NaiveDate::from_ymd_opt(1980, 12, 12));
    }

    #[test]
    fn lot_sizes_are_positive_plain_decimals() {
        for good in ["1", "100", "100000", "0.00001", "0.1"] {
            assert!(is_positive_decimal(good), "{good}");
        }
        for bad in ["", "0", "0.000", "-1", "1e-5", ".5", "5.", "1,000"] {
            assert!(!is_positive_decimal(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod round_trip {
    use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

    use crate::{MigrationName, Migrator, MigratorTrait};

    async fn one(db: &DatabaseConnection, sql: &str) -> String {
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
            .expect("text or integer")
    }

    #[tokio::test]
    async fn up_rebuilds_the_catalog_and_down_restores_the_first_edition() {
        let db = Database::connect("sqlite::memory:").await.expect("in-memory SQLite");
        Migrator::up(&db, None).await.expect("up");
        let btc = "SELECT lot_size FROM securities WHERE symbol = 'CRYPTO:BTCUSDT'";
        assert_eq!(one(&db, "SELECT COUNT(*) FROM securities").await, "140");
        assert_eq!(one(&db, btc).await, "0.00001");
        assert_eq!(one(&db, "SELECT currency FROM securities WHERE symbol = 'FX:USDCNH'").await, "CNH");
        assert_eq!(one(&db, "SELECT listed_at FROM securities WHERE symbol = 'AAPL.US'").await, "1980-12-12");

        // Undo this migration and every later one (each later migration's `down` runs too).
        let all = Migrator::migrations();
        let this = all.iter().position(|m| m.name() == super::Migration.name()).expect("registered");
        Migrator::down(&db, Some((all.len() - this) as u32)).await.expect("down");
        assert_eq!(one(&db, "SELECT COUNT(*) FROM securities").await, "140");
        assert_eq!(one(&db, btc).await, "1", "the first edition's integer lot");
        assert_eq!(one(&db, "SELECT currency FROM securities WHERE symbol = 'CRYPTO:BTCUSDT'").await, "USD");

        Migrator::up(&db, None).await.expect("up again");
        assert_eq!(one(&db, btc).await, "0.00001");
    }
}
