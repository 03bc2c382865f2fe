//! The `audit_log` table: the batch insert, a tenant's records newest first (pages for the
//! admin API, ranges for the CLI), and retention's deletes.

use chrono::{DateTime, Utc};
use entity::audit_log::{self, Column, Entity};
use futures::TryStreamExt;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::{AuditRecord, append::Appender};
use crate::error::AppResult;

/// Rows one retention statement deletes: small enough that a delete never holds the table
/// long (SQLite locks the whole database for a write), large enough that a day of a busy
/// deployment goes in seconds.
pub const DELETE_BATCH: u64 = 5_000;

/// What a tenant admin (or the CLI) narrows the records to. Every bound is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// `at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `at < to`.
    pub to: Option<DateTime<Utc>>,
    /// Exactly this principal (`key:<prefix>`, `user:<id>`).
    pub principal: Option<String>,
    pub operation_name: Option<String>,
    /// A canonical symbol the operation named.
    pub symbol: Option<String>,
}

/// Where a page starts: strictly older than this record (`at`, then `id`, descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    db: DatabaseConnection,
    appender: Appender,
}

impl AuditStore {
    pub fn new(db: DatabaseConnection) -> Self {
        let appender = Appender::new(&db);
        Self { db, appender }
    }

    /// Appends `records` in one transaction (`audit::append`: each database's bulk insert).
    pub async fn append(&self, records: &[(Uuid, AuditRecord)]) -> AppResult<()> {
        self.appender.append(records).await
    }

    /// Up to `limit` of the tenant's records matching `filter`, newest first, strictly after
    /// `after` in that order.
    pub async fn page(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        after: Option<Position>,
        limit: u64,
    ) -> AppResult<Vec<audit_log::Model>> {
        let mut query = Entity::find().filter(Column::TenantId.eq(tenant)).filter(conditions(filter));
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(Column::At.lt(after.at))
                    .add(Condition::all().add(Column::At.eq(after.at)).add(Column::Id.lt(after.id))),
            );
        }
        Ok(query.order_by_desc(Column::At).order_by_desc(Column::Id).limit(limit).all(&self.db).await?)
    }

    /// Every record of the tenant matching `filter`, oldest first, streamed to `each` (an
    /// export of months is never held in memory whole).
    pub async fn each(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        mut each: impl FnMut(audit_log::Model) -> AppResult<()>,
    ) -> AppResult<()> {
        let mut rows = Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(conditions(filter))
            .order_by_asc(Column::At)
            .order_by_asc(Column::Id)
            .stream(&self.db)
            .await?;
        while let Some(row) = rows.try_next().await? {
            each(row)?;
        }
        Ok(())
    }

    /// Deletes up to [`DELETE_BATCH`] records written before `before` (oldest first); how many.
    ///
    /// By id, not by `at`: ids are UUID v7, whose leading 48 bits are the millisecond the
    /// writer stored the record (the operation's start plus its time in the writer's buffer,
    /// a second at most), and both databases order UUIDs bytewise, so the primary key serves
    /// retention and the rows need no index on `at` (one fewer index written per record).
    pub async fn delete_older_than(&self, before: DateTime<Utc>) -> AppResult<u64> {
        // `DELETE … WHERE id IN (SELECT id … LIMIT n)`: both databases bound a delete this way
        // (PostgreSQL has no `DELETE … LIMIT`).
        let oldest = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::Id.lt(first_id_at(before)))
            .order_by_asc(Column::Id)
            .limit(DELETE_BATCH)
            .into_query();
        let deleted = Entity::delete_many().filter(Column::Id.in_subquery(oldest)).exec(&self.db).await?;
        Ok(deleted.rows_affected)
    }
}

/// The smallest UUID v7 of the millisecond `at` (times before 1970 give the smallest of all).
fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0).min((1 << 48) - 1);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    // Version 7, RFC 4122 variant, every random bit zero.
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

fn conditions(filter: &AuditFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(from) = filter.from {
        condition = condition.add(Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(Column::At.lt(to));
    }
    if let Some(principal) = &filter.principal {
        condition = condition.add(Column::Principal.eq(principal.as_str()));
    }
    if let Some(name) = &filter.operation_name {
        condition = condition.add(Column::OperationName.eq(name.as_str()));
    }
    if let Some(symbol) = &filter.symbol {
        // Canonical symbols hold no `%` or `_` (letters, digits, `.`, `:`): no escaping needed.
        condition = condition.add(Column::Symbols.like(format!("%,{symbol},%")));
    }
    condition
}

/// The list a comma-separated column holds (`fields`, `error_codes`, or `symbols`, wrapped in
/// commas).
pub fn split_list(column: &str) -> Vec<String> {
    column.split(',').filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn the_first_id_of_a_millisecond_orders_the_writers_ids_by_time() {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let floor = first_id_at(now);
        assert_eq!(floor.get_version_num(), 7);
        assert!(first_id_at(now - TimeDelta::milliseconds(1)) < id, "written after the millisecond before");
        assert!(first_id_at(now + TimeDelta::milliseconds(2)) > id, "and before the one after next");
        assert!(first_id_at(now - TimeDelta::days(91)) < floor);
        assert_eq!(
            first_id_at(DateTime::<Utc>::MIN_UTC),
            Uuid::from_bytes([0, 0, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0])
        );
    }
}
