//! The instrument catalog: look-up by symbol, and search with keyset pagination by symbol.
//!
//! Catalog pages and counts are kept in memory for a minute (`PAGE_TTL`): the catalog changes
//! only with a migration, and reading a 100-row page from the database was most of a
//! `securities(first: 100)` request's CPU (SQLite's statement, sqlx's worker and its locks,
//! decoding 101 rows of 15 columns), at about 860 requests a second on two cores.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use chrono::NaiveDate;
use entity::security::{self, Column};
use moka::sync::Cache;
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::LikeExpr,
};

use super::{currency::Currency, symbol::Symbol};
use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetClass {
    Stock,
    Fund,
    Forex,
    Index,
    Crypto,
    Future,
}

impl AssetClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stock => "STOCK",
            Self::Fund => "FUND",
            Self::Forex => "FOREX",
            Self::Index => "INDEX",
            Self::Crypto => "CRYPTO",
            Self::Future => "FUTURE",
        }
    }

    fn from_db(s: &str) -> AppResult<Self> {
        Ok(match s {
            "STOCK" => Self::Stock,
            "FUND" => Self::Fund,
            "FOREX" => Self::Forex,
            "INDEX" => Self::Index,
            "CRYPTO" => Self::Crypto,
            "FUTURE" => Self::Future,
            other => return Err(AppError::internal(anyhow::anyhow!("unknown asset class `{other}` in catalog"))),
        })
    }
}

/// An instrument of the catalog. Its symbol and currency are parsed once, when the row is read,
/// so whatever uses them (the market API's resolvers, a page's quote prefetch) cannot meet a
/// malformed one.
#[derive(Clone, Debug)]
pub struct Security {
    pub symbol: Symbol,
    pub asset_class: AssetClass,
    pub name: String,
    pub region: String,
    pub exchange_mic: Option<String>,
    /// The currency prices are quoted in: ISO 4217, or a market code beside it (`CNH`, `USDT`;
    /// see [`Currency::parse_quote`]). A forex pair's is its quote (second) currency.
    pub currency: Currency,
    /// Units per lot, exact: a board lot of shares, contracts for futures, a standard lot
    /// (100,000) for forex, a crypto pair's step size (BTCUSDT 0.00001).
    pub lot_size: Decimal,
    pub sector: Option<String>,
    pub industry: Option<String>,
    pub upstream_region: String,
    pub upstream_code: String,
    /// The first trading day, when the catalog knows it.
    pub listed_at: Option<NaiveDate>,
}

impl TryFrom<security::Model> for Security {
    type Error = AppError;
    fn try_from(m: security::Model) -> AppResult<Self> {
        // The catalog is written by finql's migrations: a row that does not parse is a bug in
        // them, not the client's fault.
        let corrupt = |what: &str, err: AppError| {
            AppError::internal(anyhow::anyhow!("catalog row `{}`: {what}: {}", m.symbol, err.message()))
        };
        Ok(Self {
            asset_class: AssetClass::from_db(&m.asset_class)?,
            symbol: Symbol::parse(&m.symbol).map_err(|err| corrupt("symbol", err))?,
            currency: Currency::parse_quote(&m.currency).map_err(|err| corrupt("currency", err))?,
            lot_size: m.lot_size.parse::<Decimal>().map_err(|_| {
                AppError::internal(anyhow::anyhow!("catalog row `{}`: lot size `{}`", m.symbol, m.lot_size))
            })?,
            name: m.name,
            region: m.region,
            exchange_mic: m.exchange_mic,
            sector: m.sector,
            industry: m.industry,
            upstream_region: m.upstream_region,
            upstream_code: m.upstream_code,
            listed_at: m.listed_at,
        })
    }
}

/// Parsed: `search` by [`parse_search`]; `region` is a region code (`US`, `GLOBAL`, …), from
/// the API's `Region` enum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SecurityFilter {
    /// Matches symbol or name, case-insensitively, anywhere in them.
    pub search: Option<String>,
    pub region: Option<String>,
    pub asset_class: Option<AssetClass>,
}

pub struct SecurityPage {
    pub securities: Vec<Security>,
    pub has_next_page: bool,
}

/// The most securities one page may hold.
const MAX_PAGE: i32 = 100;
/// Securities per page when `first` is not given.
const DEFAULT_PAGE: i32 = 20;

/// The size of a catalog page: `first`, 0 to `MAX_PAGE` (default `DEFAULT_PAGE`).
pub fn page_size(first: Option<i32>) -> AppResult<u64> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(AppError::bad_field("first", format!("`first` must be between 0 and {MAX_PAGE}")));
    }
    Ok(first as u64)
}

/// The longest search string accepted: longer than any name in the catalog.
const MAX_SEARCH: usize = 100;
/// The longest cursor accepted: ours encode `v1:sec:` and a symbol of at most 27 characters.
const MAX_CURSOR_LEN: usize = 128;

/// A catalog search string: trimmed, at most `MAX_SEARCH` characters, no control characters
/// (PostgreSQL cannot even receive a NUL byte). `None` when blank: no search.
pub fn parse_search(raw: &str) -> AppResult<Option<String>> {
    let search = raw.trim();
    if search.is_empty() {
        return Ok(None);
    }
    if search.len() > MAX_SEARCH * 4 || search.chars().count() > MAX_SEARCH {
        return Err(AppError::bad_field("search", format!("search must be at most {MAX_SEARCH} characters")));
    }
    if search.chars().any(char::is_control) {
        return Err(AppError::bad_field("search", "search must not contain control characters"));
    }
    Ok(Some(search.to_owned()))
}

/// How long a catalog page or count is served from memory: a catalog change made by a
/// migration on another replica reaches this one's searches within it.
pub const PAGE_TTL: Duration = Duration::from_secs(60);
/// Securities held in kept pages at most (about 300 bytes each): search strings are the
/// caller's, so the key space is theirs; the least used pages go first.
const MAX_KEPT_SECURITIES: u64 = 20_000;

/// A page as asked for: its filter, size and cursor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PageKey {
    filter: SecurityFilter,
    first: u64,
    after: Option<String>,
}

#[derive(Clone)]
pub struct ReferenceService {
    db: DatabaseConnection,
    pages: Cache<PageKey, Arc<SecurityPage>>,
    counts: Cache<SecurityFilter, u64>,
}

impl ReferenceService {
    pub fn new(db: DatabaseConnection) -> Self {
        let pages = Cache::builder()
            .max_capacity(MAX_KEPT_SECURITIES)
            .weigher(|_: &PageKey, page: &Arc<SecurityPage>| {
                u32::try_from(page.securities.len()).unwrap_or(u32::MAX).max(1)
            })
            .time_to_live(PAGE_TTL)
            .build();
        let counts = Cache::builder().max_capacity(10_000).time_to_live(PAGE_TTL).build();
        Self { db, pages, counts }
    }

    /// The instrument, or NOT_FOUND naming the symbol.
    #[tracing::instrument(name = "reference.security", skip_all)]
    pub async fn security(&self, symbol: &Symbol) -> AppResult<Security> {
        security::Entity::find_by_id(symbol.as_str())
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no instrument with symbol `{symbol}`")))?
            .try_into()
    }

    /// The whole catalog, ordered by symbol (what a reconciliation walks).
    #[tracing::instrument(name = "reference.all", skip_all)]
    pub async fn all(&self) -> AppResult<Vec<Security>> {
        security::Entity::find()
            .order_by_asc(Column::Symbol)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Security::try_from)
            .collect()
    }

    /// Every symbol in the catalog (what a dataset load checks its rows against).
    #[tracing::instrument(name = "reference.symbols", skip_all)]
    pub async fn symbols(&self) -> AppResult<Vec<String>> {
        Ok(security::Entity::find().select_only().column(Column::Symbol).into_tuple().all(&self.db).await?)
    }

    /// Securities ordered by symbol, `first` of them after the `after` cursor.
    #[tracing::instrument(name = "reference.search", skip_all, fields(first))]
    pub async fn search(
        &self,
        filter: &SecurityFilter,
        first: u64,
        after: Option<&str>,
    ) -> AppResult<Arc<SecurityPage>> {
        let key = PageKey { filter: filter.clone(), first, after: after.map(str::to_owned) };
        if let Some(page) = self.pages.get(&key) {
            return Ok(page);
        }
        let page = Arc::new(self.read_page(filter, first, after).await?);
        self.pages.insert(key, page.clone());
        Ok(page)
    }

    async fn read_page(&self, filter: &SecurityFilter, first: u64, after: Option<&str>) -> AppResult<SecurityPage> {
        let mut query = filtered(filter)?;
        if let Some(after) = after {
            query = query.filter(Column::Symbol.gt(decode_cursor(after)?));
        }
        let rows = query.order_by_asc(Column::Symbol).limit(first + 1).all(&self.db).await?;
        let has_next_page = rows.len() as u64 > first;
        let securities = rows.into_iter().take(first as usize).map(Security::try_from).collect::<AppResult<_>>()?;
        Ok(SecurityPage { securities, has_next_page })
    }

    #[tracing::instrument(name = "reference.count", skip_all)]
    pub async fn count(&self, filter: &SecurityFilter) -> AppResult<u64> {
        if let Some(count) = self.counts.get(filter) {
            return Ok(count);
        }
        let count = filtered(filter)?.count(&self.db).await?;
        self.counts.insert(filter.clone(), count);
        Ok(count)
    }
}

fn filtered(filter: &SecurityFilter) -> AppResult<Select<security::Entity>> {
    let mut query = security::Entity::find();
    if let Some(search) = filter.search.as_deref() {
        // `search_text` is stored lower-cased; LIKE wildcards in the input are literal.
        let escaped = search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        query = query.filter(Column::SearchText.like(LikeExpr::new(format!("%{escaped}%")).escape('\\')));
    }
    if let Some(region) = &filter.region {
        query = query.filter(Column::Region.eq(region.as_str()));
    }
    if let Some(asset_class) = filter.asset_class {
        query = query.filter(Column::AssetClass.eq(asset_class.as_str()));
    }
    Ok(query)
}

pub fn encode_cursor(symbol: &Symbol) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:sec:{symbol}"))
}

/// The symbol a cursor points after. Cursors hold catalog symbols, which are canonical: any
/// other content (a NUL byte, a megabyte) was made by hand.
fn decode_cursor(raw: &str) -> AppResult<String> {
    let invalid = || AppError::bad_field("after", "not a valid cursor; pass a cursor from this connection");
    if raw.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("v1:sec:").and_then(|symbol| Symbol::parse(symbol).ok()))
        .map(|symbol| symbol.as_str().to_owned())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_0_to_100_securities_20_by_default() {
        assert_eq!(page_size(None).unwrap(), 20);
        assert_eq!(page_size(Some(0)).unwrap(), 0);
        assert_eq!(page_size(Some(100)).unwrap(), 100);
        for bad in [-1, 101, i32::MAX] {
            let refused = page_size(Some(bad)).unwrap_err();
            assert!(matches!(refused, AppError::BadUserInput { field: Some("first"), .. }), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_through_the_symbol() {
        let symbol = Symbol::parse("AAPL.US").unwrap();
        assert_eq!(decode_cursor(&encode_cursor(&symbol)).unwrap(), "AAPL.US");
        assert!(decode_cursor("bm90LWEtY3Vyc29y").is_err());
    }
}
