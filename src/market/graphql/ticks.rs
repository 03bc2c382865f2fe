//! `ticks` and the `Tick` type.

use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};

use super::grant;
use crate::{
    graphql::{
        bounded,
        scalars::{DecimalString, Timestamp},
        service,
    },
    market::{
        limits::{DEFAULT_TICKS, MAX_TICKS},
        service::MarketService,
        types::{Tick, TickDirection},
    },
    reference::Symbol,
};

/// Which side started a trade, as the source classifies it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TickDirection", remote = "TickDirection")]
pub enum TickDirectionGql {
    /// Neither side, or not classifiable (an auction trade).
    Neutral,
    /// A seller hit the bid.
    Sell,
    /// A buyer lifted the ask.
    Buy,
}

/// One trade.
#[derive(SimpleObject)]
#[graphql(name = "Tick", complex)]
pub struct TickObject {
    /// The instrument's canonical symbol.
    symbol: String,
    /// The price it traded at.
    price: DecimalString,
    /// Units traded.
    volume: DecimalString,
    /// When it traded.
    timestamp: Timestamp,
    /// Which side started it; null when the source does not say.
    direction: Option<TickDirectionGql>,
    #[graphql(skip)]
    source: &'static str,
}

#[ComplexObject]
impl TickObject {
    /// The source that reported the trade (with a route or fallback chain, the one that
    /// answered).
    async fn source(&self) -> Result<super::quotes::QuoteSource, crate::error::AppError> {
        super::quotes::QuoteSource::of(self.source)
    }
}

impl From<Tick> for TickObject {
    fn from(t: Tick) -> Self {
        Self {
            symbol: t.symbol.to_string(),
            price: DecimalString(t.price),
            volume: DecimalString(t.volume),
            timestamp: Timestamp(t.timestamp),
            direction: t.direction.map(Into::into),
            source: t.source,
        }
    }
}

#[derive(Default)]
pub struct TicksQuery;

#[Object]
impl TicksQuery {
    /// Recent trades, newest last (default 20, at most 1000): of the latest `limit` trades the
    /// source has, those the caller's plan allows. For a delayed market that is only the ones
    /// at least `delayMinutes` old, so the list may be shorter than `limit`, or empty (a source
    /// keeping few recent trades, such as iTick's latest trade, has none that old). Null, with
    /// its error beside it, when this symbol's trades cannot be had.
    #[graphql(cache_control(max_age = 2))]
    async fn ticks(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(desc = "At most this many trades, 1 to 1000 (20 when omitted).")] limit: Option<i32>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES`. `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<super::quotes::QuoteSource>,
    ) -> Result<Option<Vec<TickObject>>> {
        let limit = bounded(limit.unwrap_or(DEFAULT_TICKS), 1, MAX_TICKS, "limit")?;
        let symbol = Symbol::parse(&symbol)?;
        let grant = grant(ctx, &symbol)?;
        let market = service::<MarketService>(ctx)?;
        let ticks = match source {
            Some(source) => {
                super::pinned_grant(ctx, &symbol, source.name())?;
                market.ticks_from(source.name(), &symbol, limit).await?
            }
            None => market.ticks(&symbol, limit).await?,
        };
        let ticks: Vec<TickObject> =
            ticks.into_iter().filter(|tick| grant.keeps(tick.timestamp)).map(Into::into).collect();
        crate::graphql::provenance::SourcesUsed::record(ctx, ticks.iter().map(|tick| tick.source));
        Ok(Some(ticks))
    }
}
