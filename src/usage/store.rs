//! The `usage_hourly` table: the one write (an upsert that adds) and the one read (a tenant's
//! rows in a range).
//!
//! Why an adding upsert: every replica counts its own share of a (tenant, hour, actor) row and
//! writes it whenever its flush comes round; `INSERT … ON CONFLICT (tenant_id, hour, actor) DO
//! UPDATE SET requests = usage_hourly.requests + excluded.requests, …` makes the row the sum of
//! every write, in any order, with no read before the write and no lock held between
//! replicas. The same statement runs on SQLite (3.24+) and PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::usage_hourly::{self, Column, Entity};
use futures::TryStreamExt;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::{Counts, meter::RowKey};
use crate::error::AppResult;

/// Rows per INSERT statement: 9 values per row keeps a statement at 900 bind parameters, under
/// SQLite's historical limit of 999 (PostgreSQL allows 65,535).
const ROWS_PER_STATEMENT: usize = 100;

/// The counters, each added on conflict.
const COUNTERS: [Column; 6] = [
    Column::Requests,
    Column::Cost,
    Column::Errors,
    Column::RateLimited,
    Column::ResponseBytes,
    Column::SubscriptionSeconds,
];

#[derive(Clone, Debug)]
pub struct UsageStore {
    db: DatabaseConnection,
}

impl UsageStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Adds `rows` to the table in one transaction: all of them count, or none (so a failed
    /// flush can put them all back without counting any twice).
    pub async fn add(&self, rows: &HashMap<RowKey, Counts>) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut on_conflict = OnConflict::columns([Column::TenantId, Column::Hour, Column::Actor]);
        for counter in COUNTERS {
            on_conflict.value(counter, Expr::col((Entity, counter)).add(Expr::col((Alias::new("excluded"), counter))));
        }
        let models: Vec<usage_hourly::ActiveModel> = rows.iter().map(|(key, counts)| active(key, counts)).collect();
        let txn = self.db.begin().await?;
        for chunk in models.chunks(ROWS_PER_STATEMENT) {
            Entity::insert_many(chunk.to_vec()).on_conflict(on_conflict.clone()).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The tenant's rows with `from <= hour < to`, in hour then actor order, streamed to `each`
    /// (a long range is never held in memory whole).
    pub async fn each_row(
        &self,
        tenant: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut each: impl FnMut(usage_hourly::Model) -> AppResult<()>,
    ) -> AppResult<()> {
        let mut rows = Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(Column::Hour.gte(from))
            .filter(Column::Hour.lt(to))
            .order_by_asc(Column::Hour)
            .order_by_asc(Column::Actor)
            .stream(&self.db)
            .await?;
        while let Some(row) = rows.try_next().await? {
            each(row)?;
        }
        Ok(())
    }
}

fn active(key: &RowKey, counts: &Counts) -> usage_hourly::ActiveModel {
    // The table's counters are BIGINT: a u64 past i64::MAX (never reached in practice) is
    // stored at the maximum rather than wrapped negative.
    let n = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    usage_hourly::ActiveModel {
        tenant_id: Set(key.tenant),
        hour: Set(key.hour),
        actor: Set(key.actor.to_string()),
        requests: Set(n(counts.requests)),
        cost: Set(n(counts.cost)),
        errors: Set(n(counts.errors)),
        rate_limited: Set(n(counts.rate_limited)),
        response_bytes: Set(n(counts.response_bytes)),
        subscription_seconds: Set(n(counts.subscription_seconds)),
    }
}
