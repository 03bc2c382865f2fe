//! `orderBook` (also `Security.orderBook`), its types, and the request's order-book DataLoader.

use std::{collections::HashMap, convert::Infallible};

use async_graphql::{Context, Object, Result, SimpleObject, dataloader::Loader};
use futures::future::join_all;

use super::{MarketLoaders, grant};
use crate::{
    error::{AppError, AppResult},
    graphql::{
        bounded,
        scalars::{DecimalString, Timestamp},
        service,
    },
    market::{
        limits::{DEFAULT_BOOK_LEVELS, MAX_BOOK_LEVELS},
        service::MarketService,
        types::{BookLevel, OrderBook},
    },
    reference::Symbol,
};

/// One price level of one side of an order book.
#[derive(SimpleObject, Clone)]
#[graphql(name = "BookLevel")]
pub struct BookLevelObject {
    /// The level's price.
    price: DecimalString,
    /// Units offered (asks) or wanted (bids) at this price.
    volume: DecimalString,
    /// Orders at this price, when the source reports it.
    orders: Option<i64>,
}

impl From<BookLevel> for BookLevelObject {
    fn from(l: BookLevel) -> Self {
        Self { price: DecimalString(l.price), volume: DecimalString(l.volume), orders: l.orders }
    }
}

/// Bids best (highest) first; asks best (lowest) first.
#[derive(SimpleObject, Clone)]
#[graphql(name = "OrderBook", cache_control(max_age = 2))]
pub struct OrderBookObject {
    /// The instrument's canonical symbol.
    symbol: String,
    /// Buy orders, highest price first.
    bids: Vec<BookLevelObject>,
    /// Sell orders, lowest price first.
    asks: Vec<BookLevelObject>,
    /// When the source took this snapshot of the book.
    timestamp: Timestamp,
    /// True only on a live subscription that heard nothing newer for `FINQL_LIVE_STALE_MS`
    /// (the upstream may be down): this is the last known book, sent again.
    stale: bool,
}

impl OrderBookObject {
    /// The same book, marked as the last known one.
    pub fn into_stale(self) -> Self {
        Self { stale: true, ..self }
    }
}

impl From<OrderBook> for OrderBookObject {
    fn from(b: OrderBook) -> Self {
        Self {
            symbol: b.symbol.to_string(),
            bids: b.bids.into_iter().map(Into::into).collect(),
            asks: b.asks.into_iter().map(Into::into).collect(),
            timestamp: Timestamp(b.timestamp),
            stale: false,
        }
    }
}

/// Batches order books per depth. Infallible as a batch, like the quote loader: each key
/// carries its own outcome.
pub struct BookLoader(pub(super) MarketService);

impl Loader<(Symbol, usize)> for BookLoader {
    type Value = AppResult<OrderBook>;
    type Error = Infallible;

    async fn load(
        &self,
        keys: &[(Symbol, usize)],
    ) -> std::result::Result<HashMap<(Symbol, usize), Self::Value>, Self::Error> {
        let mut by_levels: HashMap<usize, Vec<Symbol>> = HashMap::new();
        for (symbol, levels) in keys {
            by_levels.entry(*levels).or_default().push(symbol.clone());
        }
        let answers = join_all(by_levels.iter().map(|(levels, symbols)| self.0.order_books(symbols, *levels))).await;
        Ok(by_levels
            .keys()
            .zip(answers)
            .flat_map(|(levels, books)| books.into_iter().map(move |(symbol, book)| ((symbol, *levels), book)))
            .collect())
    }
}

/// `levels`, checked against `market::limits` (default 10, at most 50).
pub fn book_levels(levels: Option<i32>) -> Result<usize, AppError> {
    bounded(levels.unwrap_or(DEFAULT_BOOK_LEVELS), 1, MAX_BOOK_LEVELS, "levels")
}

/// An order book through the request's loader, when the caller's plan has its market in real
/// time (a delayed market has none: `ENTITLEMENT_REQUIRED`).
pub async fn load_order_book(ctx: &Context<'_>, symbol: Symbol, levels: usize) -> Result<OrderBookObject> {
    grant(ctx, &symbol)?.require_order_book(&symbol)?;
    let Ok(outcome) = service::<MarketLoaders>(ctx)?.books().load_one((symbol.clone(), levels)).await;
    let book = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("order book for {symbol} missing")))?;
    Ok(book?.into())
}

#[derive(Default)]
pub struct BooksQuery;

#[Object]
impl BooksQuery {
    /// The order book, `levels` deep (default 10, at most 50). An index has none: asking for
    /// one is `BAD_USER_INPUT`, answered without calling the market source. Real time only: a
    /// market the caller's plan has delayed is `FORBIDDEN` (`ENTITLEMENT_REQUIRED`). Null, with
    /// its error beside it, when this book cannot be had (so aliases beside it still answer).
    #[graphql(cache_control(max_age = 2))]
    async fn order_book(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(desc = "Price levels per side, 1 to 50 (10 when omitted).")] levels: Option<i32>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES` and the caches. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources`; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<super::quotes::QuoteSource>,
    ) -> Result<Option<OrderBookObject>> {
        let levels = book_levels(levels)?;
        order_book_from(ctx, Symbol::parse(&symbol)?, levels, source).await.map(Some)
    }
}

/// `symbol`'s order book, `levels` deep: from `source` alone when pinned (`market::pinned`),
/// else as `load_order_book` has it (`Query.orderBook`, `Security.orderBook`).
pub async fn order_book_from(
    ctx: &Context<'_>,
    symbol: Symbol,
    levels: usize,
    source: Option<super::quotes::QuoteSource>,
) -> Result<OrderBookObject> {
    let Some(source) = source else { return load_order_book(ctx, symbol, levels).await };
    super::pinned_grant(ctx, &symbol, source.name())?.require_order_book(&symbol)?;
    let book =
        service::<crate::market::service::MarketService>(ctx)?.order_book_from(source.name(), &symbol, levels).await?;
    crate::graphql::provenance::SourcesUsed::record(ctx, [source.name()]);
    Ok(book.into())
}
