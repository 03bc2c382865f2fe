//! Analytics over a user's transactions, computed from the ledger's per-day rollups
//! (`rollup`): an analysis reads one row per day, category and kind it covers, plus the raw
//! rows of the at most two days its bounds cut through, whatever the number of transactions.
//! Every figure (totals, days, months, categories, the busiest day) is computed from those
//! cells, fetched once per analysis.
//!
//! Amounts of different currencies are never added: every figure is for one currency. Sums
//! are exact: the database sums scaled amounts in two parts (whole units, and the 10^-4
//! remainders) so that no 64-bit sum can overflow on SQLite, whose SUM of integers fails on
//! overflow instead of widening; the parts are recombined in Rust as i128.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    money::Currency,
    rollup::{self, CellKey, CellSums},
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

impl Totals {
    fn add(&mut self, credit: bool, sums: CellSums) {
        self.count += sums.count;
        self.sum += sums.scaled;
        if credit {
            self.credit += sums.scaled;
        } else {
            self.debit += sums.scaled;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket<K> {
    pub key: K,
    pub totals: Totals,
}

/// One analysis's cells: (day, category, kind) with their counts and sums.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    cells: BTreeMap<CellKey, CellSums>,
}

impl LedgerService {
    /// The cells of `scope`, from which every figure of its analysis is computed.
    #[tracing::instrument(name = "ledger.analysis", skip_all)]
    pub async fn analysis(&self, scope: &AnalyticsScope) -> AppResult<Analysis> {
        Ok(Analysis { cells: rollup::cells(&self.db, scope).await? })
    }

    /// Every currency the user has transactions in, within the scope's time range and
    /// statuses (whatever the scope's own currency), alphabetically.
    #[tracing::instrument(name = "ledger.currencies", skip_all)]
    pub async fn currencies(&self, scope: &AnalyticsScope) -> AppResult<Vec<String>> {
        rollup::currencies(&self.db, scope).await
    }
}

impl Analysis {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for (key, sums) in &self.cells {
            totals.add(key.credit, *sums);
        }
        totals
    }

    /// One bucket per UTC day that has transactions, oldest first.
    pub fn by_day(&self) -> AppResult<Vec<Bucket<NaiveDate>>> {
        self.grouped(|key| key.day.clone())
            .into_iter()
            .map(|b| Ok(Bucket { key: parse_day(&b.key)?, totals: b.totals }))
            .collect()
    }

    /// The UTC day with the most transactions; ties go to the earliest day.
    pub fn busiest_day(&self) -> AppResult<Option<Bucket<NaiveDate>>> {
        let days = self.by_day()?;
        // `max_by_key` keeps the last of equals: walk newest first so the earliest wins.
        Ok(days.into_iter().rev().max_by_key(|b| b.totals.count))
    }

    /// Months as `YYYY-MM`, oldest first.
    pub fn by_month(&self) -> Vec<Bucket<String>> {
        self.grouped(|key| key.day[..7].to_owned())
    }

    /// Categories by number of transactions (most first, then by name); uncategorised ones
    /// (`None`) after the named ones with as many.
    pub fn by_category(&self) -> Vec<Bucket<Option<String>>> {
        let mut categories = self.grouped(|key| key.category.clone());
        categories.sort_by(|a, b| {
            b.totals.count.cmp(&a.totals.count).then_with(|| match (&a.key, &b.key) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
        });
        categories
    }

    /// Buckets by `key_of`, in key order.
    fn grouped<K: Ord + Clone>(&self, key_of: impl Fn(&CellKey) -> K) -> Vec<Bucket<K>> {
        let mut buckets: BTreeMap<K, Totals> = BTreeMap::new();
        for (key, sums) in &self.cells {
            buckets.entry(key_of(key)).or_default().add(key.credit, *sums);
        }
        buckets.into_iter().map(|(key, totals)| Bucket { key, totals }).collect()
    }
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
