//! GraphQL resolvers for the ledger: thin wrappers over [`LedgerService`].

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{
    analytics::{AnalyticsScope, Bucket, Totals},
    idempotency::IdempotencyKey,
    listing::{Columns, Cursor, PageRequest, TransactionFilter, TransactionOrder},
    money::{Currency, Money, format_decimal, format_scaled},
    service::{
        Kind, MAX_CATEGORY, MAX_DESCRIPTION, NewTransaction, Patch, Status, Text, TransactionPatch, TransactionRecord,
        check_text,
    },
    time::{OccurredAt, range_bound},
};
use crate::{
    accounts::graphql::{UserObject, load_user},
    error::AppError,
    graphql::{PageInfo, context::RequestContext, scalars::DecimalString},
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TransactionKind")]
pub enum KindGql {
    /// Money in.
    Credit,
    /// Money out.
    Debit,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TransactionStatus")]
pub enum StatusGql {
    Pending,
    Success,
    Failed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(name = "TransactionOrder")]
pub enum OrderGql {
    /// Newest first (the default).
    #[default]
    OccurredAtDesc,
    OccurredAtAsc,
    AmountDesc,
    AmountAsc,
}

impl From<KindGql> for Kind {
    fn from(k: KindGql) -> Self {
        match k {
            KindGql::Credit => Kind::Credit,
            KindGql::Debit => Kind::Debit,
        }
    }
}
impl From<Kind> for KindGql {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Credit => KindGql::Credit,
            Kind::Debit => KindGql::Debit,
        }
    }
}
impl From<StatusGql> for Status {
    fn from(s: StatusGql) -> Self {
        match s {
            StatusGql::Pending => Status::Pending,
            StatusGql::Success => Status::Success,
            StatusGql::Failed => Status::Failed,
        }
    }
}
impl From<Status> for StatusGql {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => StatusGql::Pending,
            Status::Success => StatusGql::Success,
            Status::Failed => StatusGql::Failed,
        }
    }
}
impl From<OrderGql> for TransactionOrder {
    fn from(o: OrderGql) -> Self {
        match o {
            OrderGql::OccurredAtDesc => TransactionOrder::OccurredAtDesc,
            OrderGql::OccurredAtAsc => TransactionOrder::OccurredAtAsc,
            OrderGql::AmountDesc => TransactionOrder::AmountDesc,
            OrderGql::AmountAsc => TransactionOrder::AmountAsc,
        }
    }
}

/// A personal-finance transaction, visible only to its owner.
pub struct TransactionObject(pub TransactionRecord);

/// A column the query did not select: a bug in look-ahead, never the client's fault.
fn unloaded(field: &str) -> AppError {
    AppError::internal(anyhow::anyhow!("transaction field `{field}` resolved but not loaded"))
}

#[Object(name = "Transaction")]
impl TransactionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Positive, with exactly the currency's minor-unit digits (`"42.00"` USD, `"500"` JPY).
    async fn amount(&self) -> Result<DecimalString> {
        Ok(DecimalString(self.0.money.ok_or_else(|| unloaded("amount"))?.amount()))
    }
    /// ISO 4217 code.
    async fn currency(&self) -> Result<&'static str> {
        Ok(self.0.money.ok_or_else(|| unloaded("currency"))?.currency().code())
    }
    async fn kind(&self) -> Result<KindGql> {
        Ok(self.0.kind.ok_or_else(|| unloaded("kind"))?.into())
    }
    async fn status(&self) -> Result<StatusGql> {
        Ok(self.0.status.ok_or_else(|| unloaded("status"))?.into())
    }
    async fn description(&self) -> Result<Option<&str>> {
        Ok(self.0.description.as_ref().ok_or_else(|| unloaded("description"))?.as_deref())
    }
    async fn category(&self) -> Result<Option<&str>> {
        Ok(self.0.category.as_ref().ok_or_else(|| unloaded("category"))?.as_deref())
    }
    /// When the money moved (UTC).
    async fn occurred_at(&self) -> Result<DateTime<Utc>> {
        Ok(self.0.occurred_at.ok_or_else(|| unloaded("occurredAt"))?)
    }
    async fn created_at(&self) -> Result<DateTime<Utc>> {
        Ok(self.0.created_at.ok_or_else(|| unloaded("createdAt"))?)
    }
    async fn updated_at(&self) -> Result<DateTime<Utc>> {
        Ok(self.0.updated_at.ok_or_else(|| unloaded("updatedAt"))?)
    }
    /// The owner (batched through a DataLoader).
    async fn user(&self, ctx: &Context<'_>) -> Result<UserObject> {
        load_user(ctx, self.0.user_id).await
    }
}

#[derive(InputObject)]
pub struct CreateTransactionInput {
    /// A positive decimal string with at most the currency's minor-unit digits.
    amount: DecimalString,
    /// ISO 4217 code; defaults to USD.
    currency: Option<String>,
    kind: KindGql,
    /// Defaults to SUCCESS.
    status: Option<StatusGql>,
    description: Option<String>,
    category: Option<String>,
    /// Defaults to now. From 1970-01-01 up to (not including) 2100-01-01.
    occurred_at: Option<DateTime<Utc>>,
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
    amount: Option<DecimalString>,
    currency: Option<String>,
    kind: Option<KindGql>,
    status: Option<StatusGql>,
    description: MaybeUndefined<String>,
    category: MaybeUndefined<String>,
    /// From 1970-01-01 up to (not including) 2100-01-01.
    occurred_at: Option<DateTime<Utc>>,
    /// As in `CreateTransactionInput`: a retried update answers with the first result.
    idempotency_key: Option<String>,
}

/// All conditions must hold. Time bounds: `from` inclusive, `to` exclusive.
#[derive(InputObject, Default)]
pub struct TransactionFilterInput {
    kind: Option<KindGql>,
    status: Option<StatusGql>,
    /// Exact category name.
    category: Option<String>,
    /// ISO 4217 code.
    currency: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// Inclusive.
    min_amount: Option<DecimalString>,
    /// Inclusive.
    max_amount: Option<DecimalString>,
}

impl TransactionFilterInput {
    fn into_filter(self) -> Result<TransactionFilter, AppError> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(AppError::bad_field("from", "`from` must not be after `to`"));
        }
        if let (Some(min), Some(max)) = (self.min_amount, self.max_amount)
            && min.0 > max.0
        {
            return Err(AppError::bad_field("minAmount", "`minAmount` must not exceed `maxAmount`"));
        }
        let category = self.category.map(|c| c.trim().to_owned());
        if let Some(category) = &category {
            check_text(category, "category", MAX_CATEGORY)?;
        }
        Ok(TransactionFilter {
            kind: self.kind.map(Into::into),
            status: self.status.map(Into::into),
            category,
            currency: self.currency.as_deref().map(Currency::parse).transpose()?,
            from: self.from.map(|at| range_bound(at, "from")).transpose()?,
            to: self.to.map(|at| range_bound(at, "to")).transpose()?,
            min_amount: self.min_amount.map(|d| d.0),
            max_amount: self.max_amount.map(|d| d.0),
        })
    }
}

#[derive(SimpleObject)]
pub struct TransactionEdge {
    /// Opaque; pass as `after` or `before`.
    cursor: String,
    node: TransactionObject,
}

/// A page of transactions (Relay connection).
pub struct TransactionConnection {
    user_id: Uuid,
    filter: TransactionFilter,
    edges: Vec<(String, TransactionRecord)>,
    page_info: PageInfo,
}

#[Object]
impl TransactionConnection {
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
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// All transactions matching the filter, across pages. Costs a COUNT: ask only when needed.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let rc = RequestContext::of(ctx)?;
        Ok(rc.state.ledger.count(self.user_id, &self.filter).await?)
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
    /// One of your transactions. Another user's id answers NOT_FOUND, like a missing one.
    async fn transaction(&self, ctx: &Context<'_>, id: ID) -> Result<TransactionObject> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        Ok(TransactionObject(rc.state.ledger.get(user_id, parse_id(&id)?).await?))
    }

    /// Your transactions, newest first unless `orderBy` says otherwise. At most 100 per page.
    // One parameter per GraphQL argument: that is the API's shape.
    #[allow(clippy::too_many_arguments)]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TransactionFilterInput>,
        #[graphql(default)] order_by: OrderGql,
    ) -> Result<TransactionConnection> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let order: TransactionOrder = order_by.into();
        let page = PageRequest::from_relay(first, after, last, before, order)?;
        let filter = filter.unwrap_or_default().into_filter()?;
        let result = rc.state.ledger.list(user_id, &filter, order, &page, selected_columns(ctx)).await?;
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
    async fn transaction_analytics(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        currency: Option<String>,
        statuses: Option<Vec<StatusGql>>,
    ) -> Result<TransactionAnalytics> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(AppError::bad_field("from", "`from` must not be after `to`").into());
        }
        let currency = currency.as_deref().map(Currency::parse).transpose()?.unwrap_or(Currency::USD);
        let statuses = match statuses {
            Some(list) if list.is_empty() => {
                return Err(AppError::bad_field("statuses", "`statuses` must not be empty").into());
            }
            Some(list) => list.into_iter().map(Into::into).collect(),
            None => vec![Status::Pending, Status::Success],
        };
        let from = from.map(|at| range_bound(at, "from")).transpose()?;
        let to = to.map(|at| range_bound(at, "to")).transpose()?;
        Ok(TransactionAnalytics {
            scope: AnalyticsScope { user_id, currency, from, to, statuses },
            totals: OnceCell::new(),
        })
    }
}

#[derive(Default)]
pub struct LedgerMutation;

#[Object]
impl LedgerMutation {
    /// Records a transaction. See `idempotencyKey` for safe retries.
    async fn create_transaction(&self, ctx: &Context<'_>, input: CreateTransactionInput) -> Result<TransactionObject> {
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
            occurred_at: input.occurred_at.map(|at| OccurredAt::parse(at, "occurredAt")).transpose()?,
        };
        Ok(TransactionObject(rc.state.ledger.create(user_id, new, key.as_ref()).await?))
    }

    /// Changes only the fields given.
    async fn update_transaction(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTransactionInput,
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
            occurred_at: input.occurred_at.map(|at| OccurredAt::parse(at, "occurredAt")).transpose()?,
        };
        Ok(TransactionObject(rc.state.ledger.update(user_id, parse_id(&id)?, patch, key.as_ref()).await?))
    }

    /// Deletes one of your transactions and returns its id. With an idempotency key, a retry
    /// answers with the id again rather than NOT_FOUND.
    async fn delete_transaction(&self, ctx: &Context<'_>, id: ID, idempotency_key: Option<String>) -> Result<ID> {
        let rc = RequestContext::of(ctx)?;
        let user_id = rc.user_id()?;
        let key = self::idempotency_key(ctx, rc, idempotency_key.as_deref())?;
        let id = rc.state.ledger.delete(user_id, parse_id(&id)?, key.as_ref()).await?;
        Ok(ID(id.to_string()))
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

fn parse_id(id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_field("id", format!("`{}` is not a valid transaction id", id.as_str())))
}

/// Figures for one currency. Each field runs its own aggregate query, only when asked for.
pub struct TransactionAnalytics {
    scope: AnalyticsScope,
    totals: OnceCell<Totals>,
}

impl TransactionAnalytics {
    async fn totals(&self, ctx: &Context<'_>) -> Result<&Totals> {
        let rc = RequestContext::of(ctx)?;
        Ok(self.totals.get_or_try_init(|| rc.state.ledger.totals(&self.scope)).await?)
    }
    fn money(&self, scaled: i128) -> DecimalString {
        DecimalString(format_scaled(scaled, self.scope.currency))
    }
}

#[Object]
impl TransactionAnalytics {
    /// The currency every amount here is in.
    async fn currency(&self) -> &'static str {
        self.scope.currency.code()
    }
    async fn count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.totals(ctx).await?.count)
    }
    /// Mean transaction amount (credits and debits alike), rounded half away from zero to the
    /// currency's digits; null when there are no transactions.
    async fn average_amount(&self, ctx: &Context<'_>) -> Result<Option<DecimalString>> {
        let totals = self.totals(ctx).await?;
        if totals.count == 0 {
            return Ok(None);
        }
        let mean = rust_decimal::Decimal::from_i128_with_scale(totals.sum, super::money::SCALE)
            / rust_decimal::Decimal::from(totals.count);
        Ok(Some(DecimalString(format_decimal(mean, self.scope.currency))))
    }
    async fn total_credit(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        Ok(self.money(self.totals(ctx).await?.credit))
    }
    async fn total_debit(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        Ok(self.money(self.totals(ctx).await?.debit))
    }
    /// Credits minus debits.
    async fn net(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        let totals = self.totals(ctx).await?;
        Ok(self.money(totals.credit - totals.debit))
    }
    /// The UTC day with the most transactions (ties: the earliest); null when there are none.
    async fn busiest_day(&self, ctx: &Context<'_>) -> Result<Option<DayCount>> {
        let rc = RequestContext::of(ctx)?;
        let day = rc.state.ledger.busiest_day(&self.scope).await?;
        Ok(day.map(|b| DayCount { date: b.key.into(), count: b.totals.count }))
    }
    /// One entry per UTC day that has transactions, oldest first.
    async fn by_day(&self, ctx: &Context<'_>) -> Result<Vec<DayBreakdown>> {
        let rc = RequestContext::of(ctx)?;
        let days = rc.state.ledger.by_day(&self.scope).await?;
        Ok(days.into_iter().map(|b| DayBreakdown { date: b.key.into(), sums: self.sums(&b) }).collect())
    }
    /// One entry per UTC month (`YYYY-MM`) that has transactions, oldest first.
    async fn by_month(&self, ctx: &Context<'_>) -> Result<Vec<MonthBreakdown>> {
        let rc = RequestContext::of(ctx)?;
        let months = rc.state.ledger.by_month(&self.scope).await?;
        Ok(months.iter().map(|b| MonthBreakdown { month: b.key.clone(), sums: self.sums(b) }).collect())
    }
    /// One entry per category (null: uncategorised), most transactions first.
    async fn by_category(&self, ctx: &Context<'_>) -> Result<Vec<CategoryBreakdown>> {
        let rc = RequestContext::of(ctx)?;
        let categories = rc.state.ledger.by_category(&self.scope).await?;
        Ok(categories.iter().map(|b| CategoryBreakdown { category: b.key.clone(), sums: self.sums(b) }).collect())
    }
    /// Every currency you have transactions in over this range and these statuses.
    async fn currencies(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let rc = RequestContext::of(ctx)?;
        Ok(rc.state.ledger.currencies(&self.scope).await?)
    }
}

impl TransactionAnalytics {
    fn sums<K>(&self, bucket: &Bucket<K>) -> Sums {
        let t = &bucket.totals;
        Sums {
            count: t.count,
            total_credit: self.money(t.credit),
            total_debit: self.money(t.debit),
            net: self.money(t.credit - t.debit),
        }
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy)]
pub struct Date(pub NaiveDate);

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Self(d)
    }
}

#[async_graphql::Scalar(name = "Date")]
impl async_graphql::ScalarType for Date {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| async_graphql::InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[derive(SimpleObject)]
pub struct DayCount {
    date: Date,
    count: i64,
}

#[derive(SimpleObject)]
pub struct Sums {
    count: i64,
    total_credit: DecimalString,
    total_debit: DecimalString,
    net: DecimalString,
}

#[derive(SimpleObject)]
pub struct DayBreakdown {
    date: Date,
    #[graphql(flatten)]
    sums: Sums,
}

#[derive(SimpleObject)]
pub struct MonthBreakdown {
    /// `YYYY-MM`.
    month: String,
    #[graphql(flatten)]
    sums: Sums,
}

#[derive(SimpleObject)]
pub struct CategoryBreakdown {
    category: Option<String>,
    #[graphql(flatten)]
    sums: Sums,
}
