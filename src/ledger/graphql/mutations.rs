//! The ledger's mutations: create, update and delete a transaction, each exactly once per
//! idempotency key (see `ledger::idempotency`).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::{KindGql, StatusGql, TransactionObject, ledger, parse_id};
use crate::{
    error::AppError,
    graphql::{
        RequestContext,
        global_id::GlobalId,
        scalars::{DecimalString, Timestamp},
    },
    ledger::{
        idempotency::IdempotencyKey,
        money::{Currency, Money},
        service::{MAX_CATEGORY, MAX_DESCRIPTION, NewTransaction, Patch, Text, TransactionPatch},
        time::OccurredAt,
    },
};

/// A new transaction of the caller's.
#[derive(InputObject)]
pub struct CreateTransactionInput {
    /// A positive decimal string with at most the currency's minor-unit digits.
    amount: DecimalString,
    /// ISO 4217 code; defaults to USD.
    currency: Option<String>,
    /// Money in (`CREDIT`) or out (`DEBIT`).
    kind: KindGql,
    /// Defaults to SUCCESS.
    status: Option<StatusGql>,
    /// Free text, at most 500 characters, no control characters but newlines.
    description: Option<String>,
    /// Your own label, at most 100 characters after trimming.
    category: Option<String>,
    /// Defaults to now. From 1970-01-01 up to (not including) 2100-01-01.
    occurred_at: Option<Timestamp>,
    /// Makes retries safe: the same key with the same input, within 24 hours, answers with the
    /// transaction the first request created instead of creating another. 1 to 255 printable
    /// ASCII characters (a UUID is ideal), per user. Over HTTP the `Idempotency-Key` header
    /// does the same.
    idempotency_key: Option<String>,
}

/// Only the fields given change; `null` clears `description` or `category`. Changing the
/// currency keeps the amount's value and checks its digits: 12.34 USD to BHD is 12.340 BHD,
/// to JPY it is refused unless `amount` is given too.
#[derive(InputObject)]
pub struct UpdateTransactionInput {
    /// The new amount: positive, at most the (new) currency's minor-unit digits.
    amount: Option<DecimalString>,
    /// The new ISO 4217 code; the amount keeps its value (see above).
    currency: Option<String>,
    /// The new direction.
    kind: Option<KindGql>,
    /// The new status.
    status: Option<StatusGql>,
    /// The new description (at most 500 characters); `null` clears it.
    description: MaybeUndefined<String>,
    /// The new category (at most 100 characters); `null` clears it.
    category: MaybeUndefined<String>,
    /// From 1970-01-01 up to (not including) 2100-01-01.
    occurred_at: Option<Timestamp>,
    /// As in `CreateTransactionInput`: a retried update answers with the first result.
    idempotency_key: Option<String>,
}

#[derive(Default)]
pub struct LedgerMutation;

#[Object]
impl LedgerMutation {
    /// Records a transaction. See `idempotencyKey` for safe retries.
    async fn create_transaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The transaction to record.")] input: CreateTransactionInput,
    ) -> Result<TransactionObject> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let key = idempotency_key(ctx, rc, input.idempotency_key.as_deref())?;
        let currency = input.currency.as_deref().map(Currency::parse).transpose()?.unwrap_or(Currency::USD);
        let new = NewTransaction {
            money: Money::new(input.amount.0, currency)?,
            kind: input.kind.into(),
            status: input.status.map(Into::into),
            description: optional_text(input.description, "description", MAX_DESCRIPTION)?,
            category: optional_text(input.category, "category", MAX_CATEGORY)?,
            occurred_at: input.occurred_at.map(|at| OccurredAt::parse(at.0, "occurredAt")).transpose()?,
        };
        Ok(TransactionObject(ledger(ctx)?.create(user_id, new, key.as_ref()).await?))
    }

    /// Changes only the fields given.
    async fn update_transaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The transaction's `id`; another user's is `NOT_FOUND`.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateTransactionInput,
    ) -> Result<TransactionObject> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let key = idempotency_key(ctx, rc, input.idempotency_key.as_deref())?;
        let patch = TransactionPatch {
            amount: input.amount.map(|d| d.0),
            currency: input.currency.as_deref().map(Currency::parse).transpose()?,
            kind: input.kind.map(Into::into),
            status: input.status.map(Into::into),
            description: text_patch(input.description, "description", MAX_DESCRIPTION)?,
            category: text_patch(input.category, "category", MAX_CATEGORY)?,
            occurred_at: input.occurred_at.map(|at| OccurredAt::parse(at.0, "occurredAt")).transpose()?,
        };
        Ok(TransactionObject(ledger(ctx)?.update(user_id, parse_id(&id)?, patch, key.as_ref()).await?))
    }

    /// Deletes one of your transactions and returns its global id (`Transaction.id`, to evict
    /// it from a client's cache). With an idempotency key, a retry answers with the id again
    /// rather than NOT_FOUND.
    async fn delete_transaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The transaction's `id`; another user's is `NOT_FOUND`.")] id: ID,
        #[graphql(desc = "Makes a retried delete answer with the id again (see `CreateTransactionInput`).")]
        idempotency_key: Option<String>,
    ) -> Result<ID> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let key = self::idempotency_key(ctx, rc, idempotency_key.as_deref())?;
        let id = ledger(ctx)?.delete(user_id, parse_id(&id)?, key.as_ref()).await?;
        Ok(GlobalId::of::<TransactionObject>(&id.to_string()))
    }
}

fn optional_text(value: Option<String>, field: &'static str, max: usize) -> Result<Option<Text>, AppError> {
    value.map(|raw| Text::parse(&raw, field, max)).transpose().map(Option::flatten)
}

/// `null` clears; blank text clears too (as on create, blank is absent).
fn text_patch(value: MaybeUndefined<String>, field: &'static str, max: usize) -> Result<Patch<Text>, AppError> {
    Ok(match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(raw) => match Text::parse(&raw, field, max)? {
            Some(text) => Patch::Set(text),
            None => Patch::Clear,
        },
    })
}

/// The idempotency key of a write: the `idempotencyKey` input, or the `Idempotency-Key` header.
///
/// The header names one write, so it applies only to a document whose operation selects exactly
/// one root field: with aliases or several mutations in one document, it would name them all,
/// and all but the first would be refused as a different request under the same key. Such a
/// document with the header is refused; each mutation carries its own `idempotencyKey`
/// instead. When both are given they must be equal. Over WebSocket there is no header.
fn idempotency_key(
    ctx: &Context<'_>,
    rc: &RequestContext,
    field: Option<&str>,
) -> Result<Option<IdempotencyKey>, AppError> {
    let header = rc.client.idempotency_key.as_deref();
    if header.is_some() && !single_root_field(ctx) {
        return Err(AppError::bad_field(
            "idempotencyKey",
            "the Idempotency-Key header applies to a single mutation per request; with several, give each its own \
             `idempotencyKey` input",
        ));
    }
    match (header, field) {
        (Some(header), Some(field)) if header != field => Err(AppError::bad_field(
            "idempotencyKey",
            "the Idempotency-Key header and the `idempotencyKey` input differ; send one of them",
        )),
        (Some(header), _) => IdempotencyKey::parse(header, "Idempotency-Key").map(Some),
        (None, Some(field)) => IdempotencyKey::parse(field, "idempotencyKey").map(Some),
        (None, None) => Ok(None),
    }
}

/// Whether the executing operation's root selection is one plain field (no fragment spread,
/// no inline fragment, no sibling). Read from the operation async-graphql is executing: its
/// public API offers no other way to see a field's siblings.
fn single_root_field(ctx: &Context<'_>) -> bool {
    use async_graphql::parser::types::Selection;
    let items = &ctx.query_env.operation.node.selection_set.node.items;
    matches!(items.as_slice(), [only] if matches!(only.node, Selection::Field(_)))
}
