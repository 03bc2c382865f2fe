//! `security`, `securities` and the `Security` type: the instrument catalog (`reference`)
//! composed with market data. Here rather than in `reference`, so that the catalog stays below
//! the market domain: `market` uses `reference`, never the reverse.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use super::{
    books::{OrderBookObject, book_levels, order_book_from},
    fundamentals::{self, CorporateActionObject, FundamentalPointConnection},
    klines::{AdjustGql, IntervalGql, KlineArgs, KlineObject, klines_from},
    quotes::{QuoteObject, QuoteSource, prefetch_quotes, quote_from},
    status::RegionGql,
};
use crate::{
    datasets::graphql::{SecurityDatasetObject, security_dataset},
    error::AppError,
    graphql::{
        PageInfo, RequestContext,
        global_id::GlobalId,
        scalars::{Date, DecimalString, Timestamp},
        service,
    },
    identity::Scope,
    market::calendar::Region,
    reference::{
        ReferenceService, Symbol,
        service::{AssetClass, Security, SecurityFilter, encode_cursor, page_size, parse_search},
    },
};

/// What kind of instrument a security is; it decides its symbol's form and which data it has.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AssetClass", remote = "AssetClass")]
pub enum AssetClassGql {
    /// A listed company's shares (`AAPL.US`, `700.HK`, `600519.SH`).
    Stock,
    /// An exchange-traded fund (`SPY.US`).
    Fund,
    /// A currency pair (`FX:EURUSD`): the price of the first in the second.
    Forex,
    /// A market index (`IDX:SPX`): a computed value, nothing trades it (no volume, no book).
    Index,
    /// A crypto pair on an exchange (`CRYPTO:BTCUSDT`).
    Crypto,
    /// A futures contract's continuous series (`FUT:CL.US`).
    Future,
}

/// An instrument finql serves.
pub struct SecurityObject(pub Security);

/// An instrument finql serves: its reference data, and its market data as the caller's plan
/// allows.
#[Object(name = "Security", cache_control(max_age = 300))]
impl SecurityObject {
    /// The security's global id (`Node.id`), from its canonical symbol: the same however the
    /// symbol was asked (`0700.hk` or `700.HK`).
    pub async fn id(&self) -> ID {
        GlobalId::of::<Self>(self.0.symbol.as_str())
    }
    /// Canonical symbol: `AAPL.US`, `700.HK`, `600519.SH`, `FX:EURUSD`, `IDX:SPX`,
    /// `CRYPTO:BTCUSDT`, `FUT:CL.US`.
    async fn symbol(&self) -> &str {
        self.0.symbol.as_str()
    }
    /// What kind of instrument it is.
    async fn asset_class(&self) -> AssetClassGql {
        self.0.asset_class.into()
    }
    /// Its name (`Apple Inc.`, `Euro / US Dollar`).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Home market: never `FX` (forex pairs are `GLOBAL`, like crypto pairs).
    async fn region(&self) -> Result<RegionGql, AppError> {
        // The catalog is written by finql's migrations: a region outside the enum is a bug there.
        Region::parse(&self.0.region)
            .map(Into::into)
            .map_err(|err| AppError::internal(anyhow::anyhow!("catalog row `{}`: {err}", self.0.symbol)))
    }
    /// ISO 10383 MIC of the primary listing (`XNAS`, `XHKG`, `XSHG`, …), when there is one.
    async fn exchange(&self) -> Option<&str> {
        self.0.exchange_mic.as_deref()
    }
    /// The currency prices are quoted in: an ISO 4217 code, or one of the market codes quotes
    /// use beside it: `CNH` (offshore yuan, `FX:USDCNH`) and `USDT` (Tether, the `CRYPTO:…USDT`
    /// pairs). A forex pair's currency is its quote (second) currency: `FX:USDJPY` is in JPY.
    async fn currency(&self) -> &str {
        self.0.currency.code()
    }
    /// Units per lot, an exact decimal: a board lot of shares (`100` in Hong Kong and China),
    /// contracts for futures, a standard lot (`100000`) for forex, and for crypto pairs the
    /// exchange's step size, the smallest quantity that trades (`CRYPTO:BTCUSDT` `0.00001`).
    async fn lot_size(&self) -> DecimalString {
        DecimalString(self.0.lot_size)
    }
    /// The first trading day (UTC date), when known: a stock's first day as a listed company,
    /// a fund's launch, an index's first published value, a forex pair's current regime, a
    /// crypto pair's first day on its exchange, a future's first contract. Market data never
    /// has bars before it: a `klines` window entirely before it is an empty list. Null where
    /// the catalog does not know it (not "never listed").
    async fn listed_at(&self) -> Option<Date> {
        self.0.listed_at.map(Date)
    }
    /// GICS sector of a stock (`Information Technology`); null for other instruments or
    /// where the catalog does not know it.
    async fn sector(&self) -> Option<&str> {
        self.0.sector.as_deref()
    }
    /// GICS industry of a stock (`Technology Hardware, Storage & Peripherals`); null like
    /// `sector`.
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// The latest quote (batched with every other quote of the request), as the caller's
    /// plan allows (`Quote.delayed`). The market-data fields of `Security` are nullable: one
    /// instrument's refusal (`ENTITLEMENT_REQUIRED`) or failure is an error at its own path,
    /// and the rest of a `securities` page still answers.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES` and the caches. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<QuoteSource>,
    ) -> Option<Result<QuoteObject>> {
        Some(quote_from(ctx, self.0.symbol.clone(), source).await)
    }
    /// Candles, oldest first; `before` and `after` page as in `Query.klines`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(cache_control(max_age = 3600))]
    async fn klines(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bar length.")] interval: IntervalGql,
        #[graphql(desc = "At most this many bars, 1 to 1000 (100 when omitted).")] limit: Option<i32>,
        #[graphql(desc = "Only bars that end at or before this instant (a bar's `time` pages backward).")]
        before: Option<Timestamp>,
        #[graphql(desc = "Only bars that start strictly after this instant (a bar's `time` pages forward).")]
        after: Option<Timestamp>,
        #[graphql(desc = "Split and dividend adjustment; `NONE` (as traded) when omitted.")] adjust: Option<AdjustGql>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES`, the caches and stored history (with `before` and `limit`; `after` and `adjust` are `BAD_USER_INPUT` beside it). `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<QuoteSource>,
    ) -> Option<Result<Vec<KlineObject>>> {
        Some(match KlineArgs::new(interval, limit, before, after, adjust) {
            Ok(args) => klines_from(ctx, &self.0.symbol, args, source).await,
            Err(err) => Err(err.into()),
        })
    }
    /// Splits and cash dividends, oldest first; empty for forex, indices, crypto and futures.
    /// From the iTick source: splits only (iTick publishes no dividends). Only those with
    /// ex-dates within the caller's plan's `historyDays`.
    async fn corporate_actions(&self, ctx: &Context<'_>) -> Option<Result<Vec<CorporateActionObject>>> {
        Some(fundamentals::corporate_actions(ctx, &self.0.symbol).await)
    }
    /// Daily valuation figures from `from` to `to` (inclusive, at most 20 years apart), oldest
    /// first, one per trading day of the instrument's market; empty for anything but stocks.
    /// Paged: the first `first` points (default and at most 1000) after the cursor `after` (a
    /// point's date). A day's figures are the same whatever range asks for it (the latest day's
    /// price is live, refreshed at most once a minute). From the iTick source: only the
    /// snapshot of the latest trading day (P/E and market cap; iTick has no history). Needs a
    /// plan with `fundamentals`; `from` further back than its `historyDays` is `FORBIDDEN`
    /// (`ENTITLEMENT_REQUIRED`); for a market the plan has delayed, the range ends the day
    /// before `now - delayMinutes` (the latest day's price is live).
    async fn fundamentals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The first day of the range (a day of the instrument's market).")] from: Date,
        #[graphql(desc = "The last day of the range, inclusive; not before `from`.")] to: Date,
        #[graphql(desc = "Points per page, 0 to 1000 (1000 when omitted).")] first: Option<i32>,
        #[graphql(desc = "A point's `cursor` (its date): the page starts after it.")] after: Option<String>,
    ) -> Option<Result<FundamentalPointConnection>> {
        Some(fundamentals::fundamentals(ctx, &self.0.symbol, (from.0, to.0), first, after).await)
    }
    /// This instrument's points of a proprietary dataset (`datasets` lists them): `NOT_FOUND`
    /// for a dataset this deployment does not serve, `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) for
    /// one the caller's plan does not include.
    #[graphql(cache_control(private, no_cache))]
    async fn dataset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dataset's name.")] name: String,
    ) -> Option<Result<SecurityDatasetObject>> {
        Some(security_dataset(ctx, &self.0.symbol, &name).map_err(Into::into))
    }
    /// The order book, `levels` deep (default 10, at most 50). An index has none:
    /// `BAD_USER_INPUT`. Real time only: `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) for a market the
    /// caller's plan has delayed.
    async fn order_book(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Price levels per side, 1 to 50 (10 when omitted).")] levels: Option<i32>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES` and the caches. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources`; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<QuoteSource>,
    ) -> Option<Result<OrderBookObject>> {
        Some(match book_levels(levels) {
            Ok(levels) => order_book_from(ctx, self.0.symbol.clone(), levels, source).await,
            Err(err) => Err(err.into()),
        })
    }
}

/// The catalog's instrument `symbol` (`security`, `Query.node`): `NOT_FOUND` when unknown.
pub async fn security_node(ctx: &Context<'_>, symbol: Symbol) -> Result<SecurityObject> {
    RequestContext::of(ctx)?.principal.require_scope(Scope::Market)?;
    Ok(SecurityObject(service::<ReferenceService>(ctx)?.security(&symbol).await?))
}

/// One security and its cursor (Relay edge).
#[derive(SimpleObject)]
pub struct SecurityEdge {
    /// Opaque; pass as `after` to continue after this security.
    cursor: String,
    /// The security.
    node: SecurityObject,
}

pub struct SecurityConnection {
    filter: SecurityFilter,
    securities: Vec<Security>,
    page_info: PageInfo,
}

/// A page of the catalog, by symbol (Relay connection).
#[Object]
impl SecurityConnection {
    /// The page's securities with their cursors.
    async fn edges(&self) -> Vec<SecurityEdge> {
        self.securities
            .iter()
            .map(|s| SecurityEdge { cursor: encode_cursor(&s.symbol), node: SecurityObject(s.clone()) })
            .collect()
    }
    /// The page's securities without their cursors.
    async fn nodes(&self) -> Vec<SecurityObject> {
        self.securities.iter().cloned().map(SecurityObject).collect()
    }
    /// Whether more securities follow, and the cursor to get them.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// All securities matching the filter, across pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(service::<ReferenceService>(ctx)?.count(&self.filter).await?)
    }
}

#[derive(Default)]
pub struct SecuritiesQuery;

#[Object]
impl SecuritiesQuery {
    /// One instrument by symbol. A malformed symbol is `BAD_USER_INPUT`; an unknown one is null
    /// with a `NOT_FOUND` error beside it (aliases beside it still answer).
    #[graphql(cache_control(max_age = 300))]
    async fn security(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
    ) -> Result<Option<SecurityObject>> {
        security_node(ctx, Symbol::parse(&symbol)?).await.map(Some)
    }

    /// The catalog, by symbol. `search` matches symbol or name, case-insensitively.
    #[graphql(cache_control(max_age = 300))]
    async fn securities(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Text found anywhere in the symbol or name, any case, at most 100 characters; blank is no filter."
        )]
        search: Option<String>,
        #[graphql(
            desc = "Only this home market (`FX` matches nothing: forex pairs are `GLOBAL`; use `assetClass: FOREX`)."
        )]
        region: Option<RegionGql>,
        #[graphql(desc = "Only this kind of instrument.")] asset_class: Option<AssetClassGql>,
        #[graphql(desc = "Securities per page, 0 to 100 (20 when omitted).")] first: Option<i32>,
        #[graphql(desc = "An edge's `cursor`: the page starts after that security.")] after: Option<String>,
    ) -> Result<SecurityConnection> {
        let first = page_size(first)?;
        RequestContext::of(ctx)?.principal.require_scope(Scope::Market)?;
        let filter = SecurityFilter {
            search: search.as_deref().map(parse_search).transpose()?.flatten(),
            region: region.map(|region| Region::from(region).code().to_owned()),
            asset_class: asset_class.map(Into::into),
        };
        let page = service::<ReferenceService>(ctx)?.search(&filter, first, after.as_deref()).await?;
        let look = ctx.look_ahead();
        if look.field("nodes").field("quote").exists() || look.field("edges").field("node").field("quote").exists() {
            // One batch for the whole page (one upstream call per asset class and region),
            // rather than whatever the DataLoader's time window happens to collect.
            let symbols = page.securities.iter().map(|s| s.symbol.clone()).collect();
            prefetch_quotes(ctx, symbols).await?;
        }
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: after.is_some(),
            start_cursor: page.securities.first().map(|s| encode_cursor(&s.symbol)),
            end_cursor: page.securities.last().map(|s| encode_cursor(&s.symbol)),
        };
        Ok(SecurityConnection { filter, securities: page.securities.clone(), page_info })
    }
}
