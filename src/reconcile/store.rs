//! Reconciliation reports in the database: a run row (claimed first, counted when done) and an
//! item per instrument. Read back by `reconciliation(date)` and printed by `finql reconcile`.

use chrono::{DateTime, NaiveDate, Utc};
use entity::{reconciliation_item as item, reconciliation_run as run};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use super::compare::{Difference, Verdict};
use crate::error::{AppError, AppResult};

/// A run: what was compared, and how many instruments ended in each verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: Uuid,
    pub day: NaiveDate,
    /// A market name, or `None` for the whole catalog.
    pub market: Option<String>,
    pub sources: Vec<String>,
    pub tolerance_bps: u32,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs (or if it died).
    pub finished_at: Option<DateTime<Utc>>,
    pub instruments: u32,
    pub matched: u32,
    pub different: u32,
    pub missing: u32,
    pub unavailable: u32,
}

/// One instrument's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub symbol: String,
    pub verdict: Verdict,
    pub differences: Vec<Difference>,
}

/// Items per INSERT.
const INSERT_BATCH: usize = 500;

#[derive(Clone)]
pub struct ReconciliationStore {
    db: DatabaseConnection,
}

impl ReconciliationStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records `run` as started; with a `claim`, `Ok(false)` when another process claimed it.
    pub async fn begin(&self, run: &Run, claim: Option<String>) -> AppResult<bool> {
        let model = run::ActiveModel {
            id: Set(run.id),
            day: Set(run.day.to_string()),
            market: Set(run.market.clone().unwrap_or_else(|| "*".into())),
            claim: Set(claim),
            sources: Set(run.sources.join(",")),
            tolerance_bps: Set(i32::try_from(run.tolerance_bps).unwrap_or(i32::MAX)),
            started_at: Set(run.started_at),
            finished_at: Set(None),
            instruments: Set(0),
            matched: Set(0),
            different: Set(0),
            missing: Set(0),
            unavailable: Set(0),
        };
        match run::Entity::insert(model).exec(&self.db).await {
            Ok(_) => Ok(true),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Writes the items and the counts of a finished run.
    pub async fn finish(&self, run: &Run, items: &[Item]) -> AppResult<()> {
        for batch in items.chunks(INSERT_BATCH) {
            let models = batch.iter().map(|i| {
                Ok(item::ActiveModel {
                    run_id: Set(run.id),
                    symbol: Set(i.symbol.clone()),
                    verdict: Set(i.verdict.as_str().to_owned()),
                    differences: Set(serde_json::to_string(&i.differences).map_err(AppError::internal)?),
                })
            });
            let models = models.collect::<AppResult<Vec<_>>>()?;
            item::Entity::insert_many(models).exec(&self.db).await?;
        }
        let count = |n: u32| Set(i32::try_from(n).unwrap_or(i32::MAX));
        let done = run::ActiveModel {
            id: Set(run.id),
            finished_at: Set(run.finished_at),
            instruments: count(run.instruments),
            matched: count(run.matched),
            different: count(run.different),
            missing: count(run.missing),
            unavailable: count(run.unavailable),
            ..Default::default()
        };
        run::Entity::update(done).exec(&self.db).await?;
        Ok(())
    }

    /// The latest finished run for `day` (and `market`: `None` matches a whole-catalog run only).
    pub async fn latest(&self, day: NaiveDate, market: Option<&str>) -> AppResult<Option<Run>> {
        let found = run::Entity::find()
            .filter(run::Column::Day.eq(day.to_string()))
            .filter(run::Column::Market.eq(market.unwrap_or("*")))
            .filter(run::Column::FinishedAt.is_not_null())
            .order_by_desc(run::Column::StartedAt)
            .one(&self.db)
            .await?;
        found.map(Run::try_from).transpose()
    }

    /// Up to `first` items of `run` after the symbol `after`, in symbol order, only those with
    /// `verdicts` when given; and whether more follow.
    pub async fn items(
        &self,
        run: Uuid,
        verdicts: Option<&[Verdict]>,
        first: u64,
        after: Option<&str>,
    ) -> AppResult<(Vec<Item>, bool)> {
        let mut query = item::Entity::find().filter(item::Column::RunId.eq(run));
        if let Some(verdicts) = verdicts {
            query = query.filter(item::Column::Verdict.is_in(verdicts.iter().map(|v| v.as_str())));
        }
        if let Some(after) = after {
            query = query.filter(item::Column::Symbol.gt(after));
        }
        let rows = query.order_by_asc(item::Column::Symbol).limit(first + 1).all(&self.db).await?;
        let more = rows.len() as u64 > first;
        let items = rows.into_iter().take(first as usize).map(Item::try_from).collect::<AppResult<_>>()?;
        Ok((items, more))
    }
}

impl TryFrom<run::Model> for Run {
    type Error = AppError;
    fn try_from(m: run::Model) -> AppResult<Self> {
        let corrupt = |what: &str| AppError::internal(anyhow::anyhow!("reconciliation run {}: bad {what}", m.id));
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        Ok(Self {
            id: m.id,
            day: m.day.parse().map_err(|_| corrupt("day"))?,
            market: (m.market != "*").then(|| m.market.clone()),
            sources: m.sources.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            tolerance_bps: u32::try_from(m.tolerance_bps).map_err(|_| corrupt("tolerance"))?,
            started_at: m.started_at,
            finished_at: m.finished_at,
            instruments: count(m.instruments),
            matched: count(m.matched),
            different: count(m.different),
            missing: count(m.missing),
            unavailable: count(m.unavailable),
        })
    }
}

impl TryFrom<item::Model> for Item {
    type Error = AppError;
    fn try_from(m: item::Model) -> AppResult<Self> {
        let corrupt = |what: &str| AppError::internal(anyhow::anyhow!("reconciliation item {}: bad {what}", m.symbol));
        Ok(Self {
            verdict: Verdict::parse(&m.verdict).ok_or_else(|| corrupt("verdict"))?,
            differences: serde_json::from_str(&m.differences).map_err(|_| corrupt("differences"))?,
            symbol: m.symbol,
        })
    }
}
