//! `marketStatus(region, at)`: whether a market is trading now (or at another instant), and when
//! it next opens and closes.
//!
//! A thin wrapper: sessions, holidays and time zones live in `market::calendar`, a pure function
//! of the instant; this resolver only supplies the clock (or checks the instant asked about
//! against the calendar data's coverage) and maps the result to GraphQL types (kept apart from
//! the domain types so the calendar stays free of GraphQL).

use async_graphql::{Enum, Object, Result, SimpleObject};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::{
    error::AppError,
    graphql::scalars::{Date, Timestamp},
    market::calendar::{self, MarketState, MarketStatus, Region, Session},
};

/// Where a market is in its trading day.
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
    /// No trading: outside the day's hours, a weekend or a holiday.
    Closed,
}

/// A market region: where an instrument is listed (`Security.region`) and whose trading hours
/// `marketStatus` describes. Stock and index regions are named by ISO 3166 country code.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Region", remote = "Region")]
pub enum RegionGql {
    /// United States: NYSE and Nasdaq (New York time).
    Us,
    /// Hong Kong: HKEX.
    Hk,
    /// Mainland China: the Shanghai and Shenzhen exchanges.
    Cn,
    /// Japan: the Tokyo Stock Exchange.
    Jp,
    /// United Kingdom: the London Stock Exchange.
    Gb,
    /// Germany: Xetra.
    De,
    /// Crypto and forex pairs in the catalog; as a market, crypto, which always trades.
    Global,
    /// Spot forex hours (Sunday 17:00 to Friday 17:00, New York time); forex pairs themselves
    /// are listed in `GLOBAL`.
    Fx,
}

/// A regular session, in the market's local time (`HH:MM`; `24:00` is the end of the day).
#[derive(SimpleObject)]
#[graphql(name = "TradingSession")]
pub struct TradingSessionObject {
    /// When the session opens, local `HH:MM`.
    open: String,
    /// When the session closes, local `HH:MM` (`24:00` for the end of the day).
    close: String,
}

impl From<Session> for TradingSessionObject {
    fn from(s: Session) -> Self {
        Self { open: s.open.to_string(), close: s.close.to_string() }
    }
}

/// A market at an instant: its state, the local day's sessions (half-days shortened), the next
/// open and close, and how far its calendar data reaches. Sessions and holidays come from
/// `exchange_calendars` (2000 through 2030); China's schedules after 2026 are projected by rule
/// until the State Council publishes them (`provisional`).
#[derive(SimpleObject)]
#[graphql(name = "MarketStatus")]
pub struct MarketStatusObject {
    /// The market asked about.
    region: RegionGql,
    /// The IANA time zone the market's hours are defined in, e.g. `America/New_York`.
    timezone: String,
    /// Where the market is in its trading day at the instant asked about.
    state: MarketStateGql,
    /// The market's local date and time at the instant asked about, RFC 3339 with its UTC
    /// offset.
    local_time: String,
    /// The local day's regular sessions in local time; empty on a weekend or holiday, shortened
    /// on a half-day (e.g. `09:30`-`13:00` in New York on Christmas Eve).
    sessions: Vec<TradingSessionObject>,
    /// When the next regular session starts; null for a market that never closes.
    next_open: Option<Timestamp>,
    /// When the current (or else the next) regular session ends; null for a market that never
    /// closes.
    next_close: Option<Timestamp>,
    /// The last local day the market's calendar data describes (published or projected); `at`
    /// must fall within the data. Null for GLOBAL and FX, whose hours are a weekly rule.
    calendar_valid_through: Option<Date>,
    /// The last local day whose schedule the exchange has published; days after it (through
    /// `calendarValidThrough`) are projected by rule. Null for GLOBAL and FX.
    calendar_published_through: Option<Date>,
    /// True when the local day's schedule is projected by rule rather than published by the
    /// exchange (today only China's after 2026), or lies outside the calendar data; false for
    /// GLOBAL and FX.
    provisional: bool,
}

impl From<MarketStatus> for MarketStatusObject {
    fn from(s: MarketStatus) -> Self {
        Self {
            region: s.region.into(),
            timezone: s.timezone.to_owned(),
            state: s.state.into(),
            local_time: s.local_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            sessions: s.sessions.into_iter().map(Into::into).collect(),
            next_open: s.next_open.map(Timestamp),
            next_close: s.next_close.map(Timestamp),
            calendar_valid_through: s.coverage.map(|c| Date(c.last)),
            calendar_published_through: s.coverage.map(|c| Date(c.published_through)),
            provisional: s.provisional,
        }
    }
}

#[derive(Default)]
pub struct MarketStatusQuery;

#[Object]
impl MarketStatusQuery {
    /// Whether a market is trading and when it next opens and closes: now, or at the instant
    /// `at` (UTC), which must fall within the market's calendar data (its local day between
    /// 2000-01-01 and `calendarValidThrough`).
    #[graphql(cache_control(max_age = 2))]
    async fn market_status(
        &self,
        #[graphql(desc = "The market: `GLOBAL` for crypto, `FX` for spot forex.")] region: RegionGql,
        #[graphql(desc = "The instant to describe the market at; now when omitted.")] at: Option<Timestamp>,
    ) -> Result<MarketStatusObject> {
        let at = at.map(DateTime::from);
        let region = Region::from(region);
        let instant = match at {
            None => Utc::now(),
            Some(at) => {
                if let Some(coverage) = calendar::coverage(region) {
                    let local = at.with_timezone(&region.timezone()).date_naive();
                    if !(coverage.first..=coverage.last).contains(&local) {
                        return Err(AppError::bad_field(
                            "at",
                            format!(
                                "{region}'s calendar covers local days {} to {}; {} is {local} there",
                                coverage.first,
                                coverage.last,
                                at.to_rfc3339_opts(SecondsFormat::Secs, true)
                            ),
                        )
                        .into());
                    }
                }
                at
            }
        };
        Ok(calendar::status(region, instant).into())
    }
}
