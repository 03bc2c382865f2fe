//! `quote` and `quotes`, the `Quote` type, and the request's quote DataLoader.
//!
//! Every quote a request asks for (`quote`, `quotes`, aliases, `securities { quote }`) goes
//! through one DataLoader per request, so they reach the service as one batch. Each symbol is
//! first checked against the caller's plan (`entitlements`): a market outside it is that
//! symbol's `ENTITLEMENT_REQUIRED`, and a delayed market's quote is the one as of the plan's
//! delay (`MarketService::quote_as_of`), marked `delayed`.

use std::{collections::HashMap, convert::Infallible};

use async_graphql::{
    Context, Enum, ID, Object, Result, SimpleObject,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use futures::future::join_all;

use super::grant;
use crate::{
    error::{AppError, AppResult},
    graphql::{
        RequestContext,
        global_id::GlobalId,
        provenance::SourcesUsed,
        scalars::{DecimalString, Timestamp},
        service,
    },
    identity::Scope,
    market::{
        limits::MAX_SYMBOLS,
        service::MarketService,
        types::{Quote, TradingStatus},
    },
    reference::Symbol,
};

/// Whether an instrument is trading normally, as its source reports.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TradingStatus", remote = "TradingStatus")]
pub enum TradingStatusGql {
    /// Trading normally (or would be, in a session).
    Normal,
    /// Halted by the exchange or regulator; the price is the last before the halt.
    Suspended,
    /// No longer listed; the price is the last it traded at.
    Delisted,
    /// Paused by a market-wide or instrument circuit breaker.
    CircuitBreaker,
}

/// The market-data sources finql has (`FINQL_MARKET_SOURCE`, `FINQL_ROUTES`): which one
/// produced a quote, a bar or a trade.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "QuoteSource")]
pub enum QuoteSource {
    /// The iTick API (real market data).
    Itick,
    /// The Polygon.io (Massive) API (real market data; US equities, forex, crypto, indices).
    Polygon,
    /// finql's simulated market: deterministic prices, not real ones.
    Simulated,
}

impl QuoteSource {
    /// The source's short name (`MarketSource::name`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Itick => "itick",
            Self::Polygon => "polygon",
            Self::Simulated => "simulated",
        }
    }

    /// The enum value of a source's short name (`MarketSource::name`). Every source finql has
    /// is here: another name is a bug, reported as one rather than shown to a client.
    pub(super) fn of(name: &str) -> Result<Self, AppError> {
        match name {
            "itick" => Ok(Self::Itick),
            "polygon" => Ok(Self::Polygon),
            "simulated" => Ok(Self::Simulated),
            other => Err(AppError::internal(anyhow::anyhow!("a quote from an unknown source `{other}`"))),
        }
    }
}

/// The latest price of an instrument. Prices are exact decimals, as strings.
/// Whether a value passed the T+0 cross-source check.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DataQuality {
    /// No other source was found to disagree (most values are not sampled).
    Ok,
    /// Another source's value differs beyond `FINQL_DIVERGENCE_BPS`.
    Suspect,
}

/// Another source's view of a `SUSPECT` value.
#[derive(SimpleObject, Clone)]
pub struct CrossCheck {
    /// The other source (`polygon`, `itick`, `simulated`).
    pub source: String,
    /// Its value: a quote's last price, a bar's close.
    pub value: DecimalString,
    /// How far apart, in basis points of the served value (for a bar, the largest distance
    /// among open, high, low and close).
    pub bps: DecimalString,
}

pub struct QuoteObject {
    quote: Quote,
    delayed: bool,
}

impl QuoteObject {
    /// A quote as it is now.
    pub fn realtime(quote: Quote) -> Self {
        Self { quote, delayed: false }
    }

    /// A quote as of a plan's delay (`timestamp` at least `delay_minutes` old).
    pub fn after_delay(quote: Quote) -> Self {
        Self { quote, delayed: true }
    }

    pub fn quote(&self) -> &Quote {
        &self.quote
    }
}

impl From<Quote> for QuoteObject {
    fn from(quote: Quote) -> Self {
        Self::realtime(quote)
    }
}

/// The latest price of an instrument and its session so far. Prices are exact decimals at the
/// instrument's tick precision, in its quote currency (`Security.currency`).
#[Object(name = "Quote", cache_control(max_age = 2))]
impl QuoteObject {
    /// The quote's global id (`Node.id`), from the instrument's canonical symbol: the same in
    /// `quote`, `quotes`, `Security.quote` and every live update of `Subscription.quotes`, so a
    /// normalised cache keeps one entry per instrument and live updates land on it. (Not the
    /// instrument's `Security.id`: a global id names one object of one type.)
    pub async fn id(&self) -> ID {
        GlobalId::of::<Self>(self.quote.symbol.as_str())
    }
    /// The instrument's canonical symbol (`700.HK` for `0700.hk`).
    async fn symbol(&self) -> &str {
        self.quote.symbol.as_str()
    }
    /// The last traded price (an index's last value; a forex or crypto pair's last rate).
    async fn last(&self) -> DecimalString {
        DecimalString(self.quote.last)
    }
    /// The current (or last) session's first price.
    async fn open(&self) -> DecimalString {
        DecimalString(self.quote.open)
    }
    /// The session's highest price so far.
    async fn high(&self) -> DecimalString {
        DecimalString(self.quote.high)
    }
    /// The session's lowest price so far.
    async fn low(&self) -> DecimalString {
        DecimalString(self.quote.low)
    }
    /// The previous session's close.
    async fn prev_close(&self) -> DecimalString {
        DecimalString(self.quote.prev_close)
    }
    /// `last - prevClose`.
    async fn change(&self) -> DecimalString {
        DecimalString(self.quote.change())
    }
    /// Percent change against `prevClose`: always 4 decimal places, rounded once, half away
    /// from zero (`0.00005` is `0.0001`); null without a previous close.
    async fn change_percent(&self) -> Option<DecimalString> {
        self.quote.change_percent().map(DecimalString)
    }
    /// Units traded in the session; null where nothing trades (indices).
    async fn volume(&self) -> Option<DecimalString> {
        self.quote.volume.map(DecimalString)
    }
    /// Money traded in the session, in the quote currency; null where nothing trades
    /// (indices).
    async fn turnover(&self) -> Option<DecimalString> {
        self.quote.turnover.map(DecimalString)
    }
    /// When the source last saw this price (UTC).
    async fn timestamp(&self) -> Timestamp {
        Timestamp(self.quote.timestamp)
    }
    /// Whether the instrument trades normally, or is halted, delisted or paused.
    async fn trading_status(&self) -> TradingStatusGql {
        self.quote.trading_status.into()
    }
    /// The source that produced it (with a fallback chain, the one that answered).
    async fn source(&self) -> Result<QuoteSource, AppError> {
        QuoteSource::of(self.quote.source)
    }
    /// `SUSPECT` when the T+0 check found another source's `last` further than
    /// `FINQL_DIVERGENCE_BPS` from this one (`crossCheck` says whose, and by how much); `OK`
    /// otherwise, checked or not (a sample of fetched quotes is checked, after they are served).
    async fn quality(&self, ctx: &Context<'_>) -> Result<DataQuality, AppError> {
        let suspect = service::<MarketService>(ctx)?.divergence(&self.quote).is_some();
        Ok(if suspect { DataQuality::Suspect } else { DataQuality::Ok })
    }
    /// What the other source said, when this value is `SUSPECT`.
    async fn cross_check(&self, ctx: &Context<'_>) -> Result<Option<CrossCheck>, AppError> {
        let found = service::<MarketService>(ctx)?.divergence(&self.quote);
        Ok(found.map(|d| CrossCheck {
            source: d.other.to_owned(),
            value: DecimalString(d.other_last),
            bps: DecimalString(d.bps),
        }))
    }
    /// True when the source is unavailable and this is the last known value.
    async fn stale(&self) -> bool {
        self.quote.stale
    }
    /// True when the caller's plan has this market delayed: the quote is as it stood
    /// `delayMinutes` ago (`timestamp` is at least that old), rebuilt from closed 1-minute bars
    /// (the session's open, high, low, volume and turnover up to then).
    async fn delayed(&self) -> bool {
        self.delayed
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

/// A quote as the caller's plan allows: real time through the request's DataLoader, or as of
/// the plan's delay.
pub async fn load_quote(ctx: &Context<'_>, symbol: Symbol) -> Result<QuoteObject> {
    let grant = grant(ctx, &symbol)?;
    if let Some(cutoff) = grant.cutoff() {
        let quote = service::<MarketService>(ctx)?.quote_as_of(&symbol, cutoff).await?;
        SourcesUsed::record(ctx, [quote.source]);
        return Ok(QuoteObject::after_delay(quote));
    }
    let Ok(outcome) = service::<Quotes>(ctx)?.load_one(symbol.clone()).await;
    let quote =
        outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch")))??;
    SourcesUsed::record(ctx, [quote.source]);
    Ok(QuoteObject::realtime(quote))
}

/// Loads many quotes in one batch into the request's loader cache, for resolvers to read: those
/// the caller may see in real time (the others are refused, or delayed, per node).
pub async fn prefetch_quotes(ctx: &Context<'_>, symbols: Vec<Symbol>) -> Result<()> {
    let loader = service::<Quotes>(ctx)?;
    let symbols: Vec<Symbol> =
        symbols.into_iter().filter(|symbol| grant(ctx, symbol).is_ok_and(|grant| !grant.is_delayed())).collect();
    // Straight to the service (no collection delay: the whole page is in hand), then into the
    // loader's cache, where each node's `quote` finds its own.
    let found = service::<MarketService>(ctx)?.quotes(&symbols).await;
    loader.feed_many(found).await;
    Ok(())
}

/// Each symbol's quote as the caller's plan allows, or that symbol's error: real-time ones in
/// one batch, delayed ones rebuilt concurrently.
async fn entitled_quotes(ctx: &Context<'_>, symbols: &[Symbol]) -> Result<HashMap<Symbol, AppResult<QuoteObject>>> {
    let market = service::<MarketService>(ctx)?;
    let mut answers = HashMap::with_capacity(symbols.len());
    let (mut realtime, mut delayed) = (Vec::new(), Vec::new());
    for symbol in symbols {
        match grant(ctx, symbol) {
            Err(err) => {
                answers.insert(symbol.clone(), Err(err));
            }
            Ok(grant) => match grant.cutoff() {
                Some(cutoff) => delayed.push((symbol.clone(), cutoff)),
                None => realtime.push(symbol.clone()),
            },
        }
    }
    // All the real-time symbols are in hand: straight to the service (which batches them per
    // region and shares in-flight fetches across requests), without the loader's delay.
    for (symbol, outcome) in market.quotes(&realtime).await {
        answers.insert(symbol, outcome.map(QuoteObject::realtime));
    }
    let rebuilt = join_all(delayed.iter().map(|(symbol, cutoff)| market.quote_as_of(symbol, *cutoff))).await;
    for ((symbol, _), outcome) in delayed.into_iter().zip(rebuilt) {
        answers.insert(symbol, outcome.map(QuoteObject::after_delay));
    }
    SourcesUsed::record(ctx, answers.values().filter_map(|answer| Some(answer.as_ref().ok()?.quote().source)));
    Ok(answers)
}

/// `symbol`'s latest quote: from `source` alone when pinned (`market::pinned`), else as
/// `load_quote` has it (`Query.quote`, `Security.quote`).
pub async fn quote_from(ctx: &Context<'_>, symbol: Symbol, source: Option<QuoteSource>) -> Result<QuoteObject> {
    let Some(source) = source else { return load_quote(ctx, symbol).await };
    let mut found = pinned_quotes(ctx, std::slice::from_ref(&symbol), source.name()).await?;
    let outcome = found
        .remove(&symbol)
        .unwrap_or_else(|| Err(AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch"))));
    Ok(outcome?)
}

#[derive(Default)]
pub struct QuotesQuery;

#[Object]
impl QuotesQuery {
    /// The latest quote of an instrument. Null, with its error beside it (`path: ["quote"]`, or
    /// the alias), when this symbol fails alone: `NOT_FOUND` for an unknown symbol, `FORBIDDEN`
    /// (`ENTITLEMENT_REQUIRED`) for a market outside the caller's plan, `UPSTREAM_UNAVAILABLE`;
    /// aliases beside it still answer.
    #[graphql(cache_control(max_age = 2))]
    async fn quote(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES` and the caches. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<QuoteSource>,
    ) -> Result<Option<QuoteObject>> {
        quote_from(ctx, Symbol::parse(&symbol)?, source).await.map(Some)
    }

    /// Quotes of up to 500 instruments, in the order asked. Partial data: each item is the
    /// symbol's quote, or null with an error at its index (`path: ["quotes", i]`) naming what
    /// went wrong for that symbol alone: `NOT_FOUND` for an unknown symbol, `FORBIDDEN` with
    /// `extensions.reason: "ENTITLEMENT_REQUIRED"` and `extensions.market` for a market outside
    /// the caller's plan, `UPSTREAM_UNAVAILABLE`. The list fails as a whole only when its
    /// argument does: a malformed symbol (`BAD_USER_INPUT`), more than 500, or no credentials
    /// where they are required (`UNAUTHENTICATED`).
    #[graphql(cache_control(max_age = 2))]
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 500 symbols, any case; one asked twice answers twice.")] symbols: Vec<String>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES` and the caches. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<QuoteSource>,
    ) -> Result<Vec<Option<std::result::Result<QuoteObject, async_graphql::Error>>>> {
        if symbols.len() > MAX_SYMBOLS {
            return Err(AppError::bad_field("symbols", format!("at most {MAX_SYMBOLS} symbols per request")).into());
        }
        let parsed = symbols.iter().map(|s| Symbol::parse(s)).collect::<Result<Vec<_>, _>>()?;
        RequestContext::of(ctx)?.principal.require_scope(Scope::Market)?;
        // Asked once each (`AAPL.US` twice, or `700.HK` and `0700.HK`, are one instrument),
        // answered once per position.
        let mut distinct = parsed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut found = match source {
            Some(source) => pinned_quotes(ctx, &distinct, source.name()).await?,
            None => entitled_quotes(ctx, &distinct).await?,
        };
        let mut answers = Vec::with_capacity(parsed.len());
        for (i, symbol) in parsed.iter().enumerate() {
            // The last position of a symbol takes the answer; earlier ones a copy.
            let last = !parsed[i + 1..].contains(symbol);
            let outcome = if last { found.remove(symbol) } else { found.get(symbol).map(copy) };
            let outcome = outcome
                .unwrap_or_else(|| Err(AppError::internal(anyhow::anyhow!("quote for {symbol} missing from batch"))));
            answers.push(Some(outcome.map_err(async_graphql::Error::from)));
        }
        Ok(answers)
    }
}

/// Each symbol's quote from `source` alone, as the caller's plan allows, or that symbol's
/// error (`market::pinned`); the whole list fails only when `source` is not configured.
async fn pinned_quotes(
    ctx: &Context<'_>,
    symbols: &[Symbol],
    source: &'static str,
) -> Result<HashMap<Symbol, AppResult<QuoteObject>>> {
    let mut answers = HashMap::with_capacity(symbols.len());
    let mut allowed = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        match super::pinned_grant(ctx, symbol, source) {
            Ok(_) => allowed.push(symbol.clone()),
            Err(err) => {
                answers.insert(symbol.clone(), Err(err));
            }
        }
    }
    let found = service::<MarketService>(ctx)?.quotes_from(source, &allowed).await?;
    SourcesUsed::record(ctx, found.values().filter_map(|answer| Some(answer.as_ref().ok()?.source)));
    answers.extend(found.into_iter().map(|(symbol, outcome)| (symbol, outcome.map(QuoteObject::realtime))));
    Ok(answers)
}

/// A copy of an outcome, for a symbol asked twice.
fn copy(outcome: &AppResult<QuoteObject>) -> AppResult<QuoteObject> {
    match outcome {
        Ok(object) => Ok(QuoteObject { quote: object.quote.clone(), delayed: object.delayed }),
        Err(err) => Err(err.clone()),
    }
}
