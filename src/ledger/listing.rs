//! Listing a user's transactions: filters, orders, keyset pagination, column selection.
//!
//! Keyset (not offset) pagination: a page costs the same at row 10 as at row 100,000, and rows
//! inserted meanwhile neither repeat nor vanish. The cursor is the last row's sort key and id,
//! opaque to clients (base64 of a versioned string). Only the columns the GraphQL selection asks
//! for are read.

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::transaction::{self, Column};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select, sea_query::Condition,
};
use uuid::Uuid;

use super::{
    money::{Currency, MAX_SCALED, Money, SCALE},
    service::{Kind, LedgerService, Status, TransactionRecord, kind_from_db, status_from_db},
    time::OccurredAt,
};
use crate::error::{AppError, AppResult};

/// The most rows one page may hold.
pub const MAX_PAGE: u64 = 100;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: u64 = 20;
/// The longest cursor accepted: ours are at most 90 characters; a little room for versions.
const MAX_CURSOR_LEN: usize = 128;

#[derive(Clone, Debug, Default)]
pub struct TransactionFilter {
    pub kind: Option<Kind>,
    pub status: Option<Status>,
    /// Exact match, trimmed; checked like a stored category (`service::check_text`).
    pub category: Option<String>,
    pub currency: Option<Currency>,
    /// Inclusive lower bound of `occurred_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound of `occurred_at`.
    pub to: Option<DateTime<Utc>>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
}

/// An amount range's rule: `minAmount` must not exceed `maxAmount` (`BAD_USER_INPUT` on
/// `minAmount`).
pub fn check_amounts(min: Option<Decimal>, max: Option<Decimal>) -> AppResult<()> {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(AppError::bad_field("minAmount", "`minAmount` must not exceed `maxAmount`"));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransactionOrder {
    #[default]
    OccurredAtDesc,
    OccurredAtAsc,
    AmountDesc,
    AmountAsc,
}

impl TransactionOrder {
    fn tag(self) -> &'static str {
        match self {
            Self::OccurredAtDesc => "od",
            Self::OccurredAtAsc => "oa",
            Self::AmountDesc => "ad",
            Self::AmountAsc => "aa",
        }
    }
    fn column(self) -> Column {
        match self {
            Self::OccurredAtDesc | Self::OccurredAtAsc => Column::OccurredAt,
            Self::AmountDesc | Self::AmountAsc => Column::AmountScaled,
        }
    }
    fn ascending(self) -> bool {
        matches!(self, Self::OccurredAtAsc | Self::AmountAsc)
    }
}

/// Which optional columns to read. `id` and `user_id`, and the sort column, are always read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Columns {
    pub amount: bool,
    pub kind: bool,
    pub status: bool,
    pub description: bool,
    pub category: bool,
    pub occurred_at: bool,
    pub created_at: bool,
    pub updated_at: bool,
}

/// A position in a listing: the sort key and id of a row, for one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    order: TransactionOrder,
    /// Microseconds since the epoch, or the scaled amount.
    key: i64,
    id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}:{}",
            self.order.tag(),
            self.key,
            self.id
        ))
    }

    /// Parses a cursor a client sent back. Its key must be one a row can have (a time in
    /// `OccurredAt`'s range, or a valid scaled amount): anything else was made by hand.
    pub fn decode(raw: &str, order: TransactionOrder, field: &'static str) -> AppResult<Self> {
        // The longest cursor we issue: "v1:od:" + 20 digits + ":" + a 36-char UUID, base64.
        if raw.len() > MAX_CURSOR_LEN {
            return Err(AppError::bad_field(field, "not a valid cursor"));
        }
        let invalid = || AppError::bad_field(field, format!("`{raw}` is not a valid cursor"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.split(':');
        let (Some("v1"), Some(tag), Some(key), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if tag != order.tag() {
            return Err(AppError::bad_field(field, "cursor belongs to a different orderBy; restart pagination"));
        }
        let key: i64 = key.parse().map_err(|_| invalid())?;
        let in_range = match order.column() {
            Column::AmountScaled => (1..=MAX_SCALED).contains(&key),
            _ => OccurredAt::from_micros(key, field).is_ok(),
        };
        if !in_range {
            return Err(AppError::bad_field(field, "cursor is out of range"));
        }
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(Self { order, key, id })
    }

    pub fn of(record: &TransactionRecord, order: TransactionOrder) -> Option<Self> {
        let key = match order.column() {
            Column::AmountScaled => record.money?.scaled(),
            _ => record.occurred_at?.timestamp_micros(),
        };
        Some(Self { order, key, id: record.id })
    }
}

#[derive(Clone, Debug)]
pub enum PageRequest {
    Forward { first: u64, after: Option<Cursor> },
    Backward { last: u64, before: Option<Cursor> },
}

impl PageRequest {
    /// Relay arguments -> a page request. `first` with `before`, or `last` with `after`, are
    /// valid Relay but rarely meant; both pairs are accepted as bounds of the window.
    pub fn from_relay(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order: TransactionOrder,
    ) -> AppResult<Self> {
        let size = |n: i32, name: &'static str| -> AppResult<u64> {
            let n =
                u64::try_from(n).map_err(|_| AppError::bad_field(name, format!("`{name}` must not be negative")))?;
            if n > MAX_PAGE {
                return Err(AppError::bad_field(name, format!("`{name}` must be at most {MAX_PAGE}")));
            }
            Ok(n)
        };
        let after = after.map(|c| Cursor::decode(&c, order, "after")).transpose()?;
        let before = before.map(|c| Cursor::decode(&c, order, "before")).transpose()?;
        match (first, last) {
            (Some(_), Some(_)) => Err(AppError::bad_input("pass `first` or `last`, not both")),
            (None, Some(last)) => {
                if after.is_some() {
                    return Err(AppError::bad_input("`after` goes with `first`; use `before` with `last`"));
                }
                Ok(Self::Backward { last: size(last, "last")?, before })
            }
            (first, None) => {
                if before.is_some() {
                    return Err(AppError::bad_input("`before` goes with `last`; use `after` with `first`"));
                }
                Ok(Self::Forward { first: first.map(|n| size(n, "first")).transpose()?.unwrap_or(DEFAULT_PAGE), after })
            }
        }
    }
}

pub struct Page {
    pub records: Vec<TransactionRecord>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl LedgerService {
    pub async fn list(
        &self,
        user_id: Uuid,
        filter: &TransactionFilter,
        order: TransactionOrder,
        page: &PageRequest,
        columns: Columns,
    ) -> AppResult<Page> {
        let (limit, cursor, forward) = match page {
            PageRequest::Forward { first, after } => (*first, *after, true),
            PageRequest::Backward { last, before } => (*last, *before, false),
        };
        if limit == 0 {
            return Ok(Page { records: vec![], has_next_page: false, has_previous_page: false });
        }
        // Walking backward reads the order reversed, then flips the rows.
        let ascending = order.ascending() == forward;
        let sort = order.column();
        let mut query = filtered(user_id, filter)?.select_only().column(Column::Id).column(Column::UserId);
        for (wanted, column) in [
            (columns.amount || matches!(sort, Column::AmountScaled), Column::AmountScaled),
            (columns.amount, Column::Currency),
            (columns.kind, Column::Kind),
            (columns.status, Column::Status),
            (columns.description, Column::Description),
            (columns.category, Column::Category),
            (columns.occurred_at || matches!(sort, Column::OccurredAt), Column::OccurredAt),
            (columns.created_at, Column::CreatedAt),
            (columns.updated_at, Column::UpdatedAt),
        ] {
            if wanted {
                query = query.column(column);
            }
        }
        if let Some(cursor) = cursor {
            query = query.filter(after_cursor(sort, &cursor, ascending)?);
        }
        let direction = if ascending { Order::Asc } else { Order::Desc };
        // One extra row tells whether another page exists.
        let statement = query
            .order_by(sort, direction.clone())
            .order_by(Column::Id, direction)
            .limit(limit + 1)
            .build(self.db.get_database_backend());
        let rows = self.db.query_all_raw(statement).await?;
        let has_more = rows.len() as u64 > limit;
        let mut records =
            rows.iter().take(limit as usize).map(|row| read_row(row, columns, sort)).collect::<AppResult<Vec<_>>>()?;
        if !forward {
            records.reverse();
        }
        Ok(Page {
            records,
            has_next_page: if forward { has_more } else { cursor.is_some() },
            has_previous_page: if forward { cursor.is_some() } else { has_more },
        })
    }

    pub async fn count(&self, user_id: Uuid, filter: &TransactionFilter) -> AppResult<u64> {
        Ok(filtered(user_id, filter)?.count(&self.db).await?)
    }
}

fn filtered(user_id: Uuid, filter: &TransactionFilter) -> AppResult<Select<transaction::Entity>> {
    let mut query = transaction::Entity::find().filter(Column::UserId.eq(user_id));
    if let Some(kind) = filter.kind {
        query = query.filter(Column::Kind.eq(kind.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(category) = filter.category.as_deref() {
        query = query.filter(Column::Category.eq(category));
    }
    if let Some(currency) = filter.currency {
        query = query.filter(Column::Currency.eq(currency.code()));
    }
    if let Some(from) = filter.from {
        query = query.filter(Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(Column::OccurredAt.lt(to));
    }
    // Bounds finer than the storage scale round toward the inside of the range.
    let scale = Decimal::from(10_i64.pow(SCALE));
    if let Some(min) = filter.min_amount {
        query = query.filter(Column::AmountScaled.gte(bound_to_scaled((min * scale).ceil(), "minAmount")?));
    }
    if let Some(max) = filter.max_amount {
        query = query.filter(Column::AmountScaled.lte(bound_to_scaled((max * scale).floor(), "maxAmount")?));
    }
    Ok(query)
}

fn bound_to_scaled(value: Decimal, field: &'static str) -> AppResult<i64> {
    i64::try_from(value).map_err(|_| AppError::bad_field(field, format!("`{field}` is out of range")))
}

/// `(sort, id) > (key, id)` (or `<`), spelled out for portability.
fn after_cursor(sort: Column, cursor: &Cursor, ascending: bool) -> AppResult<Condition> {
    let key: sea_orm::Value = match sort {
        Column::OccurredAt => OccurredAt::from_micros(cursor.key, "after")?.get().into(),
        _ => cursor.key.into(),
    };
    let (beyond_key, beyond_id) = if ascending {
        (sort.gt(key.clone()), Column::Id.gt(cursor.id))
    } else {
        (sort.lt(key.clone()), Column::Id.lt(cursor.id))
    };
    Ok(Condition::any().add(beyond_key).add(Condition::all().add(sort.eq(key)).add(beyond_id)))
}

fn read_row(row: &sea_orm::QueryResult, columns: Columns, sort: Column) -> AppResult<TransactionRecord> {
    let mut record =
        TransactionRecord { id: row.try_get("", "id")?, user_id: row.try_get("", "user_id")?, ..Default::default() };
    if columns.amount || matches!(sort, Column::AmountScaled) {
        let scaled: i64 = row.try_get("", "amount_scaled")?;
        let currency = if columns.amount {
            let code: String = row.try_get("", "currency")?;
            Currency::parse(&code)
                .map_err(|_| AppError::internal(anyhow::anyhow!("unknown currency `{code}` in database")))?
        } else {
            // Only the cursor needs the scaled key; the currency is never shown.
            Currency::USD
        };
        record.money = Some(Money::from_scaled(scaled, currency));
    }
    if columns.kind {
        record.kind = Some(kind_from_db(&row.try_get::<String>("", "kind")?)?);
    }
    if columns.status {
        record.status = Some(status_from_db(&row.try_get::<String>("", "status")?)?);
    }
    if columns.description {
        record.description = Some(row.try_get("", "description")?);
    }
    if columns.category {
        record.category = Some(row.try_get("", "category")?);
    }
    if columns.occurred_at || matches!(sort, Column::OccurredAt) {
        record.occurred_at = Some(row.try_get("", "occurred_at")?);
    }
    if columns.created_at {
        record.created_at = Some(row.try_get("", "created_at")?);
    }
    if columns.updated_at {
        record.updated_at = Some(row.try_get("", "updated_at")?);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amount_range_may_be_one_amount_but_not_reversed() {
        let (low, high) = (Decimal::new(1000, 2), Decimal::new(2500, 2));
        assert!(check_amounts(Some(low), Some(high)).is_ok());
        assert!(check_amounts(Some(low), Some(low)).is_ok());
        assert!(check_amounts(None, Some(low)).is_ok());
        let reversed = check_amounts(Some(high), Some(low)).unwrap_err();
        assert!(matches!(reversed, AppError::BadUserInput { field: Some("minAmount"), .. }));
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_order() {
        let cursor = Cursor { order: TransactionOrder::AmountAsc, key: 250_089, id: Uuid::now_v7() };
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded, TransactionOrder::AmountAsc, "after").unwrap(), cursor);
        assert!(Cursor::decode(&encoded, TransactionOrder::OccurredAtDesc, "after").is_err());
        assert!(Cursor::decode("not-a-cursor", TransactionOrder::AmountAsc, "after").is_err());
    }

    #[test]
    fn cursor_keys_are_ones_a_row_can_have() {
        let id = Uuid::now_v7();
        let raw = |tag: &str, key: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{tag}:{key}:{id}"))
        };
        // The reported crafted cursor, and its kin.
        for key in ["-8210298412800000000", "-1", "4102444800000000", "9223372036854775807", "99999999999999999999"] {
            assert!(Cursor::decode(&raw("od", key), TransactionOrder::OccurredAtDesc, "after").is_err(), "{key}");
        }
        for key in ["0", "-1", "10000000000000001"] {
            assert!(Cursor::decode(&raw("aa", key), TransactionOrder::AmountAsc, "after").is_err(), "{key}");
        }
        assert!(Cursor::decode(&raw("od", "0"), TransactionOrder::OccurredAtDesc, "after").is_ok());
        assert!(Cursor::decode(&raw("od", "4102444799999999"), TransactionOrder::OccurredAtDesc, "after").is_ok());
        assert!(Cursor::decode(&raw("aa", "10000000000000000"), TransactionOrder::AmountAsc, "after").is_ok());
        assert!(Cursor::decode(&"A".repeat(200), TransactionOrder::AmountAsc, "after").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        let order = TransactionOrder::default();
        assert!(PageRequest::from_relay(Some(101), None, None, None, order).is_err());
        assert!(PageRequest::from_relay(Some(-1), None, None, None, order).is_err());
        assert!(PageRequest::from_relay(Some(1), None, Some(1), None, order).is_err());
        assert!(matches!(
            PageRequest::from_relay(None, None, None, None, order).unwrap(),
            PageRequest::Forward { first: DEFAULT_PAGE, after: None }
        ));
    }
}
