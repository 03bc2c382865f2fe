//! Transactions: the record, its enums, and create / read / update / delete for their owner.

use std::sync::{Arc, atomic::AtomicI64};

use chrono::{DateTime, Utc};
use entity::transaction;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    idempotency::IdempotencyKey,
    money::{Currency, Money},
    rollup,
    time::OccurredAt,
};
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

/// A transaction to record, parsed: every field already valid.
#[derive(Clone, Debug)]
pub struct NewTransaction {
    pub money: Money,
    pub kind: Kind,
    /// Defaults to SUCCESS: a recorded transaction has usually happened.
    pub status: Option<Status>,
    pub description: Option<Text>,
    pub category: Option<Text>,
    /// Defaults to now.
    pub occurred_at: Option<OccurredAt>,
}

/// A change to an optional text field: leave it, clear it, or set it.
#[derive(Clone, Debug, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// A change to a transaction, parsed. The amount stays a bare decimal: its digits are checked
/// against the currency it will have, which may be the stored one (see [`LedgerService::update`]).
#[derive(Clone, Debug, Default)]
pub struct TransactionPatch {
    pub amount: Option<Decimal>,
    pub currency: Option<Currency>,
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    pub description: Patch<Text>,
    pub category: Patch<Text>,
    pub occurred_at: Option<OccurredAt>,
}

/// Free text of a transaction (description, category): trimmed, bounded, without control
/// characters other than newlines (a NUL byte, which PostgreSQL cannot store, included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(String);

/// Why 500: a bank statement line or a note, not a document.
pub const MAX_DESCRIPTION: usize = 500;
/// Why 100: a label to group by, not prose.
pub const MAX_CATEGORY: usize = 100;

impl Text {
    /// `None` when blank: an empty description is no description.
    pub fn parse(raw: &str, field: &'static str, max: usize) -> AppResult<Option<Self>> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        check_text(trimmed, field, max)?;
        Ok(Some(Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rule of [`Text`], for text that is matched rather than stored (a category filter).
pub fn check_text(text: &str, field: &'static str, max: usize) -> AppResult<()> {
    // Bytes first: a megabyte of text is refused without counting its characters.
    if text.len() > max * 4 || text.chars().count() > max {
        return Err(AppError::bad_field(field, format!("{field} must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_field(field, format!("{field} must not contain control characters")));
    }
    Ok(())
}

/// One write to the ledger: what an idempotency key guards (see `idempotency`).
#[derive(Clone, Debug)]
pub enum Write {
    Create(NewTransaction),
    Update(Uuid, TransactionPatch),
    Delete(Uuid),
}

/// What a write produced.
#[derive(Clone, Debug)]
pub enum Written {
    /// The transaction as it was written.
    Record(transaction::Model),
    /// The id of the deleted transaction.
    Deleted(Uuid),
}

#[derive(Clone)]
pub struct LedgerService {
    pub(super) db: DatabaseConnection,
    /// When this process last purged expired idempotency keys (seconds since the epoch).
    pub(super) last_purge: Arc<AtomicI64>,
}

impl LedgerService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, last_purge: Arc::new(AtomicI64::new(0)) }
    }

    #[tracing::instrument(name = "ledger.create", skip_all)]
    pub async fn create(
        &self,
        user_id: Uuid,
        input: NewTransaction,
        key: Option<&IdempotencyKey>,
    ) -> AppResult<TransactionRecord> {
        self.write(user_id, Write::Create(input), key).await?.into_record()
    }

    #[tracing::instrument(name = "ledger.get", skip_all)]
    pub async fn get(&self, user_id: Uuid, id: Uuid) -> AppResult<TransactionRecord> {
        find_owned(&self.db, user_id, id).await?.try_into()
    }

    /// Changes the fields given. Changing the currency re-validates the amount: amounts are
    /// stored scaled by 10^4 whatever the currency, so the stored integer keeps its value
    /// (12.34 USD becomes 12.340 BHD, the same number) and is refused when the new currency has
    /// too few digits for it (12.34 to JPY), unless the same update brings a new amount.
    #[tracing::instrument(name = "ledger.update", skip_all)]
    pub async fn update(
        &self,
        user_id: Uuid,
        id: Uuid,
        patch: TransactionPatch,
        key: Option<&IdempotencyKey>,
    ) -> AppResult<TransactionRecord> {
        self.write(user_id, Write::Update(id, patch), key).await?.into_record()
    }

    #[tracing::instrument(name = "ledger.delete", skip_all)]
    pub async fn delete(&self, user_id: Uuid, id: Uuid, key: Option<&IdempotencyKey>) -> AppResult<Uuid> {
        match self.write(user_id, Write::Delete(id), key).await? {
            Written::Deleted(id) => Ok(id),
            Written::Record(_) => Err(AppError::internal(anyhow::anyhow!("a delete answered with a record"))),
        }
    }

    /// Applies a write: directly, or exactly once per key (see `idempotency`).
    pub async fn write(&self, user_id: Uuid, write: Write, key: Option<&IdempotencyKey>) -> AppResult<Written> {
        match key {
            Some(key) => self.write_once(user_id, key, write).await,
            // The row and its day's rollup change together, or neither does.
            None => {
                let txn = self.db.begin().await?;
                let written = apply(&txn, user_id, write).await?;
                txn.commit().await?;
                Ok(written)
            }
        }
    }
}

impl Written {
    fn into_record(self) -> AppResult<TransactionRecord> {
        match self {
            Written::Record(model) => model.try_into(),
            Written::Deleted(_) => Err(AppError::internal(anyhow::anyhow!("a write answered with a deletion"))),
        }
    }
}

/// Performs one write on `conn`, a database transaction (the write's own, or the one that also
/// holds its idempotency key), with its rollup change.
pub(super) async fn apply(conn: &impl ConnectionTrait, user_id: Uuid, write: Write) -> AppResult<Written> {
    match write {
        Write::Create(input) => {
            let now = OccurredAt::now().get();
            let row = transaction::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(user_id),
                amount_scaled: Set(input.money.scaled()),
                currency: Set(input.money.currency().code().to_owned()),
                kind: Set(input.kind.as_str().to_owned()),
                status: Set(input.status.unwrap_or(Status::Success).as_str().to_owned()),
                description: Set(input.description.map(|t| t.0)),
                category: Set(input.category.map(|t| t.0)),
                occurred_at: Set(input.occurred_at.map(OccurredAt::get).unwrap_or(now)),
                created_at: Set(now),
                updated_at: Set(now),
            };
            // The owner may have been deleted since its token was issued.
            let row = row.insert(conn).await.map_err(crate::error::owner_gone_or)?;
            rollup::bump(conn, &row, 1).await?;
            Ok(Written::Record(row))
        }
        Write::Update(id, patch) => {
            let (before, after) = update_row(conn, user_id, id, patch).await?;
            rollup::moved(conn, &before, &after).await?;
            Ok(Written::Record(after))
        }
        Write::Delete(id) => {
            let before = lock_owned(conn, user_id, id).await?;
            transaction::Entity::delete_by_id(id).exec(conn).await?;
            rollup::bump(conn, &before, -1).await?;
            Ok(Written::Deleted(id))
        }
    }
}

/// The row before and after the update.
async fn update_row(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
    patch: TransactionPatch,
) -> AppResult<(transaction::Model, transaction::Model)> {
    let current = lock_owned(conn, user_id, id).await?;
    let before = current.clone();
    let stored_currency = Currency::parse(&current.currency)
        .map_err(|_| AppError::internal(anyhow::anyhow!("unknown currency `{}` in database", current.currency)))?;
    let currency = patch.currency.unwrap_or(stored_currency);
    // The amount is re-validated whenever it or the currency changes. The stored amount is
    // re-read as a value (`12.3400`), never as digits of the new currency.
    let money = match patch.amount {
        Some(amount) => Some(Money::new(amount, currency)?),
        None if patch.currency.is_some() => {
            let existing = Money::from_scaled(current.amount_scaled, stored_currency);
            Some(Money::new(existing.amount(), currency)?)
        }
        None => None,
    };
    let mut row: transaction::ActiveModel = current.into();
    if let Some(money) = money {
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
        Patch::Set(text) => row.description = Set(Some(text.0)),
    }
    match patch.category {
        Patch::Keep => {}
        Patch::Clear => row.category = Set(None),
        Patch::Set(text) => row.category = Set(Some(text.0)),
    }
    if let Some(at) = patch.occurred_at {
        row.occurred_at = Set(at.get());
    }
    row.updated_at = Set(OccurredAt::now().get());
    Ok((before, row.update(conn).await?))
}

/// The owner's row, locked against every other write until this transaction ends: the rollup
/// change is computed from it, so two concurrent updates must not both start from the same
/// state. A no-op UPDATE takes the lock on both backends (PostgreSQL's row lock; SQLite's write
/// lock, which a later upgrade from a read could not get once another writer committed).
async fn lock_owned(conn: &impl ConnectionTrait, user_id: Uuid, id: Uuid) -> AppResult<transaction::Model> {
    let locked = transaction::Entity::update_many()
        .col_expr(transaction::Column::UpdatedAt, Expr::col(transaction::Column::UpdatedAt))
        .filter(transaction::Column::Id.eq(id))
        .filter(transaction::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    if locked.rows_affected == 0 {
        return Err(not_found(id));
    }
    find_owned(conn, user_id, id).await
}

async fn find_owned(conn: &impl ConnectionTrait, user_id: Uuid, id: Uuid) -> AppResult<transaction::Model> {
    transaction::Entity::find_by_id(id)
        .filter(transaction::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The same answer for "does not exist" and "belongs to someone else".
fn not_found(id: Uuid) -> AppError {
    AppError::NotFound(format!("transaction `{id}` not found"))
}
