//! `ticks` and the `Tick` type.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    graphql::{bounded, scalars::DecimalString, service},
    market::{
        limits::{DEFAULT_TICKS, MAX_TICKS},
        service::MarketService,
        types::{Tick, TickDirection},
    },
    reference::Symbol,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "TickDirection", remote = "TickDirection")]
pub enum TickDirectionGql {
    Neutral,
    Sell,
    Buy,
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

#[derive(Default)]
pub struct TicksQuery;

#[Object]
impl TicksQuery {
    /// Recent trades, newest last (default 20, at most 1000).
    async fn ticks(&self, ctx: &Context<'_>, symbol: String, limit: Option<i32>) -> Result<Vec<TickObject>> {
        let limit = bounded(limit.unwrap_or(DEFAULT_TICKS), 1, MAX_TICKS, "limit")?;
        let symbol = Symbol::parse(&symbol)?;
        let ticks = service::<MarketService>(ctx)?.ticks(&symbol, limit).await?;
        Ok(ticks.into_iter().map(Into::into).collect())
    }
}
