//! Transactions: the record, its enums, and create / read / update / delete for their owner.

use chrono::{DateTime, Utc};
use entity::transaction;
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::money::{Currency, Money};
use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Credit,
    Debit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Success,
    Failed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credit => "CREDIT",
            Self::Debit => "DEBIT",
        }
    }
    fn from_db(s: &str) -> AppResult<Self> {
        match s {
            "CREDIT" => Ok(Self::Credit),
            "DEBIT" => Ok(Self::Debit),
            other => Err(AppError::internal(anyhow::anyhow!("unknown transaction kind `{other}` in database"))),
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        }
    }
    fn from_db(s: &str) -> AppResult<Self> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "SUCCESS" => Ok(Self::Success),
            "FAILED" => Ok(Self::Failed),
            other => Err(AppError::internal(anyhow::anyhow!("unknown transaction status `{other}` in database"))),
        }
    }
}

/// A transaction as read. Fields are `None` when the query did not select their column (see
/// `listing::Columns`); nullable columns are then `Option<Option<_>>`.
#[derive(Clone, Debug, Default)]
pub struct TransactionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub money: Option<Money>,
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    pub description: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl TryFrom<transaction::Model> for TransactionRecord {
    type Error = AppError;
    fn try_from(m: transaction::Model) -> AppResult<Self> {
        let currency = Currency::parse(&m.currency)
            .map_err(|_| AppError::internal(anyhow::anyhow!("unknown currency `{}` in database", m.currency)))?;
        Ok(Self {
            id: m.id,
            user_id: m.user_id,
            money: Some(Money::from_scaled(m.amount_scaled, currency)),
            kind: Some(Kind::from_db(&m.kind)?),
            status: Some(Status::from_db(&m.status)?),
            description: Some(m.description),
            category: Some(m.category),
            occurred_at: Some(m.occurred_at),
            created_at: Some(m.created_at),
            updated_at: Some(m.updated_at),
        })
    }
}

pub(super) fn kind_from_db(s: &str) -> AppResult<Kind> {
    Kind::from_db(s)
}
pub(super) fn status_from_db(s: &str) -> AppResult<Status> {
    Status::from_db(s)
}

pub struct NewTransaction {
    pub amount: Decimal,
    /// Defaults to USD.
    pub currency: Option<String>,
    pub kind: Kind,
    /// Defaults to SUCCESS: a recorded transaction has usually happened.
    pub status: Option<Status>,
    pub description: Option<String>,
    pub category: Option<String>,
    /// Defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A change to an optional text field: leave it, clear it, or set it.
#[derive(Clone, Debug, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

#[derive(Default)]
pub struct TransactionPatch {
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    pub description: Patch<String>,
    pub category: Patch<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

const MAX_DESCRIPTION: usize = 500;
const MAX_CATEGORY: usize = 100;

#[derive(Clone)]
pub struct LedgerService {
    pub(super) db: DatabaseConnection,
}

impl LedgerService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn create(&self, user_id: Uuid, input: NewTransaction) -> AppResult<TransactionRecord> {
        let currency = match &input.currency {
            Some(code) => Currency::parse(code)?,
            None => Currency::USD,
        };
        let money = Money::new(input.amount, currency)?;
        let now = now_micros();
        let row = transaction::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            amount_scaled: Set(money.scaled()),
            currency: Set(currency.code().to_owned()),
            kind: Set(input.kind.as_str().to_owned()),
            status: Set(input.status.unwrap_or(Status::Success).as_str().to_owned()),
            description: Set(clean_text(input.description, "description", MAX_DESCRIPTION)?),
            category: Set(clean_text(input.category, "category", MAX_CATEGORY)?),
            occurred_at: Set(input.occurred_at.map(truncate_micros).unwrap_or(now)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        row.insert(&self.db).await.map_err(crate::error::owner_gone_or)?.try_into()
    }

    pub async fn get(&self, user_id: Uuid, id: Uuid) -> AppResult<TransactionRecord> {
        self.find_owned(user_id, id).await?.try_into()
    }

    pub async fn update(&self, user_id: Uuid, id: Uuid, patch: TransactionPatch) -> AppResult<TransactionRecord> {
        let current = self.find_owned(user_id, id).await?;
        let currency = match &patch.currency {
            Some(code) => Currency::parse(code)?,
            None => Currency::parse(&current.currency)?,
        };
        // Re-validate the amount whenever it or the currency changes: 12.34 USD cannot become
        // 12.34 JPY.
        let amount = match patch.amount {
            Some(amount) => Some(Money::new(amount, currency)?),
            None if patch.currency.is_some() => {
                let existing = Money::from_scaled(current.amount_scaled, Currency::parse(&current.currency)?);
                Some(Money::new(existing.amount(), currency)?)
            }
            None => None,
        };
        let mut row: transaction::ActiveModel = current.into();
        if let Some(money) = amount {
            row.amount_scaled = Set(money.scaled());
            row.currency = Set(currency.code().to_owned());
        }
        if let Some(kind) = patch.kind {
            row.kind = Set(kind.as_str().to_owned());
        }
        if let Some(status) = patch.status {
            row.status = Set(status.as_str().to_owned());
        }
        match patch.description {
            Patch::Keep => {}
            Patch::Clear => row.description = Set(None),
            Patch::Set(text) => row.description = Set(clean_text(Some(text), "description", MAX_DESCRIPTION)?),
        }
        match patch.category {
            Patch::Keep => {}
            Patch::Clear => row.category = Set(None),
            Patch::Set(text) => row.category = Set(clean_text(Some(text), "category", MAX_CATEGORY)?),
        }
        if let Some(at) = patch.occurred_at {
            row.occurred_at = Set(truncate_micros(at));
        }
        row.updated_at = Set(now_micros());
        row.update(&self.db).await?.try_into()
    }

    pub async fn delete(&self, user_id: Uuid, id: Uuid) -> AppResult<()> {
        let result = transaction::Entity::delete_many()
            .filter(transaction::Column::Id.eq(id))
            .filter(transaction::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    async fn find_owned(&self, user_id: Uuid, id: Uuid) -> AppResult<transaction::Model> {
        transaction::Entity::find_by_id(id)
            .filter(transaction::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found(id))
    }
}

/// The same answer for "does not exist" and "belongs to someone else".
fn not_found(id: Uuid) -> AppError {
    AppError::NotFound(format!("transaction `{id}` not found"))
}

/// Trimmed; empty means absent; bounded length; no control characters except newlines.
fn clean_text(value: Option<String>, field: &'static str, max: usize) -> AppResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(AppError::bad_field(field, format!("{field} must be at most {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_field(field, format!("{field} must not contain control characters")));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Timestamps are kept to the microsecond, PostgreSQL's precision, so that a value reads back
/// exactly as written on every backend (cursors depend on it).
pub fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// A time bound on microsecond-precise rows, rounded up to the next microsecond: for stored
/// `t`, `t >= bound` and `t >= ceil(bound)` agree (likewise `<`), and the database never sees
/// a precision it would cut silently (PostgreSQL truncates nanoseconds).
pub fn ceil_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = truncate_micros(at);
    if truncated < at { truncated + chrono::Duration::microseconds(1) } else { truncated }
}

fn now_micros() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}
