//! Idempotent writes: a client that lost the answer to a write retries it with the same
//! `Idempotency-Key` (header) or `idempotencyKey` (input field) and gets the first answer back
//! instead of a second transaction.
//!
//! Why: during a database outage a create can commit and still fail on its way back to the
//! client (the connection drops after COMMIT). Without a key the client cannot tell a lost write
//! from a lost answer, so it either gives up or records the payment twice.
//!
//! Protocol, per (user, key), one row in `idempotency_keys`:
//! 1. A committed, unexpired row for the key answers at once: its stored result when the
//!    request is the same, `BAD_USER_INPUT` (field `idempotencyKey`) when it differs.
//! 2. Otherwise one database transaction deletes an expired row of the key, inserts the key's row
//!    (claiming it), performs the write, stores the result in the row, and commits: the write and
//!    its key are never one without the other, whatever crashes when.
//! 3. Concurrent duplicates meet at the primary key (user_id, key): the first insert wins; the
//!    others' inserts wait for the winner's transaction (PostgreSQL's unique check; SQLite's
//!    single writer and busy timeout), then fail, roll back, and answer with the winner's
//!    stored result, so all of them see the same transaction id and one row exists. If the
//!    winner rolled back instead (its write was refused), a waiting duplicate claims the key
//!    and tries the write itself.
//!
//! "The same request" is the operation and its parsed input, hashed (SHA-256 of a canonical
//! JSON form): `"12.340"` and `"12.34"` USD are the same amount, `usd` and `USD` the same
//! currency, so a client that re-serialises its retry is still recognised. The key itself, the
//! selection set and the transport are not part of it. Only successful writes are remembered:
//! a refused write leaves nothing behind, and a retry with the same key tries again.
//!
//! A duplicate waits at most 5 s for the request holding its key (a stuck holder): then it is
//! told `BAD_USER_INPUT` with a message starting `IDEMPOTENCY_IN_PROGRESS` and may retry.
//!
//! Keys live 24 hours (`KEY_TTL`, the window in which clients retry; Stripe's is the same).
//! An expired key matches nothing: it is deleted when its key is used again, and every process
//! purges all expired keys at most every `PURGE_EVERY`, in the background.

use std::{sync::atomic::Ordering, time::Duration};

use chrono::{DateTime, Utc};
use entity::{idempotency_key, transaction};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, RuntimeErr, TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::service::{LedgerService, Patch, Text, Write, Written, apply};
use crate::error::{AppError, AppResult, is_unique_violation};

/// The longest key: room for any UUID, ULID or hash a client library generates.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key is remembered: clients retry within minutes; a day covers a client that
/// comes back after an outage, and is what payment APIs promise.
pub const KEY_TTL: chrono::Duration = chrono::Duration::hours(24);
/// How often a process purges expired keys: often enough that the table stays about one
/// day of writes, rarely enough to cost nothing.
const PURGE_EVERY: chrono::Duration = chrono::Duration::minutes(10);
/// How long a duplicate waits on PostgreSQL for the request holding its key: that request's
/// transaction is a handful of statements, so 5 s means it is stuck, and the duplicate is told
/// to retry (`IDEMPOTENCY_IN_PROGRESS`) instead of hanging. SQLite's busy timeout (5 s) bounds
/// the same wait there.
const HOLDER_WAIT: &str = "SET LOCAL lock_timeout = '5s'";
/// A purge that takes longer is abandoned (the next one resumes).
const PURGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client's idempotency key: 1 to 255 printable ASCII characters, compared exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `field` names where the key came from (`idempotencyKey`, or the header's name).
    pub fn parse(raw: &str, field: &'static str) -> AppResult<Self> {
        if raw.is_empty() || raw.len() > MAX_KEY_LEN {
            return Err(AppError::bad_field(
                field,
                format!("an idempotency key is 1 to {MAX_KEY_LEN} characters, not {}", raw.len()),
            ));
        }
        if !raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(AppError::bad_field(field, "an idempotency key is printable ASCII (a UUID, for example)"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The mutation a write is, as stored in `idempotency_keys.operation`.
fn operation(write: &Write) -> &'static str {
    match write {
        Write::Create(_) => "createTransaction",
        Write::Update(..) => "updateTransaction",
        Write::Delete(_) => "deleteTransaction",
    }
}

/// Hex SHA-256 of the write's canonical form: parsed values only, fields in a fixed order.
fn request_hash(write: &Write) -> String {
    let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
    // Keep, clear and set must differ: [] / [null] / ["text"].
    let patch = |p: &Patch<Text>| match p {
        Patch::Keep => json!([]),
        Patch::Clear => json!([null]),
        Patch::Set(t) => json!([t.as_str()]),
    };
    let decimal = |d: &Decimal| d.normalize().to_string();
    let canonical: Value = match write {
        Write::Create(input) => json!([
            "createTransaction",
            input.money.scaled(),
            input.money.currency().code(),
            input.kind.as_str(),
            input.status.map(|s| s.as_str()),
            text(&input.description),
            text(&input.category),
            input.occurred_at.map(|at| at.get().timestamp_micros()),
        ]),
        Write::Update(id, p) => json!([
            "updateTransaction",
            id.to_string(),
            p.amount.as_ref().map(decimal),
            p.currency.map(|c| c.code()),
            p.kind.map(|k| k.as_str()),
            p.status.map(|s| s.as_str()),
            patch(&p.description),
            patch(&p.category),
            p.occurred_at.map(|at| at.get().timestamp_micros()),
        ]),
        Write::Delete(id) => json!(["deleteTransaction", id.to_string()]),
    };
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// A write's result as stored in `idempotency_keys.response`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum StoredResult {
    Record {
        id: Uuid,
        user_id: Uuid,
        amount_scaled: i64,
        currency: String,
        kind: String,
        status: String,
        description: Option<String>,
        category: Option<String>,
        occurred_at: DateTime<Utc>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    },
    Deleted {
        id: Uuid,
    },
}

impl From<&Written> for StoredResult {
    fn from(written: &Written) -> Self {
        match written {
            Written::Deleted(id) => Self::Deleted { id: *id },
            Written::Record(m) => Self::Record {
                id: m.id,
                user_id: m.user_id,
                amount_scaled: m.amount_scaled,
                currency: m.currency.clone(),
                kind: m.kind.clone(),
                status: m.status.clone(),
                description: m.description.clone(),
                category: m.category.clone(),
                occurred_at: m.occurred_at,
                created_at: m.created_at,
                updated_at: m.updated_at,
            },
        }
    }
}

impl From<StoredResult> for Written {
    fn from(stored: StoredResult) -> Self {
        match stored {
            StoredResult::Deleted { id } => Self::Deleted(id),
            StoredResult::Record {
                id,
                user_id,
                amount_scaled,
                currency,
                kind,
                status,
                description,
                category,
                occurred_at,
                created_at,
                updated_at,
            } => Self::Record(transaction::Model {
                id,
                user_id,
                amount_scaled,
                currency,
                kind,
                status,
                description,
                category,
                occurred_at,
                created_at,
                updated_at,
            }),
        }
    }
}

impl LedgerService {
    /// Applies `write` once per (user, key); see the module documentation.
    pub(super) async fn write_once(&self, user_id: Uuid, key: &IdempotencyKey, write: Write) -> AppResult<Written> {
        let operation = operation(&write);
        let hash = request_hash(&write);
        let now = Utc::now();
        let cutoff = now - KEY_TTL;
        self.purge_now_and_then(now);
        // Outside the transaction: a replay costs one read, and on SQLite the transaction
        // below must begin with a write to wait for the writer lock rather than fail.
        if let Some(found) = find_key(&self.db, user_id, key, cutoff).await? {
            return replay(found, operation, &hash);
        }
        let txn = self.db.begin().await?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(HOLDER_WAIT).await?;
        }
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::UserId.eq(user_id))
            .filter(idempotency_key::Column::Key.eq(key.as_str()))
            .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
            .exec(&txn)
            .await?;
        let claim = idempotency_key::ActiveModel {
            user_id: Set(user_id),
            key: Set(key.as_str().to_owned()),
            operation: Set(operation.to_owned()),
            request_hash: Set(hash.clone()),
            response: Set(None),
            created_at: Set(now),
        }
        .insert(&txn)
        .await;
        match claim {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                // A concurrent duplicate won and has committed (our insert waited for it).
                let _ = txn.rollback().await;
                return match find_key(&self.db, user_id, key, cutoff).await? {
                    Some(found) => replay(found, operation, &hash),
                    None => Err(AppError::internal(anyhow::anyhow!("idempotency key vanished after a conflict"))),
                };
            }
            Err(err) if is_lock_timeout(&err) => {
                let _ = txn.rollback().await;
                return Err(AppError::bad_field(
                    "idempotencyKey",
                    "IDEMPOTENCY_IN_PROGRESS: a request with this idempotency key is still being processed; retry \
                     it in a few seconds",
                ));
            }
            Err(err) => return Err(crate::error::owner_gone_or(err)),
        }
        let written = match apply(&txn, user_id, write).await {
            Ok(written) => written,
            Err(err) => {
                let _ = txn.rollback().await;
                return Err(err);
            }
        };
        let response = serde_json::to_string(&StoredResult::from(&written)).map_err(AppError::internal)?;
        idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::Response, Expr::value(response))
            .filter(idempotency_key::Column::UserId.eq(user_id))
            .filter(idempotency_key::Column::Key.eq(key.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(written)
    }

    /// Starts a purge of expired keys in the background when this process has not run one for
    /// `PURGE_EVERY`. Replicas purge independently; the deletes are idempotent.
    fn purge_now_and_then(&self, now: DateTime<Utc>) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.timestamp() - last < PURGE_EVERY.num_seconds()
            || self.last_purge.compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(PURGE_TIMEOUT, purge_expired(&db, now - KEY_TTL)).await {
                Ok(Ok(purged)) => tracing::debug!(purged, "expired idempotency keys purged"),
                Ok(Err(err)) => tracing::warn!(error = %err, "purging expired idempotency keys"),
                Err(_) => tracing::warn!("purging expired idempotency keys timed out"),
            }
        });
    }
}

async fn purge_expired(db: &DatabaseConnection, cutoff: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
    let result =
        idempotency_key::Entity::delete_many().filter(idempotency_key::Column::CreatedAt.lt(cutoff)).exec(db).await?;
    Ok(result.rows_affected)
}

/// PostgreSQL's `lock_not_available` (55P03): `lock_timeout` expired.
fn is_lock_timeout(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(&**e, sea_orm::sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
        }
        _ => false,
    }
}

/// The key's committed, unexpired row.
async fn find_key(
    db: &DatabaseConnection,
    user_id: Uuid,
    key: &IdempotencyKey,
    cutoff: DateTime<Utc>,
) -> AppResult<Option<idempotency_key::Model>> {
    Ok(idempotency_key::Entity::find()
        .filter(idempotency_key::Column::UserId.eq(user_id))
        .filter(idempotency_key::Column::Key.eq(key.as_str()))
        .filter(idempotency_key::Column::CreatedAt.gte(cutoff))
        .one(db)
        .await?)
}

/// The first result for the same request; a refusal for a different one.
fn replay(found: idempotency_key::Model, operation: &str, hash: &str) -> AppResult<Written> {
    if found.operation != operation || found.request_hash != hash {
        return Err(AppError::bad_field(
            "idempotencyKey",
            format!(
                "this idempotency key was used for a different request (a {}) in the last 24 hours; use a new key \
                 for a new write",
                found.operation
            ),
        ));
    }
    let response = found
        .response
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("committed idempotency key without a response")))?;
    let stored: StoredResult = serde_json::from_str(&response).map_err(AppError::internal)?;
    Ok(stored.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{
        money::{Currency, Money},
        service::{Kind, NewTransaction},
    };

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("0b9e6c1e-8f5c-4d0e-9a51-5a3c9d6f7e21", "idempotencyKey").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255), "idempotencyKey").is_ok());
        for bad in [String::new(), "k".repeat(256), "a\0b".into(), "clé".into(), "tab\there".into()] {
            assert!(IdempotencyKey::parse(&bad, "idempotencyKey").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn equal_inputs_hash_equal() {
        let create = |amount: &str, code: &str| {
            Write::Create(NewTransaction {
                money: Money::new(amount.parse().unwrap(), Currency::parse(code).unwrap()).unwrap(),
                kind: Kind::Debit,
                status: None,
                description: None,
                category: None,
                occurred_at: None,
            })
        };
        assert_eq!(request_hash(&create("12.34", "usd")), request_hash(&create("12.340", "USD")));
        assert_ne!(request_hash(&create("12.34", "USD")), request_hash(&create("12.35", "USD")));
        assert_ne!(request_hash(&create("12.34", "USD")), request_hash(&create("12.34", "EUR")));
        let id = Uuid::now_v7();
        assert_ne!(request_hash(&Write::Delete(id)), request_hash(&Write::Delete(Uuid::now_v7())));
    }
}
