//! Polygon.io, now Massive (`https://api.massive.com`; protocol notes in `shared/polygon.md`):
//! the REST adapter `PolygonSource`, a `MarketSource` for US stocks and funds, forex, crypto
//! and indices.
//!
//! | finql asks for | Polygon answers from |
//! |---|---|
//! | quotes (batched) | the v2 snapshots (`tickers=A,B,…`, one call per market and chunk); indices from the v3 indices snapshot (`ticker.any_of`) |
//! | klines | aggregates `/v2/aggs/ticker/{t}/range/{n}/{unit}/{from}/{to}`, newest first, cursor pages |
//! | ticks | v3 trades, newest first |
//! | order book | the NBBO (one level a side: Polygon offers no depth); forex, the last quote |
//! | corporate actions | v3 splits and cash dividends, cursor pages |
//! | fundamentals | not offered here: Polygon's financials are filings (quarterly statements), not the daily valuation series finql serves (`NotFound`, so a route falls through to a source that has them) |
//!
//! Every value passes `market::validate` before it is served; what does not is dropped,
//! counted and logged, as for iTick. Times are UTC; numbers exact decimals.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header;
use serde_json::Value;

use self::{
    parse::Unit,
    symbols::{Market, ticker},
};
use crate::{
    config::Secret,
    market::{
        corporate::{ActionKind, CorporateAction, FundamentalPoint},
        source::{MarketSource, SourceError},
        types::{Instrument, Interval, Kline, OrderBook, Quote, Tick},
    },
    sources::{
        http::{self, RestClient, RestSettings},
        wire::decimal,
    },
};

/// Polygon's wire format -> domain types (pure).
pub mod parse;
/// HTTP: the bearer key, status codes, the envelope and cursor pages, over `sources::http`.
mod rest;
/// Polygon's tickers (`AAPL`, `C:EURUSD`, `X:BTCUSD`, `I:SPX`) and markets.
pub mod symbols;

/// The API (Polygon.io became Massive; `https://api.polygon.io` still answers, for a while).
pub const DEFAULT_BASE_URL: &str = "https://api.massive.com";
/// Polygon asks paid plans to stay under about 100 requests a second.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 6_000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Tickers per snapshot call: 100 keeps the URL near 1 KB (tickers are at most ~12 characters)
/// and one answer small enough that a retry is cheap.
pub const BATCH_LIMIT: usize = 100;
/// Indices per v3 snapshot call (the endpoint's maximum `limit`).
const INDEX_BATCH_LIMIT: usize = 250;
/// Base aggregates per call at most (the endpoint's maximum).
const AGGREGATES_LIMIT: usize = 50_000;
/// Bars per kline call finql asks at most (as for iTick); callers page back with `end`.
pub const KLINE_LIMIT: usize = 1_000;
/// Trades per call at most.
const TRADES_LIMIT: usize = 1_000;
/// Pages followed for one answer at most: a bound on what one cache miss may spend.
const MAX_PAGES: usize = 5;

#[derive(Clone, Debug)]
pub struct PolygonConfig {
    /// `https://api.massive.com`, or a local fake in tests. No trailing slash needed.
    pub base_url: String,
    pub api_key: Secret<String>,
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Client-side quota: at most this many calls in any 60 s window, retries included.
    pub requests_per_minute: u32,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

impl PolygonConfig {
    /// The public API with default limits.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: Secret::new(api_key.into()),
            timeout: DEFAULT_TIMEOUT,
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

pub struct PolygonSource {
    rest: RestClient,
    base_url: String,
    /// The bearer key, marked sensitive.
    headers: header::HeaderMap,
}

impl std::fmt::Debug for PolygonSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolygonSource").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl PolygonSource {
    pub fn new(config: PolygonConfig) -> anyhow::Result<Self> {
        let base_url = http::base_url("Polygon", &config.base_url)?;
        anyhow::ensure!(!config.api_key.expose().trim().is_empty(), "the Polygon API key is empty");
        let headers = rest::headers(config.api_key.expose().trim())?;
        let rest = RestClient::new(RestSettings {
            provider: "polygon",
            timeout: config.timeout,
            requests_per_minute: config.requests_per_minute,
            max_retries: config.max_retries,
        })?;
        Ok(Self { rest, base_url, headers })
    }

    /// An item dropped by validation or because required fields were missing: logged.
    fn reject(&self, what: &'static str, symbol: &str, why: &str) {
        crate::sources::wire::rejected(parse::SOURCE, what, symbol, why);
    }

    /// Quotes of one market's instruments, each with its REST ticker.
    async fn market_quotes(
        &self,
        market: Market,
        group: &[(&Instrument, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Quote>, SourceError> {
        let mut by_ticker: HashMap<String, Value> = HashMap::new();
        let (limit, items_key) =
            if market == Market::Indices { (INDEX_BATCH_LIMIT, "results") } else { (BATCH_LIMIT, "tickers") };
        for chunk in group.chunks(limit) {
            let tickers = distinct(chunk.iter().map(|(_, t)| t.as_str()));
            let (path, query) = match market {
                Market::Stocks => ("/v2/snapshot/locale/us/markets/stocks/tickers", vec![("tickers", tickers)]),
                Market::Forex => ("/v2/snapshot/locale/global/markets/forex/tickers", vec![("tickers", tickers)]),
                Market::Crypto => ("/v2/snapshot/locale/global/markets/crypto/tickers", vec![("tickers", tickers)]),
                Market::Indices => {
                    ("/v3/snapshot/indices", vec![("ticker.any_of", tickers), ("limit", INDEX_BATCH_LIMIT.to_string())])
                }
            };
            let mut body = self.call(path, &query).await?;
            let items = match body.get_mut(items_key).map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for item in items {
                let Some(name) = item.get("ticker").and_then(Value::as_str).map(str::to_owned) else { continue };
                // A v3 snapshot answers per item: `{"ticker", "error": "NOT_FOUND" | "NOT_ENTITLED"}`.
                if let Some(error) = item.get("error").and_then(Value::as_str) {
                    tracing::debug!(source = parse::SOURCE, ticker = %name, error, "Polygon has no snapshot");
                    continue;
                }
                by_ticker.insert(name, item);
            }
        }
        let mut quotes = Vec::with_capacity(group.len());
        for (instrument, ticker) in group {
            let Some(raw) = by_ticker.get(ticker) else { continue };
            let parsed = match market {
                Market::Indices => parse::index_quote(raw, instrument, now),
                Market::Stocks => parse::snapshot_quote(raw, instrument, Unit::Nanos, now),
                Market::Forex | Market::Crypto => parse::snapshot_quote(raw, instrument, Unit::Millis, now),
            };
            match parsed {
                Ok(quote) => quotes.push(quote),
                Err(why) => self.reject("quote", instrument.symbol.as_str(), &why),
            }
        }
        Ok(quotes)
    }
}

/// The distinct items, comma-separated.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen.join(",")
}

/// Polygon's multiplier and timespan for an interval.
fn range(interval: Interval) -> (u32, &'static str) {
    match interval {
        Interval::OneMinute => (1, "minute"),
        Interval::FiveMinutes => (5, "minute"),
        Interval::FifteenMinutes => (15, "minute"),
        Interval::ThirtyMinutes => (30, "minute"),
        Interval::OneHour => (1, "hour"),
        Interval::TwoHours => (2, "hour"),
        Interval::FourHours => (4, "hour"),
        Interval::OneDay => (1, "day"),
        Interval::OneWeek => (1, "week"),
        Interval::OneMonth => (1, "month"),
    }
}

/// Polygon's `limit` for `bars` bars of `interval`: it counts the base aggregates (minutes) the
/// bars are built from, so an intraday bar counts its minutes; longer bars ask the most (what
/// they are built from is not documented), and paging stops once the bars are in.
fn aggregates_limit(interval: Interval, bars: usize) -> usize {
    match interval.minutes() {
        Some(minutes) if minutes < 1440 => {
            bars.saturating_mul(usize::try_from(minutes).unwrap_or(1)).clamp(1, AGGREGATES_LIMIT)
        }
        _ => AGGREGATES_LIMIT,
    }
}

/// How far back `limit` bars of `interval` before `end` may reach: intraday bars exist for a
/// few hours of most days (a US session is 6.5 h of 24, plus extended hours, five days of
/// seven), so six times the bars' span; days, weeks and months twice theirs (weekends and
/// holidays).
fn window_start(interval: Interval, end: DateTime<Utc>, limit: usize) -> DateTime<Utc> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let minutes = interval.minutes().unwrap_or(31 * 1440);
    let factor = if minutes < 1440 { 6 } else { 2 };
    let span = chrono::Duration::minutes(minutes.saturating_mul(limit).saturating_mul(factor));
    end.checked_sub_signed(span).unwrap_or(DateTime::<Utc>::MIN_UTC).max(DateTime::UNIX_EPOCH)
}

#[async_trait::async_trait]
impl MarketSource for PolygonSource {
    fn name(&self) -> &'static str {
        parse::SOURCE
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    /// One snapshot call per market and chunk (a batch may mix stocks, forex, crypto and indices).
    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        let now = Utc::now();
        let mut groups: Vec<(Market, Vec<(&Instrument, String)>)> = Vec::new();
        for instrument in instruments {
            // What Polygon does not cover is simply not answered (as an unknown ticker).
            let Ok((ticker, market)) = ticker(instrument) else { continue };
            match groups.iter_mut().find(|(m, _)| *m == market) {
                Some((_, group)) => group.push((instrument, ticker)),
                None => groups.push((market, vec![(instrument, ticker)])),
            }
        }
        let mut quotes = Vec::with_capacity(instruments.len());
        for (market, group) in &groups {
            quotes.extend(self.market_quotes(*market, group, now).await?);
        }
        Ok(quotes)
    }

    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (ticker, market) = ticker(instrument)?;
        let limit = limit.min(KLINE_LIMIT);
        let now = Utc::now();
        // `to` is inclusive of the bar starting at it: ask up to the millisecond before `end`.
        let to = end.map_or(now, |end| end - chrono::Duration::milliseconds(1));
        let from = window_start(interval, to, limit);
        let (multiplier, timespan) = range(interval);
        let path = format!(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{}/{}",
            from.timestamp_millis(),
            to.timestamp_millis()
        );
        let mut query = vec![("sort", "desc".to_owned()), ("limit", aggregates_limit(interval, limit).to_string())];
        if market != Market::Indices {
            query.push(("adjusted", "true".to_owned()));
        }
        // Newest first: the first `limit` bars are the ones wanted.
        let items = self.pages(&path, &query, limit, MAX_PAGES).await?;
        let mut bars: Vec<Kline> = Vec::with_capacity(items.len().min(limit));
        for raw in &items {
            match parse::bar(raw, interval, now) {
                Ok(bar) if end.is_none_or(|end| bar.time < end) => bars.push(bar),
                Ok(_) => {}
                Err(why) => self.reject("kline", instrument.symbol.as_str(), &why),
            }
        }
        Ok(crate::sources::newest_bars(bars, limit))
    }

    /// The NBBO as one level a side; for forex, the last quote (no sizes).
    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        let (ticker, market) = ticker(instrument)?;
        let now = Utc::now();
        let parsed = match market {
            Market::Stocks => {
                let mut body = self.call(&format!("/v2/last/nbbo/{ticker}"), &[]).await?;
                let raw = rest::results(&mut body).into_iter().next().unwrap_or(Value::Null);
                parse::nbbo(&raw, instrument, now)
            }
            Market::Forex => {
                let (from, to) = symbols::currencies(&ticker)
                    .ok_or_else(|| SourceError::NotFound(format!("Polygon has no pair for {}", instrument.symbol)))?;
                let body = self.call(&format!("/v1/last_quote/currencies/{from}/{to}"), &[]).await?;
                parse::forex_last(body.get("last").unwrap_or(&Value::Null), instrument, now)
            }
            Market::Crypto | Market::Indices => {
                return Err(SourceError::NotFound(format!("Polygon offers no order book for {}", instrument.symbol)));
            }
        };
        match parsed {
            Ok(mut book) => {
                book.bids.truncate(levels);
                book.asks.truncate(levels);
                Ok(book)
            }
            Err(why) => {
                self.reject("book", instrument.symbol.as_str(), &why);
                Err(SourceError::Invalid(format!("book of {}: {why}", instrument.symbol)))
            }
        }
    }

    /// The newest `limit` trades, oldest first.
    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (ticker, market) = ticker(instrument)?;
        if matches!(market, Market::Indices | Market::Forex) {
            return Err(SourceError::NotFound(format!("Polygon reports no trades of {}", instrument.symbol)));
        }
        let query = [
            ("order", "desc".to_owned()),
            ("sort", "timestamp".to_owned()),
            ("limit", limit.min(TRADES_LIMIT).to_string()),
        ];
        let mut body = self.call(&format!("/v3/trades/{ticker}"), &query).await?;
        let now = Utc::now();
        let mut ticks = Vec::new();
        for raw in rest::results(&mut body) {
            match parse::trade(&raw, instrument, now) {
                Ok(tick) => ticks.push(tick),
                Err(why) => self.reject("tick", instrument.symbol.as_str(), &why),
            }
        }
        ticks.sort_by_key(|tick| tick.timestamp);
        ticks.truncate(limit);
        Ok(ticks)
    }

    /// Splits and cash dividends, oldest first.
    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        let (ticker, market) = ticker(instrument)?;
        if market != Market::Stocks {
            return Ok(Vec::new());
        }
        let query = [("ticker", ticker.clone()), ("limit", "1000".to_owned())];
        let mut actions = Vec::new();
        for raw in self.pages("/v3/reference/splits", &query, usize::MAX, MAX_PAGES).await? {
            match split(&raw) {
                Some(action) => actions.push(action),
                None => self.reject("split", instrument.symbol.as_str(), "missing or non-positive fields"),
            }
        }
        for raw in self.pages("/v3/reference/dividends", &query, usize::MAX, MAX_PAGES).await? {
            match dividend(&raw, &instrument.currency) {
                Some(action) => actions.push(action),
                None => self.reject("dividend", instrument.symbol.as_str(), "missing or non-positive fields"),
            }
        }
        actions.sort_by_key(|action| action.ex_date);
        Ok(actions)
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        Err(SourceError::NotFound(format!("Polygon serves no daily fundamentals for {}", instrument.symbol)))
    }
}

/// `{execution_date, split_from, split_to}` (a 2-for-1 is from 1, to 2).
fn split(raw: &Value) -> Option<CorporateAction> {
    let ex_date = date(raw.get("execution_date")?)?;
    let from = raw.get("split_from").and_then(decimal).filter(|d| d.is_sign_positive() && !d.is_zero())?;
    let to = raw.get("split_to").and_then(decimal).filter(|d| d.is_sign_positive() && !d.is_zero())?;
    Some(CorporateAction { ex_date, kind: ActionKind::Split { from, to } })
}

/// `{ex_dividend_date, cash_amount, currency}`; the currency defaults to the instrument's.
fn dividend(raw: &Value, currency: &str) -> Option<CorporateAction> {
    let ex_date = date(raw.get("ex_dividend_date")?)?;
    let amount = raw.get("cash_amount").and_then(decimal).filter(|d| d.is_sign_positive() && !d.is_zero())?;
    let currency = raw.get("currency").and_then(Value::as_str).unwrap_or(currency).to_ascii_uppercase();
    Some(CorporateAction { ex_date, kind: ActionKind::Dividend { amount, currency } })
}

fn date(value: &Value) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.as_str()?.trim(), "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests;
