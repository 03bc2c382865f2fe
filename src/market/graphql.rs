//! GraphQL resolvers for market data: thin wrappers over [`MarketService`].
//!
//! Every quote a request asks for (`quote`, `quotes`, aliases, `securities { quote }`) goes
//! through one DataLoader per request, so they reach the service as one batch.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use async_graphql::{
    Context, Enum, Object, Result, SimpleObject,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::{
    fundamentals_graphql::{AdjustGql, adjusted_klines},
    service::{MarketError, MarketService},
    types::{BookLevel, Interval, Kline, OrderBook, Quote, Tick, TickDirection, TradingStatus},
};
use crate::{
    error::AppError,
    graphql::{bounded, scalars::DecimalString, service},
    reference::Symbol,
};

use super::limits::{
    DEFAULT_BOOK_LEVELS, DEFAULT_KLINES, DEFAULT_TICKS, MAX_BOOK_LEVELS, MAX_KLINES, MAX_SYMBOLS, MAX_TICKS,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "KlineInterval")]
pub enum IntervalGql {
    OneMinute,
    FiveMinutes,
    FifteenMinutes,
    ThirtyMinutes,
    OneHour,
    TwoHours,
    FourHours,
    OneDay,
    OneWeek,
    OneMonth,
}

impl From<IntervalGql> for Interval {
    fn from(i: IntervalGql) -> Self {
        match i {
            IntervalGql::OneMinute => Interval::OneMinute,
            IntervalGql::FiveMinutes => Interval::FiveMinutes,
            IntervalGql::FifteenMinutes => Interval::FifteenMinutes,
            IntervalGql::ThirtyMinutes => Interval::ThirtyMinutes,
            IntervalGql::OneHour => Interval::OneHour,
            IntervalGql::TwoHours => Interval::TwoHours,
            IntervalGql::FourHours => Interval::FourHours,
            IntervalGql::OneDay => Interval::OneDay,
            IntervalGql::OneWeek => Interval::OneWeek,
            IntervalGql::OneMonth => Interval::OneMonth,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TradingStatus")]
pub enum TradingStatusGql {
    Normal,
    Suspended,
    Delisted,
    CircuitBreaker,
}

impl From<TradingStatus> for TradingStatusGql {
    fn from(s: TradingStatus) -> Self {
        match s {
            TradingStatus::Normal => Self::Normal,
            TradingStatus::Suspended => Self::Suspended,
            TradingStatus::Delisted => Self::Delisted,
            TradingStatus::CircuitBreaker => Self::CircuitBreaker,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TickDirection")]
pub enum TickDirectionGql {
    Neutral,
    Sell,
    Buy,
}

impl From<TickDirection> for TickDirectionGql {
    fn from(d: TickDirection) -> Self {
        match d {
            TickDirection::Neutral => Self::Neutral,
            TickDirection::Sell => Self::Sell,
            TickDirection::Buy => Self::Buy,
        }
    }
}

/// The latest price of an instrument. Prices are exact decimals, as strings.
pub struct QuoteObject(pub Quote);

#[Object(name = "Quote")]
impl QuoteObject {
    async fn symbol(&self) -> &str {
        self.0.symbol.as_str()
    }
    async fn last(&self) -> DecimalString {
        DecimalString(self.0.last)
    }
    async fn open(&self) -> DecimalString {
        DecimalString(self.0.open)
    }
    async fn high(&self) -> DecimalString {
        DecimalString(self.0.high)
    }
    async fn low(&self) -> DecimalString {
        DecimalString(self.0.low)
    }
    /// The previous session's close.
    async fn prev_close(&self) -> DecimalString {
        DecimalString(self.0.prev_close)
    }
    /// `last - prevClose`.
    async fn change(&self) -> DecimalString {
        DecimalString(self.0.change())
    }
    /// Percent change against `prevClose`, 4 decimal places; null without a previous close.
    async fn change_percent(&self) -> Option<DecimalString> {
        self.0.change_percent().map(DecimalString)
    }
    async fn volume(&self) -> DecimalString {
        DecimalString(self.0.volume)
    }
    async fn turnover(&self) -> DecimalString {
        DecimalString(self.0.turnover)
    }
    /// When the source last saw this price (UTC).
    async fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
    async fn trading_status(&self) -> TradingStatusGql {
        self.0.trading_status.into()
    }
    /// The source that produced it: `simulated` or `itick`.
    async fn source(&self) -> &'static str {
        self.0.source
    }
    /// True when the source is unavailable and this is the last known value.
    async fn stale(&self) -> bool {
        self.0.stale
    }
}

/// One candle; `time` is its start (UTC).
#[derive(SimpleObject, Clone)]
#[graphql(name = "Kline")]
pub struct KlineObject {
    time: DateTime<Utc>,
    open: DecimalString,
    high: DecimalString,
    low: DecimalString,
    close: DecimalString,
    volume: DecimalString,
    turnover: DecimalString,
    /// True only on a live subscription that heard nothing newer for `FINQL_LIVE_STALE_MS`
    /// (the upstream may be down): this is the last known bar, sent again.
    stale: bool,
}

impl KlineObject {
    /// The same bar, marked as the last known one.
    pub fn into_stale(self) -> Self {
        Self { stale: true, ..self }
    }
}

impl From<&Kline> for KlineObject {
    fn from(k: &Kline) -> Self {
        Self {
            time: k.time,
            open: DecimalString(k.open),
            high: DecimalString(k.high),
            low: DecimalString(k.low),
            close: DecimalString(k.close),
            volume: DecimalString(k.volume),
            turnover: DecimalString(k.turnover),
            stale: false,
        }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "BookLevel")]
pub struct BookLevelObject {
    price: DecimalString,
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
#[graphql(name = "OrderBook")]
pub struct OrderBookObject {
    symbol: String,
    bids: Vec<BookLevelObject>,
    asks: Vec<BookLevelObject>,
    timestamp: DateTime<Utc>,
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
            timestamp: b.timestamp,
            stale: false,
        }
    }
}

/// One trade.
#[derive(SimpleObject)]
#[graphql(name = "Tick")]
pub struct TickObject {
    symbol: String,
    price: DecimalString,
    volume: DecimalString,
    timestamp: DateTime<Utc>,
    direction: Option<TickDirectionGql>,
}

impl From<Tick> for TickObject {
    fn from(t: Tick) -> Self {
        Self {
            symbol: t.symbol.to_string(),
            price: DecimalString(t.price),
            volume: DecimalString(t.volume),
            timestamp: t.timestamp,
            direction: t.direction.map(Into::into),
        }
    }
}

/// Attaches this domain's per-request DataLoaders to a GraphQL request: the quote loader
/// (cached per request: a connection prefetches its nodes' quotes in one batch, and each node's
/// `quote` then reads them from there) and the order-book and latest-kline loaders.
pub fn attach_loaders(request: async_graphql::Request, market: &MarketService) -> async_graphql::Request {
    let quotes = DataLoader::with_cache(QuoteLoader(market.clone()), tokio::spawn, HashMapCache::default());
    request.data(quotes).data(MarketLoaders::new(market.clone()))
}

/// Batches the quotes of one request.
pub struct QuoteLoader(MarketService);

/// The market loaders cannot fail as a batch: the service answers every key, each with its own
/// outcome (a quote or that symbol's error, which keeps its code), so `Value` carries the
/// error and `Error` is `Infallible`.
impl Loader<Symbol> for QuoteLoader {
    type Value = Result<Quote, MarketError>;
    type Error = Infallible;

    async fn load(&self, keys: &[Symbol]) -> std::result::Result<HashMap<Symbol, Self::Value>, Self::Error> {
        Ok(self.0.quotes(keys).await)
    }
}

/// The request's order-book and latest-kline loaders, made on first use (most requests need
/// neither), so that `securities { orderBook }` or aliases of `klines` reach the service as one
/// batch per (levels) and per (interval, limit).
pub struct MarketLoaders {
    market: MarketService,
    books: OnceLock<DataLoader<BookLoader>>,
    klines: OnceLock<DataLoader<LatestKlineLoader>>,
}

/// How long the book and latest-kline loaders collect keys before one batch goes upstream. The
/// default 1 ms closed before all 25 nodes of a `securities` page had asked on a loaded 2-core
/// machine (two upstream calls for one page in 6 of 15 runs); an upstream call costs far more
/// than the wait. (Prefetching a page's books and bars from the service, as `securities` does
/// for quotes, would need no window at all.)
const COLLECT: std::time::Duration = std::time::Duration::from_millis(5);

impl MarketLoaders {
    pub fn new(market: MarketService) -> Self {
        Self { market, books: OnceLock::new(), klines: OnceLock::new() }
    }

    fn books(&self) -> &DataLoader<BookLoader> {
        self.books.get_or_init(|| DataLoader::new(BookLoader(self.market.clone()), tokio::spawn).delay(COLLECT))
    }

    fn klines(&self) -> &DataLoader<LatestKlineLoader> {
        self.klines.get_or_init(|| DataLoader::new(LatestKlineLoader(self.market.clone()), tokio::spawn).delay(COLLECT))
    }
}

pub struct BookLoader(MarketService);

impl Loader<(Symbol, usize)> for BookLoader {
    type Value = Result<OrderBook, MarketError>;
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

pub struct LatestKlineLoader(MarketService);

type LatestKey = (Symbol, Interval, usize);

impl Loader<LatestKey> for LatestKlineLoader {
    type Value = Result<Arc<Vec<Kline>>, MarketError>;
    type Error = Infallible;

    async fn load(&self, keys: &[LatestKey]) -> std::result::Result<HashMap<LatestKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(Interval, usize), Vec<Symbol>> = HashMap::new();
        for (symbol, interval, limit) in keys {
            groups.entry((*interval, *limit)).or_default().push(symbol.clone());
        }
        let answers = join_all(
            groups.iter().map(|((interval, limit), symbols)| self.0.latest_klines(symbols, *interval, *limit)),
        )
        .await;
        Ok(groups
            .keys()
            .zip(answers)
            .flat_map(|(&(interval, limit), series)| {
                series.into_iter().map(move |(symbol, bars)| ((symbol, interval, limit), bars))
            })
            .collect())
    }
}

/// An order book through the request's loader.
pub async fn load_order_book(ctx: &Context<'_>, symbol: Symbol, levels: usize) -> Result<OrderBookObject> {
    let Ok(outcome) = service::<MarketLoaders>(ctx)?.books().load_one((symbol.clone(), levels)).await;
    let book = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("order book for {symbol} missing")))?;
    Ok(book.map_err(AppError::from)?.into())
}

/// Klines for `Query.klines` and `Security.klines`: the latest window through the request's
/// loader (batched across instruments), any other window directly.
pub async fn load_klines(
    ctx: &Context<'_>,
    symbol: Symbol,
    interval: Interval,
    limit: usize,
    before: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
) -> Result<Vec<KlineObject>> {
    if before.is_some() || after.is_some() {
        return Ok(klines_window(service::<MarketService>(ctx)?, &symbol, interval, limit, before, after).await?);
    }
    let Ok(outcome) = service::<MarketLoaders>(ctx)?.klines().load_one((symbol.clone(), interval, limit)).await;
    let bars = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("klines for {symbol} missing")))?;
    Ok(bars.map_err(AppError::from)?.iter().map(KlineObject::from).collect())
}

/// A quote through the request's DataLoader.
pub async fn load_quote(ctx: &Context<'_>, symbol: Symbol) -> Result<QuoteObject> {
    let loader = service::<DataLoader<QuoteLoader, HashMapCache>>(ctx)?;
    let Ok(outcome) = loader.load_one(symbol.clone()).await;
    let quote = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch")))?;
    Ok(QuoteObject(quote.map_err(AppError::from)?))
}

/// Loads many quotes in one batch into the request's loader cache, for resolvers to read.
pub async fn prefetch_quotes(ctx: &Context<'_>, symbols: Vec<Symbol>) -> Result<()> {
    let loader = service::<DataLoader<QuoteLoader, HashMapCache>>(ctx)?;
    // Straight to the service (no collection delay: the whole page is in hand), then into the
    // loader's cache, where each node's `quote` finds its own.
    let found = service::<MarketService>(ctx)?.quotes(&symbols).await;
    loader.feed_many(found).await;
    Ok(())
}

pub fn parse_symbol(raw: &str) -> Result<Symbol, AppError> {
    Symbol::parse(raw)
}

/// Klines with the `before`/`after` window applied. `before` pages back in time; `after`
/// returns the bars after a time (oldest first, up to `limit`).
pub async fn klines_window(
    market: &MarketService,
    symbol: &Symbol,
    interval: Interval,
    limit: usize,
    before: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
) -> Result<Vec<KlineObject>, AppError> {
    let bars = klines_bars(market, symbol, interval, limit, before, after).await?;
    Ok(bars.iter().map(KlineObject::from).collect())
}

/// The bars of `klines_window`, as domain values.
pub async fn klines_bars(
    market: &MarketService,
    symbol: &Symbol,
    interval: Interval,
    limit: usize,
    before: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
) -> Result<Vec<Kline>, AppError> {
    if let (Some(before), Some(after)) = (before, after)
        && after >= before
    {
        return Err(AppError::bad_field("after", "`after` must be earlier than `before`"));
    }
    let end = match (before, after) {
        (Some(before), _) => Some(before),
        (None, Some(after)) => {
            // The window after `after`: `limit` bars from it, capped at now.
            let mut end = interval.bar_start(after);
            for _ in 0..=limit {
                end = interval.next_start(end);
            }
            Some(end).filter(|e| *e <= Utc::now())
        }
        (None, None) => None,
    };
    let bars = market.klines(symbol, interval, end, limit).await?;
    Ok(bars
        .iter()
        .filter(|bar| after.is_none_or(|after| bar.time > after))
        .filter(|bar| before.is_none_or(|before| bar.time < before))
        .take(limit)
        .cloned()
        .collect())
}

#[derive(Default)]
pub struct MarketQuery;

#[Object]
impl MarketQuery {
    /// The latest quote of an instrument.
    async fn quote(&self, ctx: &Context<'_>, symbol: String) -> Result<QuoteObject> {
        load_quote(ctx, parse_symbol(&symbol)?).await
    }

    /// Quotes of up to 500 instruments, in the order asked. Fails as a whole, naming the symbol,
    /// when one is malformed or unknown (use aliases of `quote` for per-symbol errors).
    async fn quotes(&self, ctx: &Context<'_>, symbols: Vec<String>) -> Result<Vec<QuoteObject>> {
        if symbols.len() > MAX_SYMBOLS {
            return Err(AppError::bad_field("symbols", format!("at most {MAX_SYMBOLS} symbols per request")).into());
        }
        let parsed = symbols.iter().map(|s| parse_symbol(s)).collect::<Result<Vec<_>, _>>()?;
        // Asked once each (`AAPL.US` twice, or `700.HK` and `0700.HK`, are one instrument),
        // answered once per position.
        let mut distinct = parsed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // All the symbols are in hand: straight to the service (which batches them per region
        // and shares in-flight fetches across requests), without the loader's collection delay.
        let found = service::<MarketService>(ctx)?.quotes(&distinct).await;
        parsed
            .iter()
            .map(|symbol| {
                let outcome = found
                    .get(symbol)
                    .cloned()
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch")))?;
                Ok(QuoteObject(outcome.map_err(AppError::from)?))
            })
            .collect::<Result<Vec<_>, AppError>>()
            .map_err(Into::into)
    }

    /// Candles, oldest first: `limit` (default 100, at most 1000) bars before `before` (default
    /// now, including the bar in progress), or after `after`. Prices are as traded unless
    /// `adjust` says otherwise (see `KlineAdjust`).
    #[allow(clippy::too_many_arguments)]
    async fn klines(
        &self,
        ctx: &Context<'_>,
        symbol: String,
        interval: IntervalGql,
        limit: Option<i32>,
        before: Option<DateTime<Utc>>,
        after: Option<DateTime<Utc>>,
        adjust: Option<AdjustGql>,
    ) -> Result<Vec<KlineObject>> {
        let limit = bounded(limit.unwrap_or(DEFAULT_KLINES), 1, MAX_KLINES, "limit")?;
        let symbol = parse_symbol(&symbol)?;
        adjusted_klines(ctx, &symbol, interval.into(), limit, before, after, adjust).await
    }

    /// The order book, `levels` deep (default 10, at most 50).
    async fn order_book(&self, ctx: &Context<'_>, symbol: String, levels: Option<i32>) -> Result<OrderBookObject> {
        let levels = bounded(levels.unwrap_or(DEFAULT_BOOK_LEVELS), 1, MAX_BOOK_LEVELS, "levels")?;
        load_order_book(ctx, parse_symbol(&symbol)?, levels).await
    }

    /// Recent trades, newest last (default 20, at most 1000).
    async fn ticks(&self, ctx: &Context<'_>, symbol: String, limit: Option<i32>) -> Result<Vec<TickObject>> {
        let limit = bounded(limit.unwrap_or(DEFAULT_TICKS), 1, MAX_TICKS, "limit")?;
        let symbol = parse_symbol(&symbol)?;
        let ticks = service::<MarketService>(ctx)?.ticks(&symbol, limit).await.map_err(AppError::from)?;
        Ok(ticks.into_iter().map(Into::into).collect())
    }
}
