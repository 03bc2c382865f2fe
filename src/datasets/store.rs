//! Datasets in the database: each in its own table (`ds_<name>`, a column per field, the key as
//! primary key), created and widened from its manifest, written in one transaction per load,
//! read by key range.
//!
//! The tables' shape is configuration, so it is applied at start (`sync`) rather than by a
//! migration: a new field is a new nullable column; a changed type or key is refused with what
//! to do, since converting stored values silently is how data gets lost. The `datasets`
//! registry (a migration) records every column a table has. On PostgreSQL replicas starting
//! together take a transaction-scoped advisory lock, so one of them alters and the others find
//! it done. Statements are built with sea-query (identifiers quoted, values bound), never by
//! formatting text.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait,
    sea_query::{
        Alias, ColumnDef, Expr, ExprTrait, Index, OnConflict, Order, Query, SimpleExpr, Table, Value as SqlValue,
    },
};

use super::{
    manifest::{FieldType, Manifest},
    value::Value,
};
use crate::error::{AppError, AppResult};

/// Values bound per INSERT statement at most: far below SQLite's 32,766 and PostgreSQL's
/// 65,535, and large enough that a statement carries hundreds of rows.
const MAX_BOUND: usize = 8_000;
/// The advisory-lock key of dataset schema changes ("fqds").
const SCHEMA_LOCK: i64 = 0x6671_6473;

/// One row: the key, then the values in the manifest's field order (`None`: no value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub symbol: String,
    /// `None` for a dataset keyed by symbol alone.
    pub time: Option<DateTime<Utc>>,
    pub values: Vec<Option<Value>>,
}

/// Which rows to read: these symbols, `from <= time < to`, after `after`, at most `limit`,
/// ordered by symbol then time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Range {
    pub symbols: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    pub limit: u64,
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Creates or widens each manifest's table; refuses a change it cannot make safely.
    pub async fn sync(&self, manifests: &[Manifest]) -> anyhow::Result<()> {
        let txn = self.db.begin().await.context("syncing dataset tables")?;
        let backend = txn.get_database_backend();
        if backend == DbBackend::Postgres {
            let lock =
                Statement::from_sql_and_values(backend, "SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK.into()]);
            txn.execute_raw(lock).await.context("waiting for another replica's dataset tables")?;
        }
        for manifest in manifests {
            sync_one(&txn, backend, manifest).await.with_context(|| format!("dataset `{}`", manifest.name))?;
        }
        txn.commit().await.context("syncing dataset tables")
    }

    /// Writes `rows` (upserted by key; with `replace`, instead of every row the table had) in
    /// one transaction; returns how many rows the dataset holds after.
    pub async fn write(&self, manifest: &Manifest, rows: &[Row], replace: bool) -> AppResult<u64> {
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        let table = Alias::new(manifest.table());
        if replace {
            txn.execute_raw(backend.build(&Query::delete().from_table(table.clone()).to_owned())).await?;
        }
        let mut columns: Vec<Alias> = manifest.key.columns().iter().map(|c| Alias::new(*c)).collect();
        columns.extend(manifest.fields.iter().map(|f| Alias::new(&f.name)));
        let per_statement = (MAX_BOUND / columns.len()).max(1);
        for chunk in rows.chunks(per_statement) {
            let mut insert = Query::insert();
            insert.into_table(table.clone()).columns(columns.clone());
            for row in chunk {
                let mut values: Vec<SimpleExpr> = vec![row.symbol.clone().into()];
                if manifest.key.has_time() {
                    values.push(SqlValue::ChronoDateTimeUtc(row.time).into());
                }
                for (field, value) in manifest.fields.iter().zip(&row.values) {
                    values.push(Value::bind(field.ty, value.as_ref()).into());
                }
                insert.values(values).map_err(AppError::internal)?;
            }
            let key = manifest.key.columns().iter().map(|c| Alias::new(*c));
            let fields = manifest.fields.iter().map(|f| Alias::new(&f.name));
            insert.on_conflict(OnConflict::columns(key).update_columns(fields).to_owned());
            txn.execute_raw(backend.build(&insert)).await?;
        }
        let count =
            Query::select().expr_as(Expr::col(Alias::new("symbol")).count(), Alias::new("n")).from(table).to_owned();
        let count = txn.query_one_raw(backend.build(&count)).await?.map(|r| r.try_get::<i64>("", "n")).transpose()?;
        let count = u64::try_from(count.unwrap_or(0)).unwrap_or(0);
        let registry = Query::update()
            .table(Alias::new("datasets"))
            .value(Alias::new("row_count"), i64::try_from(count).unwrap_or(i64::MAX))
            .value(Alias::new("loaded_at"), Utc::now())
            .and_where(Expr::col(Alias::new("name")).eq(manifest.name.as_str()))
            .to_owned();
        txn.execute_raw(backend.build(&registry)).await?;
        txn.commit().await?;
        Ok(count)
    }

    /// The rows of `range`, ordered by symbol then time.
    pub async fn read(&self, manifest: &Manifest, range: &Range) -> AppResult<Vec<Row>> {
        let mut select = Query::select();
        select.from(Alias::new(manifest.table())).column(Alias::new("symbol"));
        let time = || Expr::col(Alias::new("time"));
        if manifest.key.has_time() {
            select.column(Alias::new("time"));
        }
        select.columns(manifest.fields.iter().map(|f| Alias::new(&f.name)));
        select.and_where(Expr::col(Alias::new("symbol")).is_in(range.symbols.iter().map(String::as_str)));
        if manifest.key.has_time() {
            if let Some(from) = range.from {
                select.and_where(time().gte(from));
            }
            if let Some(to) = range.to {
                select.and_where(time().lt(to));
            }
            if let Some(after) = range.after {
                select.and_where(time().gt(after));
            }
            select.order_by(Alias::new("symbol"), Order::Asc).order_by(Alias::new("time"), Order::Asc);
        } else {
            select.order_by(Alias::new("symbol"), Order::Asc);
        }
        select.limit(range.limit);
        let rows = self.db.query_all_raw(self.db.get_database_backend().build(&select)).await?;
        rows.iter()
            .map(|row| {
                let symbol = row.try_get::<String>("", "symbol")?;
                let time = if manifest.key.has_time() { Some(row.try_get::<DateTime<Utc>>("", "time")?) } else { None };
                let values =
                    manifest.fields.iter().map(|f| Value::read(row, &f.name, f.ty)).collect::<Result<Vec<_>, _>>()?;
                Ok(Row { symbol, time, values })
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(AppError::from)
    }
}

/// What the registry says a table has.
struct Registered {
    key: String,
    columns: BTreeMap<String, String>,
}

async fn sync_one(txn: &impl ConnectionTrait, backend: DbBackend, manifest: &Manifest) -> anyhow::Result<()> {
    let key = manifest.key.columns().join(",");
    let registered = registered(txn, backend, &manifest.name).await?;
    let table = Alias::new(manifest.table());
    let Some(mut registered) = registered else {
        let mut create = Table::create();
        create.table(table).if_not_exists().col(ColumnDef::new(Alias::new("symbol")).string_len(32).not_null());
        if manifest.key.has_time() {
            create.col(ColumnDef::new(Alias::new("time")).timestamp_with_time_zone().not_null());
        }
        for field in &manifest.fields {
            create.col(column(&field.name, field.ty));
        }
        let mut primary = Index::create();
        for column in manifest.key.columns() {
            primary.col(Alias::new(*column));
        }
        create.primary_key(&mut primary);
        txn.execute_raw(backend.build(&create)).await?;
        let columns: BTreeMap<_, _> =
            manifest.fields.iter().map(|f| (f.name.clone(), f.ty.as_str().to_owned())).collect();
        let insert = Query::insert()
            .into_table(Alias::new("datasets"))
            .columns(["name", "key_columns", "columns", "created_at"].map(Alias::new))
            .values_panic([
                manifest.name.as_str().into(),
                key.into(),
                serde_json::to_string(&columns)?.into(),
                Utc::now().into(),
            ])
            .to_owned();
        txn.execute_raw(backend.build(&insert)).await?;
        tracing::info!(dataset = %manifest.name, "dataset table created");
        return Ok(());
    };
    if registered.key != key {
        bail!(
            "its key was [{}] and the manifest now says [{key}]: a key cannot change in place; \
             drop the table {} (and its row in `datasets`) to recreate it, or declare a new dataset",
            registered.key,
            manifest.table()
        );
    }
    let mut added = false;
    for field in &manifest.fields {
        match registered.columns.get(&field.name) {
            Some(ty) if ty == field.ty.as_str() => {}
            Some(ty) => bail!(
                "field `{}` was {ty} and the manifest now says {}: stored values are not converted; \
                 give the new type a new field name",
                field.name,
                field.ty
            ),
            None => {
                let alter = Table::alter().table(table.clone()).add_column(column(&field.name, field.ty)).to_owned();
                txn.execute_raw(backend.build(&alter)).await?;
                registered.columns.insert(field.name.clone(), field.ty.as_str().to_owned());
                added = true;
                tracing::info!(dataset = %manifest.name, field = %field.name, "dataset field added");
            }
        }
    }
    if added {
        let update = Query::update()
            .table(Alias::new("datasets"))
            .value(Alias::new("columns"), serde_json::to_string(&registered.columns)?)
            .and_where(Expr::col(Alias::new("name")).eq(manifest.name.as_str()))
            .to_owned();
        txn.execute_raw(backend.build(&update)).await?;
    }
    Ok(())
}

async fn registered(txn: &impl ConnectionTrait, backend: DbBackend, name: &str) -> anyhow::Result<Option<Registered>> {
    let select = Query::select()
        .columns(["key_columns", "columns"].map(Alias::new))
        .from(Alias::new("datasets"))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .to_owned();
    let Some(row) = txn.query_one_raw(backend.build(&select)).await? else { return Ok(None) };
    let columns: String = row.try_get("", "columns")?;
    Ok(Some(Registered { key: row.try_get("", "key_columns")?, columns: serde_json::from_str(&columns)? }))
}

/// A field's column: nullable (a row may lack a value; `required` is checked on load).
fn column(name: &str, ty: FieldType) -> ColumnDef {
    let mut column = ColumnDef::new(Alias::new(name));
    match ty {
        // As prices are stored: exact text (SQLite has no exact decimal type).
        FieldType::Decimal => column.string_len(64),
        FieldType::Integer => column.integer(),
        FieldType::Text => column.text(),
        FieldType::Boolean => column.boolean(),
        FieldType::Date => column.date(),
        FieldType::Datetime => column.timestamp_with_time_zone(),
    };
    column.null().to_owned()
}
