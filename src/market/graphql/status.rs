//! `marketStatus(region)`: whether a market is trading now, and when it next opens and closes.
//!
//! A thin wrapper: sessions, holidays and time zones live in `market::calendar`, a pure function
//! of the instant; this resolver only supplies the clock and maps the result to GraphQL types
//! (kept apart from the domain types so the calendar stays free of GraphQL).

use async_graphql::{Enum, Object, Result, SimpleObject};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::{
    error::AppError,
    market::calendar::{self, MarketState, MarketStatus, Region, Session},
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MarketState", remote = "MarketState")]
pub enum MarketStateGql {
    /// Before the regular session: pre-market trading, or an opening auction.
    PreMarket,
    /// In a regular session.
    Open,
    /// Between the morning and the afternoon session.
    LunchBreak,
    /// After the regular session: post-market trading.
    PostMarket,
    Closed,
}

/// A regular session, in the market's local time (`HH:MM`; `24:00` is the end of the day).
#[derive(SimpleObject)]
#[graphql(name = "TradingSession")]
pub struct TradingSessionObject {
    open: String,
    close: String,
}

impl From<Session> for TradingSessionObject {
    fn from(s: Session) -> Self {
        Self { open: s.open.to_string(), close: s.close.to_string() }
    }
}

/// A market now. Half-days are not modelled, and holidays are known for 2025 and 2026 only.
#[derive(SimpleObject)]
#[graphql(name = "MarketStatus")]
pub struct MarketStatusObject {
    /// The region code: US, HK, CN, JP, GB, DE, GLOBAL (crypto) or FX.
    region: String,
    /// The IANA time zone the market's hours are defined in, e.g. `America/New_York`.
    timezone: String,
    state: MarketStateGql,
    /// The market's local date and time now, RFC 3339 with its UTC offset.
    local_time: String,
    /// Today's regular sessions in local time; empty on a weekend or holiday.
    sessions: Vec<TradingSessionObject>,
    /// When the next regular session starts; null for a market that never closes.
    next_open: Option<DateTime<Utc>>,
    /// When the current (or else the next) regular session ends; null for a market that never
    /// closes.
    next_close: Option<DateTime<Utc>>,
}

impl From<MarketStatus> for MarketStatusObject {
    fn from(s: MarketStatus) -> Self {
        Self {
            region: s.region.code().to_owned(),
            timezone: s.timezone.to_owned(),
            state: s.state.into(),
            local_time: s.local_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            sessions: s.sessions.into_iter().map(Into::into).collect(),
            next_open: s.next_open,
            next_close: s.next_close,
        }
    }
}

#[derive(Default)]
pub struct MarketStatusQuery;

#[Object]
impl MarketStatusQuery {
    /// Whether a market is trading now and when it next opens and closes. `region` is a code,
    /// in any case: US, HK, CN, JP, GB, DE, GLOBAL (crypto) or FX.
    async fn market_status(&self, region: String) -> Result<MarketStatusObject> {
        let region = Region::parse(&region).map_err(|err| AppError::bad_field("region", err.to_string()))?;
        Ok(calendar::status(region, Utc::now()).into())
    }
}
