//! The market API: quotes, klines, order books, ticks, the catalog's securities with their
//! market data, corporate actions and fundamentals, and market status; one file per action,
//! each a thin translation of arguments over [`MarketService`](crate::market::MarketService), [`FundamentalsService`](crate::market::FundamentalsService) and the
//! catalog (`reference`). Resolvers reach the services as schema data (`graphql::service`), and
//! the request's DataLoaders come from [`attach_loaders`](crate::market::graphql::attach_loaders).

/// `orderBook`, `OrderBook`, and the order-book DataLoader.
pub mod books;
/// `Security.corporateActions`, `Security.fundamentals` and their types.
pub mod fundamentals;
/// `klines`, `Kline`, `KlineAdjust`, and the latest-kline DataLoader.
pub mod klines;
/// `Quote`'s fields as values, for live subscriptions rendered without the schema.
pub mod quote_fields;
/// `quote`, `quotes`, `Quote`, and the quote DataLoader.
pub mod quotes;
/// `security`, `securities` and the `Security` type: the catalog composed with market data.
pub mod securities;
/// `marketStatus(region)`.
pub mod status;
/// `ticks` and `Tick`.
pub mod ticks;

pub use books::{BookLevelObject, OrderBookObject};
pub use klines::{IntervalGql, KlineObject};
pub use quote_fields::QuoteField;
pub use quotes::QuoteObject;
pub use ticks::TickObject;

use std::{sync::OnceLock, time::Duration};

use async_graphql::{
    MergedObject,
    dataloader::{DataLoader, HashMapCache},
};

use super::{
    entitlements::{self, Grant},
    service::MarketService,
};
use crate::{error::AppResult, graphql::RequestContext, identity::Scope, reference::Symbol};

/// What the caller's plan lets this request see of `symbol`'s market data, now by the market
/// service's clock (the one check, `entitlements::grant`, with the request's principal).
pub fn grant(ctx: &async_graphql::Context<'_>, symbol: &Symbol) -> AppResult<Grant> {
    let now = crate::graphql::service::<MarketService>(ctx)?.now();
    entitlements::grant(&RequestContext::of(ctx)?.principal, symbol, Scope::Market, now)
}

/// [`grant`], for a field pinned to `source`: refused unless the plan lets the caller pin it
/// (`entitlements::require_source`).
pub fn pinned_grant(ctx: &async_graphql::Context<'_>, symbol: &Symbol, source: &str) -> AppResult<Grant> {
    let grant = grant(ctx, symbol)?;
    entitlements::require_source(&RequestContext::of(ctx)?.principal, &grant, symbol, source)?;
    Ok(grant)
}

/// Every market query, merged into the one `Query` at the top of the tree.
#[derive(MergedObject, Default)]
pub struct MarketQuery(
    quotes::QuotesQuery,
    klines::KlinesQuery,
    books::BooksQuery,
    ticks::TicksQuery,
    securities::SecuritiesQuery,
    status::MarketStatusQuery,
);

/// Attaches this domain's per-request DataLoaders to a GraphQL request: the quote loader
/// (cached per request, see `quotes::prefetch_quotes`) and the order-book and latest-kline
/// loaders.
pub fn attach_loaders(request: async_graphql::Request, market: &MarketService) -> async_graphql::Request {
    let quotes = DataLoader::with_cache(quotes::QuoteLoader(market.clone()), spawn_in_span, HashMapCache::default());
    request.data(quotes).data(MarketLoaders::new(market.clone()))
}

/// Runs a loader's batch in a task of its own, in the span of the resolver that started it: its
/// service calls (and the `traceparent` they send upstream) belong to the request's trace; a
/// bare `tokio::spawn` would leave them outside any.
fn spawn_in_span(batch: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(tracing::Instrument::in_current_span(batch))
}

/// The request's order-book and latest-kline loaders, made on first use (most requests need
/// neither), so that `securities { orderBook }` or aliases of `klines` reach the service as one
/// batch per (levels) and per (interval, limit).
pub struct MarketLoaders {
    market: MarketService,
    books: OnceLock<DataLoader<books::BookLoader>>,
    klines: OnceLock<DataLoader<klines::LatestKlineLoader>>,
}

/// How long the book and latest-kline loaders collect keys before one batch goes upstream. The
/// default 1 ms closed before all 25 nodes of a `securities` page had asked on a loaded 2-core
/// machine (two upstream calls for one page in 6 of 15 runs); an upstream call costs far more
/// than the wait. (Prefetching a page's books and bars from the service, as `securities` does
/// for quotes, would need no window at all.)
const COLLECT: Duration = Duration::from_millis(5);

impl MarketLoaders {
    pub fn new(market: MarketService) -> Self {
        Self { market, books: OnceLock::new(), klines: OnceLock::new() }
    }

    fn books(&self) -> &DataLoader<books::BookLoader> {
        self.books.get_or_init(|| DataLoader::new(books::BookLoader(self.market.clone()), spawn_in_span).delay(COLLECT))
    }

    fn klines(&self) -> &DataLoader<klines::LatestKlineLoader> {
        self.klines.get_or_init(|| {
            DataLoader::new(klines::LatestKlineLoader(self.market.clone()), spawn_in_span).delay(COLLECT)
        })
    }
}
