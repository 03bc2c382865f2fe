//! Analytics over a user's transactions, computed by the database with GROUP BY: a user with a
//! million transactions costs a few aggregate rows of memory, not a million.
//!
//! Amounts of different currencies are never added: every figure is for one currency. Sums
//! are exact integer sums of the scaled amounts, taken in two parts (whole units, and the
//! 10^-4 remainders) so that no 64-bit sum can overflow on SQLite, whose SUM of integers fails
//! on overflow instead of widening: the parts are recombined in Rust as i128. (CAST because
//! PostgreSQL's SUM(bigint) is NUMERIC.)

use chrono::{DateTime, NaiveDate, Utc};
use entity::transaction::{self, Column};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select,
    sea_query::{Expr, NullOrdering, Order},
};
use uuid::Uuid;

use super::{
    money::Currency,
    service::{LedgerService, Status},
};
use crate::error::{AppError, AppResult};

/// The statuses an analysis covers: those asked for (not none), or PENDING and SUCCESS.
pub fn statuses_or_default(statuses: Option<Vec<Status>>) -> AppResult<Vec<Status>> {
    match statuses {
        Some(list) if list.is_empty() => Err(AppError::bad_field("statuses", "`statuses` must not be empty")),
        Some(list) => Ok(list),
        None => Ok(vec![Status::Pending, Status::Success]),
    }
}

/// Which transactions an analysis covers.
#[derive(Clone, Debug)]
pub struct AnalyticsScope {
    pub user_id: Uuid,
    pub currency: Currency,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Defaults to PENDING and SUCCESS: a FAILED transaction moved no money.
    pub statuses: Vec<Status>,
}

/// Count and scaled sums (amount × 10^4) of one group, or of everything in scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub sum: i128,
    pub credit: i128,
    pub debit: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket<K> {
    pub key: K,
    pub totals: Totals,
}

/// Whole units and remainders of the scaled amounts. Each part is bounded by the row count
/// times 10^12 (the largest amount) or times 10^4: no overflow below nine million rows at the
/// maximum amount.
const SUMS: [(&str, &str); 7] = [
    ("n", "COUNT(*)"),
    ("total_units", "CAST(COALESCE(SUM(amount_scaled / 10000), 0) AS BIGINT)"),
    ("total_rem", "CAST(COALESCE(SUM(amount_scaled % 10000), 0) AS BIGINT)"),
    (
        "credit_units",
        "CAST(COALESCE(SUM(CASE WHEN kind = 'CREDIT' THEN amount_scaled / 10000 ELSE 0 END), 0) AS BIGINT)",
    ),
    ("credit_rem", "CAST(COALESCE(SUM(CASE WHEN kind = 'CREDIT' THEN amount_scaled % 10000 ELSE 0 END), 0) AS BIGINT)"),
    ("debit_units", "CAST(COALESCE(SUM(CASE WHEN kind = 'DEBIT' THEN amount_scaled / 10000 ELSE 0 END), 0) AS BIGINT)"),
    ("debit_rem", "CAST(COALESCE(SUM(CASE WHEN kind = 'DEBIT' THEN amount_scaled % 10000 ELSE 0 END), 0) AS BIGINT)"),
];

/// Calendar buckets in UTC, the same text on both backends: `2026-11-24`, `2026-11`.
fn day_expr(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        _ => "strftime('%Y-%m-%d', occurred_at)",
    }
}

fn month_expr(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')",
        _ => "strftime('%Y-%m', occurred_at)",
    }
}

impl LedgerService {
    pub async fn totals(&self, scope: &AnalyticsScope) -> AppResult<Totals> {
        let query = with_sums(scoped(scope));
        let row = self.db.query_one_raw(query.build(self.backend())).await?;
        row.map(|row| read_totals(&row)).transpose().map(Option::unwrap_or_default)
    }

    pub async fn by_day(&self, scope: &AnalyticsScope) -> AppResult<Vec<Bucket<NaiveDate>>> {
        let rows = self.grouped(scope, day_expr(self.backend()), GroupOrder::Key, None).await?;
        rows.into_iter().map(|b| Ok(Bucket { key: parse_day(&b.key)?, totals: b.totals })).collect()
    }

    /// The UTC day with the most transactions; ties go to the earliest day.
    pub async fn busiest_day(&self, scope: &AnalyticsScope) -> AppResult<Option<Bucket<NaiveDate>>> {
        let rows = self.grouped(scope, day_expr(self.backend()), GroupOrder::CountThenKey, Some(1)).await?;
        rows.into_iter().next().map(|b| Ok(Bucket { key: parse_day(&b.key)?, totals: b.totals })).transpose()
    }

    /// Months as `YYYY-MM`, oldest first.
    pub async fn by_month(&self, scope: &AnalyticsScope) -> AppResult<Vec<Bucket<String>>> {
        self.grouped(scope, month_expr(self.backend()), GroupOrder::Key, None).await
    }

    /// Categories by number of transactions (most first); uncategorised ones as `None`.
    pub async fn by_category(&self, scope: &AnalyticsScope) -> AppResult<Vec<Bucket<Option<String>>>> {
        let query = with_sums(scoped(scope))
            .column_as(Column::Category, "bucket")
            .group_by(Column::Category)
            .order_by_desc(Expr::cust("COUNT(*)"))
            // Backends disagree on where NULL sorts; uncategorised goes last on all of them.
            .order_by_with_nulls(Column::Category, Order::Asc, NullOrdering::Last);
        let rows = self.db.query_all_raw(query.build(self.backend())).await?;
        rows.iter().map(|row| Ok(Bucket { key: row.try_get("", "bucket")?, totals: read_totals(row)? })).collect()
    }

    /// Every currency the user has transactions in, within the scope's time range and
    /// statuses (whatever the scope's own currency), alphabetically.
    pub async fn currencies(&self, scope: &AnalyticsScope) -> AppResult<Vec<String>> {
        let query = in_range(scope)
            .select_only()
            .column(Column::Currency)
            .group_by(Column::Currency)
            .order_by_asc(Column::Currency);
        let rows = self.db.query_all_raw(query.build(self.backend())).await?;
        rows.iter().map(|row| Ok(row.try_get("", "currency")?)).collect()
    }

    async fn grouped(
        &self,
        scope: &AnalyticsScope,
        bucket: &'static str,
        order: GroupOrder,
        limit: Option<u64>,
    ) -> AppResult<Vec<Bucket<String>>> {
        let mut query = with_sums(scoped(scope)).expr_as(Expr::cust(bucket), "bucket").group_by(Expr::cust(bucket));
        if order == GroupOrder::CountThenKey {
            query = query.order_by_desc(Expr::cust("COUNT(*)"));
        }
        query = query.order_by_asc(Expr::cust(bucket));
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        let rows = self.db.query_all_raw(query.build(self.backend())).await?;
        rows.iter().map(|row| Ok(Bucket { key: row.try_get("", "bucket")?, totals: read_totals(row)? })).collect()
    }

    fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }
}

#[derive(PartialEq, Eq)]
enum GroupOrder {
    Key,
    CountThenKey,
}

fn in_range(scope: &AnalyticsScope) -> Select<transaction::Entity> {
    let mut query = transaction::Entity::find()
        .filter(Column::UserId.eq(scope.user_id))
        .filter(Column::Status.is_in(scope.statuses.iter().map(|s| s.as_str())));
    if let Some(from) = scope.from {
        query = query.filter(Column::OccurredAt.gte(from));
    }
    if let Some(to) = scope.to {
        query = query.filter(Column::OccurredAt.lt(to));
    }
    query
}

fn scoped(scope: &AnalyticsScope) -> Select<transaction::Entity> {
    in_range(scope).filter(Column::Currency.eq(scope.currency.code()))
}

fn with_sums(query: Select<transaction::Entity>) -> Select<transaction::Entity> {
    SUMS.iter().fold(query.select_only(), |q, (alias, sql)| q.expr_as(Expr::cust(*sql), *alias))
}

fn read_totals(row: &sea_orm::QueryResult) -> AppResult<Totals> {
    let scaled = |prefix: &str| -> AppResult<i128> {
        let units: i64 = row.try_get("", &format!("{prefix}_units"))?;
        let remainder: i64 = row.try_get("", &format!("{prefix}_rem"))?;
        Ok(i128::from(units) * 10_000 + i128::from(remainder))
    };
    Ok(Totals {
        count: row.try_get("", "n")?,
        sum: scaled("total")?,
        credit: scaled("credit")?,
        debit: scaled("debit")?,
    })
}

fn parse_day(raw: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|err| AppError::internal(anyhow::anyhow!("day bucket `{raw}` from the database: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_default_to_those_that_moved_money_and_may_not_be_empty() {
        assert_eq!(statuses_or_default(None).unwrap(), [Status::Pending, Status::Success]);
        assert_eq!(statuses_or_default(Some(vec![Status::Failed])).unwrap(), [Status::Failed]);
        let empty = statuses_or_default(Some(Vec::new())).unwrap_err();
        assert!(matches!(empty, AppError::BadUserInput { field: Some("statuses"), .. }));
    }
}
