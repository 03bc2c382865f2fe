//! GraphQL resolvers for the ledger: thin wrappers over `LedgerService`.
//! The `Transaction` type, its connection and the queries here; mutations and analytics in the
//! submodules.

/// `transactionAnalytics` and its breakdown types.
mod analytics;
/// `createTransaction`, `updateTransaction`, `deleteTransaction`, with idempotency keys.
mod mutations;

pub use analytics::TransactionAnalytics;
pub use mutations::{CreateTransactionInput, LedgerMutation, UpdateTransactionInput};

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::DateTime;
use uuid::Uuid;

use super::{
    analytics::{AnalyticsScope, statuses_or_default},
    listing::{Columns, Cursor, PageRequest, TransactionFilter, TransactionOrder, check_amounts},
    money::Currency,
    service::{Kind, MAX_CATEGORY, Status, TransactionRecord, check_text},
    time::{check_range, range_bound},
};
use crate::{
    accounts::graphql::{UserObject, load_user},
    error::AppError,
    graphql::{
        PageInfo, RequestContext,
        global_id::{GlobalId, uuid_of},
        scalars::{DecimalString, Timestamp},
        service,
    },
    ledger::LedgerService,
};

/// Which way the money moved, from the user's point of view.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TransactionKind", remote = "Kind")]
pub enum KindGql {
    /// Money in.
    Credit,
    /// Money out.
    Debit,
}

/// Where a transaction stands. Analytics count `PENDING` and `SUCCESS` unless asked otherwise.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TransactionStatus", remote = "Status")]
pub enum StatusGql {
    /// Recorded, not yet settled.
    Pending,
    /// Settled: the money moved.
    Success,
    /// Did not go through: kept for the record, left out of analytics by default.
    Failed,
}

/// The order of a page of transactions; ties are broken by id, so pages never skip or repeat.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(name = "TransactionOrder", remote = "TransactionOrder")]
pub enum OrderGql {
    /// Newest first (the default).
    #[default]
    OccurredAtDesc,
    /// Oldest first.
    OccurredAtAsc,
    /// Largest amount first (amounts compared across currencies as plain numbers).
    AmountDesc,
    /// Smallest amount first (amounts compared across currencies as plain numbers).
    AmountAsc,
}

/// A personal-finance transaction, visible only to its owner.
pub struct TransactionObject(pub TransactionRecord);

/// A column the query did not select: a bug in look-ahead, never the client's fault.
fn unloaded(field: &str) -> AppError {
    AppError::internal(anyhow::anyhow!("transaction field `{field}` resolved but not loaded"))
}

/// A personal-finance transaction, visible only to its owner.
#[Object(name = "Transaction", cache_control(private, no_cache))]
impl TransactionObject {
    /// The transaction's global id (`Node.id`). `transaction`, `updateTransaction` and
    /// `deleteTransaction` also accept the bare UUID `id` was before global ids.
    pub async fn id(&self) -> ID {
        GlobalId::of::<Self>(&self.0.id.to_string())
    }
    /// Positive, with exactly the currency's minor-unit digits (`"42.00"` USD, `"500"` JPY).
    async fn amount(&self) -> Result<DecimalString> {
        Ok(DecimalString(self.0.money.ok_or_else(|| unloaded("amount"))?.amount()))
    }
    /// ISO 4217 code.
    async fn currency(&self) -> Result<&'static str> {
        Ok(self.0.money.ok_or_else(|| unloaded("currency"))?.currency().code())
    }
    /// Money in (`CREDIT`) or out (`DEBIT`).
    async fn kind(&self) -> Result<KindGql> {
        Ok(self.0.kind.ok_or_else(|| unloaded("kind"))?.into())
    }
    /// Pending, settled or failed.
    async fn status(&self) -> Result<StatusGql> {
        Ok(self.0.status.ok_or_else(|| unloaded("status"))?.into())
    }
    /// Free text, at most 500 characters; null when none was given.
    async fn description(&self) -> Result<Option<&str>> {
        Ok(self.0.description.as_ref().ok_or_else(|| unloaded("description"))?.as_deref())
    }
    /// The user's own label (`groceries`, `salary`), at most 100 characters, compared
    /// exactly; null when uncategorised.
    async fn category(&self) -> Result<Option<&str>> {
        Ok(self.0.category.as_ref().ok_or_else(|| unloaded("category"))?.as_deref())
    }
    /// When the money moved (UTC).
    async fn occurred_at(&self) -> Result<Timestamp> {
        Ok(Timestamp(self.0.occurred_at.ok_or_else(|| unloaded("occurredAt"))?))
    }
    /// When finql recorded it.
    async fn created_at(&self) -> Result<Timestamp> {
        Ok(Timestamp(self.0.created_at.ok_or_else(|| unloaded("createdAt"))?))
    }
    /// When it last changed (`createdAt` until updated).
    async fn updated_at(&self) -> Result<Timestamp> {
        Ok(Timestamp(self.0.updated_at.ok_or_else(|| unloaded("updatedAt"))?))
    }
    /// The owner (batched through a DataLoader).
    async fn user(&self, ctx: &Context<'_>) -> Result<UserObject> {
        load_user(ctx, self.0.user_id).await
    }
}

/// All conditions must hold. Time bounds: `from` inclusive, `to` exclusive.
#[derive(InputObject, Default)]
pub struct TransactionFilterInput {
    /// Only credits or only debits.
    kind: Option<KindGql>,
    /// Only this status.
    status: Option<StatusGql>,
    /// Exact category name.
    category: Option<String>,
    /// ISO 4217 code.
    currency: Option<String>,
    /// Transactions that occurred at or after this instant.
    from: Option<Timestamp>,
    /// Transactions that occurred before this instant.
    to: Option<Timestamp>,
    /// Inclusive.
    min_amount: Option<DecimalString>,
    /// Inclusive.
    max_amount: Option<DecimalString>,
}

impl TransactionFilterInput {
    fn into_filter(self) -> Result<TransactionFilter, AppError> {
        let (from, to) = (self.from.map(DateTime::from), self.to.map(DateTime::from));
        check_range(from, to)?;
        check_amounts(self.min_amount.map(|d| d.0), self.max_amount.map(|d| d.0))?;
        let category = self.category.map(|c| c.trim().to_owned());
        if let Some(category) = &category {
            check_text(category, "category", MAX_CATEGORY)?;
        }
        Ok(TransactionFilter {
            kind: self.kind.map(Into::into),
            status: self.status.map(Into::into),
            category,
            currency: self.currency.as_deref().map(Currency::parse).transpose()?,
            from: from.map(|at| range_bound(at, "from")).transpose()?,
            to: to.map(|at| range_bound(at, "to")).transpose()?,
            min_amount: self.min_amount.map(|d| d.0),
            max_amount: self.max_amount.map(|d| d.0),
        })
    }
}

/// One transaction and its cursor (Relay edge).
#[derive(SimpleObject)]
pub struct TransactionEdge {
    /// Opaque; pass as `after` or `before`.
    cursor: String,
    /// The transaction.
    node: TransactionObject,
}

/// A page of transactions (Relay connection).
pub struct TransactionConnection {
    user_id: Uuid,
    filter: TransactionFilter,
    edges: Vec<(String, TransactionRecord)>,
    page_info: PageInfo,
}

/// A page of transactions (Relay connection).
#[Object]
impl TransactionConnection {
    /// The page's transactions with their cursors, in the order asked.
    async fn edges(&self) -> Vec<TransactionEdge> {
        self.edges
            .iter()
            .map(|(cursor, record)| TransactionEdge { cursor: cursor.clone(), node: TransactionObject(record.clone()) })
            .collect()
    }
    /// The nodes without their cursors.
    async fn nodes(&self) -> Vec<TransactionObject> {
        self.edges.iter().map(|(_, record)| TransactionObject(record.clone())).collect()
    }
    /// Whether more pages follow or precede, and the cursors to get them.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// All transactions matching the filter, across pages. Costs a COUNT: ask only when needed.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(ledger(ctx)?.count(self.user_id, &self.filter).await?)
    }
}

/// The columns a selection set needs, from `edges { node { … } }` and `nodes { … }`.
fn selected_columns(ctx: &Context<'_>) -> Columns {
    let look = ctx.look_ahead();
    let edge_node = look.field("edges").field("node");
    let node = look.field("nodes");
    let wants = |name: &str| edge_node.field(name).exists() || node.field(name).exists();
    Columns {
        amount: wants("amount") || wants("currency"),
        kind: wants("kind"),
        status: wants("status"),
        description: wants("description"),
        category: wants("category"),
        occurred_at: wants("occurredAt"),
        created_at: wants("createdAt"),
        updated_at: wants("updatedAt"),
    }
}

#[derive(Default)]
pub struct LedgerQuery;

#[Object]
impl LedgerQuery {
    /// One of your transactions: null with a `NOT_FOUND` error beside it for a missing one, and
    /// for another user's, which is indistinguishable from a missing one.
    #[graphql(cache_control(private, no_cache))]
    async fn transaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The transaction's `id`.")] id: ID,
    ) -> Result<Option<TransactionObject>> {
        transaction_node(ctx, parse_id(&id)?).await.map(Some)
    }

    /// Your transactions, newest first unless `orderBy` says otherwise. At most 100 per page.
    // One parameter per GraphQL argument: that is the API's shape.
    #[allow(clippy::too_many_arguments)]
    #[graphql(cache_control(private, no_cache))]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Forward paging: this many (0 to 100; 20 when neither `first` nor `last` is given).")]
        first: Option<i32>,
        #[graphql(desc = "Forward paging: the items after this cursor (an edge's `cursor`); goes with `first`.")]
        after: Option<String>,
        #[graphql(desc = "Backward paging: this many (0 to 100), ending at `before`; not with `first`.")] last: Option<
            i32,
        >,
        #[graphql(desc = "Backward paging: the items before this cursor; goes with `last`.")] before: Option<String>,
        #[graphql(desc = "Which transactions; all of yours when omitted.")] filter: Option<TransactionFilterInput>,
        #[graphql(default, desc = "The order; a cursor only continues the order it was taken in.")] order_by: OrderGql,
    ) -> Result<TransactionConnection> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let order: TransactionOrder = order_by.into();
        let page = PageRequest::from_relay(first, after, last, before, order)?;
        let filter = filter.unwrap_or_default().into_filter()?;
        let result = ledger(ctx)?.list(user_id, &filter, order, &page, selected_columns(ctx)).await?;
        let edges: Vec<(String, TransactionRecord)> = result
            .records
            .into_iter()
            .map(|record| {
                let cursor = Cursor::of(&record, order).ok_or_else(|| unloaded("sort key"))?;
                Ok((cursor.encode(), record))
            })
            .collect::<Result<_, AppError>>()?;
        let page_info = PageInfo {
            has_next_page: result.has_next_page,
            has_previous_page: result.has_previous_page,
            start_cursor: edges.first().map(|(c, _)| c.clone()),
            end_cursor: edges.last().map(|(c, _)| c.clone()),
        };
        Ok(TransactionConnection { user_id, filter, edges, page_info })
    }

    /// Figures over your transactions in one currency (default USD) and a time range (`from`
    /// inclusive, `to` exclusive). `statuses` defaults to PENDING and SUCCESS.
    #[graphql(cache_control(private, no_cache))]
    async fn transaction_analytics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Transactions that occurred at or after this instant; from the first when omitted.")]
        from: Option<Timestamp>,
        #[graphql(desc = "Transactions that occurred before this instant; up to now and beyond when omitted.")]
        to: Option<Timestamp>,
        #[graphql(desc = "ISO 4217 code of the transactions counted (`USD` when omitted); others are left out.")]
        currency: Option<String>,
        #[graphql(desc = "The statuses counted; `PENDING` and `SUCCESS` when omitted. Not empty.")] statuses: Option<
            Vec<StatusGql>,
        >,
    ) -> Result<TransactionAnalytics> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let (from, to) = (from.map(DateTime::from), to.map(DateTime::from));
        check_range(from, to)?;
        let currency = currency.as_deref().map(Currency::parse).transpose()?.unwrap_or(Currency::USD);
        let statuses = statuses_or_default(statuses.map(|list| list.into_iter().map(Into::into).collect()))?;
        let from = from.map(|at| range_bound(at, "from")).transpose()?;
        let to = to.map(|at| range_bound(at, "to")).transpose()?;
        Ok(TransactionAnalytics::new(AnalyticsScope { user_id, currency, from, to, statuses }))
    }
}

/// One of the caller's transactions (`transaction`, `Query.node`). Another user's is
/// `NOT_FOUND`, exactly like a missing one.
pub async fn transaction_node(ctx: &Context<'_>, id: Uuid) -> Result<TransactionObject> {
    let user_id = RequestContext::of(ctx)?.user_id()?;
    Ok(TransactionObject(ledger(ctx)?.get(user_id, id).await?))
}

/// The ledger service, as the schema was given it.
fn ledger<'a>(ctx: &Context<'a>) -> Result<&'a LedgerService, AppError> {
    service::<LedgerService>(ctx)
}

/// A transaction's UUID from its global id or, as before global ids, the bare UUID.
fn parse_id(id: &ID) -> Result<Uuid, AppError> {
    uuid_of::<TransactionObject>(id, "id")
}
