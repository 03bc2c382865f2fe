//! `quote` and `quotes`, the `Quote` type, and the request's quote DataLoader.
//!
//! Every quote a request asks for (`quote`, `quotes`, aliases, `securities { quote }`) goes
//! through one DataLoader per request, so they reach the service as one batch.

use std::{collections::HashMap, convert::Infallible};

use async_graphql::{
    Context, Enum, Object, Result,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use chrono::{DateTime, Utc};

use crate::{
    error::{AppError, AppResult},
    graphql::{scalars::DecimalString, service},
    market::{
        limits::MAX_SYMBOLS,
        service::MarketService,
        types::{Quote, TradingStatus},
    },
    reference::Symbol,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TradingStatus", remote = "TradingStatus")]
pub enum TradingStatusGql {
    Normal,
    Suspended,
    Delisted,
    CircuitBreaker,
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
    /// Percent change against `prevClose`: always 4 decimal places, rounded once, half away
    /// from zero (`0.00005` is `0.0001`); null without a previous close.
    async fn change_percent(&self) -> Option<DecimalString> {
        self.0.change_percent().map(DecimalString)
    }
    /// Units traded in the session; null where nothing trades (indices).
    async fn volume(&self) -> Option<DecimalString> {
        self.0.volume.map(DecimalString)
    }
    /// Money traded in the session, in the quote currency; null where nothing trades
    /// (indices).
    async fn turnover(&self) -> Option<DecimalString> {
        self.0.turnover.map(DecimalString)
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

/// Batches the quotes of one request. It cannot fail as a batch: the service answers every key
/// with its own outcome (a quote, or that symbol's error, which keeps its code), so `Value`
/// carries the error and `Error` is `Infallible`.
pub struct QuoteLoader(pub(super) MarketService);

impl Loader<Symbol> for QuoteLoader {
    type Value = AppResult<Quote>;
    type Error = Infallible;

    async fn load(&self, keys: &[Symbol]) -> std::result::Result<HashMap<Symbol, Self::Value>, Self::Error> {
        Ok(self.0.quotes(keys).await)
    }
}

/// The request's quote loader, cached per request: a connection prefetches its nodes' quotes in
/// one batch, and each node's `quote` then reads them from here.
pub(super) type Quotes = DataLoader<QuoteLoader, HashMapCache>;

/// A quote through the request's DataLoader.
pub async fn load_quote(ctx: &Context<'_>, symbol: Symbol) -> Result<QuoteObject> {
    let Ok(outcome) = service::<Quotes>(ctx)?.load_one(symbol.clone()).await;
    let quote = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch")))?;
    Ok(QuoteObject(quote?))
}

/// Loads many quotes in one batch into the request's loader cache, for resolvers to read.
pub async fn prefetch_quotes(ctx: &Context<'_>, symbols: Vec<Symbol>) -> Result<()> {
    let loader = service::<Quotes>(ctx)?;
    // Straight to the service (no collection delay: the whole page is in hand), then into the
    // loader's cache, where each node's `quote` finds its own.
    let found = service::<MarketService>(ctx)?.quotes(&symbols).await;
    loader.feed_many(found).await;
    Ok(())
}

#[derive(Default)]
pub struct QuotesQuery;

#[Object]
impl QuotesQuery {
    /// The latest quote of an instrument.
    async fn quote(&self, ctx: &Context<'_>, symbol: String) -> Result<QuoteObject> {
        load_quote(ctx, Symbol::parse(&symbol)?).await
    }

    /// Quotes of up to 500 instruments, in the order asked. Fails as a whole, naming the symbol,
    /// when one is malformed or unknown (use aliases of `quote` for per-symbol errors).
    async fn quotes(&self, ctx: &Context<'_>, symbols: Vec<String>) -> Result<Vec<QuoteObject>> {
        if symbols.len() > MAX_SYMBOLS {
            return Err(AppError::bad_field("symbols", format!("at most {MAX_SYMBOLS} symbols per request")).into());
        }
        let parsed = symbols.iter().map(|s| Symbol::parse(s)).collect::<Result<Vec<_>, _>>()?;
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
                Ok(QuoteObject(outcome?))
            })
            .collect::<Result<Vec<_>, AppError>>()
            .map_err(Into::into)
    }
}
