//! iTick (`https://api.itick.org`; protocol notes in `shared/itick.md`): the REST adapter
//! `ItickSource` (a `MarketSource`) and the WebSocket stream `ItickStream` (a `MarketStream`).
//!
//! One `ItickSource` per process: it owns a pooled HTTPS client and the client-side quota that
//! keeps every call of the instance under the plan's per-minute limit. Each call:
//!
//! 1. waits for a permit of the quota (bounded by the attempt timeout, else `Unavailable`);
//! 2. sends `GET {base}/{asset}/{endpoint}?…` with headers `token` and `accept`;
//! 3. retries 429, 5xx, timeouts and connection failures with the providers' backoff
//!    (honouring `Retry-After`), up to `max_retries` times, then answers `Unavailable`; but only
//!    while the request's upstream budget (`market::health`) leaves time for the wait and
//!    another attempt: a retry that cannot finish in time is not started (steps 1 to 3: `rest`);
//! 4. opens the `{code, msg, data}` envelope, maps `data` to domain types (exact decimals: JSON
//!    numbers go through their shortest round-trip text, never through arithmetic on `f64`;
//!    `parse`, shared with the stream);
//! 5. drops (and counts, and logs) every item that does not parse or breaks `market::validate`:
//!    a price of zero, a high below the low, a timestamp in the future. Bad data is never served.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header;
use serde_json::Value;

use self::{
    parse::{SOLE, book_time, index_by_code, parse_kline, parse_level, parse_quote, parse_tick, unwrap_single},
    symbols::{asset_prefix, normalize_code},
};
use crate::{
    config::Secret,
    market::{
        corporate::{CorporateAction, FundamentalPoint},
        source::{MarketSource, SourceError},
        types::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick},
        validate,
    },
    reference::Symbol,
    sources::http::{self, RestClient, RestSettings},
};

/// iTick's wire format -> domain types (pure; shared by REST and the stream).
pub mod parse;
/// Splits (`/stock/split`, cached per region) and the fundamentals snapshot (`/stock/info`).
pub mod reference;
/// HTTP: the token, status codes and the envelope, over `sources::http`.
mod rest;
/// The WebSocket stream (`MarketStream`): connections, plan, wire format, stats.
pub mod stream;
/// How iTick names instruments (paths, `CODE$REGION`, normalised codes), for REST and stream.
pub mod symbols;

pub use stream::{ItickStream, ItickStreamConfig};

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://api.itick.org";
/// iTick plans allow 5, 120, 600 or 1200 REST calls a minute; 600 is the common paid plan.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 600;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Codes per batch call (`/quotes?codes=a,b,…`). iTick documents no maximum. 100 keeps the URL
/// near 1 KB (codes are at most ~12 characters; proxies start refusing around 8 KB), keeps one
/// answer's body small enough that a retry is cheap, stays well under the 500 symbols iTick
/// allows on one WebSocket connection (the only batch size it does document), and still covers
/// a whole region of finql's catalog in one or two calls.
pub const BATCH_LIMIT: usize = 100;
/// Bars per kline call: the upstream maximum, reportedly 1000 (unverified). Callers page back
/// with `end`.
pub const KLINE_LIMIT: usize = 1000;

#[derive(Clone, Debug)]
pub struct ItickConfig {
    /// `https://api.itick.org`, or a local fake in tests. No trailing slash needed.
    pub base_url: String,
    pub token: Secret<String>,
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Client-side quota: at most this many calls in any 60 s window, retries included.
    pub requests_per_minute: u32,
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
}

impl ItickConfig {
    /// The public API with default limits.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: Secret::new(token.into()),
            timeout: DEFAULT_TIMEOUT,
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

pub struct ItickSource {
    rest: RestClient,
    base_url: String,
    /// The token header, marked sensitive.
    headers: header::HeaderMap,
    rejected: AtomicU64,
    /// Splits by region: `/stock/split` is region-wide (see `reference`).
    splits: moka::future::Cache<String, reference::RegionSplits>,
}

impl std::fmt::Debug for ItickSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItickSource").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl ItickSource {
    pub fn new(config: ItickConfig) -> anyhow::Result<Self> {
        let base_url = http::base_url("iTick", &config.base_url)?;
        anyhow::ensure!(!config.token.expose().trim().is_empty(), "the iTick token is empty");
        let headers = rest::headers(config.token.expose())?;
        let rest = RestClient::new(RestSettings {
            provider: "itick",
            timeout: config.timeout,
            requests_per_minute: config.requests_per_minute,
            max_retries: config.max_retries,
        })?;
        Ok(Self {
            rest,
            base_url,
            headers,
            rejected: AtomicU64::new(0),
            splits: moka::future::Cache::builder()
                .max_capacity(reference::SPLITS_CACHE)
                .time_to_live(reference::SPLITS_TTL)
                .build(),
        })
    }

    /// Items dropped by validation or because required fields were missing, since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn reject(&self, what: &'static str, symbol: &str, why: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        crate::sources::wire::rejected("itick", what, symbol, why);
    }

    async fn single(
        &self,
        instrument: &Instrument,
        endpoint: &str,
        extra: &[(&str, String)],
    ) -> Result<Value, SourceError> {
        let mut query = vec![("region", instrument.region.clone()), ("code", instrument.code.clone())];
        query.extend(extra.iter().cloned());
        let data = self.call(&format!("/{}/{endpoint}", asset_prefix(instrument.asset_class)), &query).await?;
        if data.is_null() {
            return Err(SourceError::NotFound(format!("iTick has no {endpoint} for {}", instrument.symbol)));
        }
        Ok(data)
    }

    async fn quotes_batch(&self, instruments: &[Instrument], now: DateTime<Utc>) -> Result<Vec<Quote>, SourceError> {
        let first = &instruments[0];
        let query = [("region", first.region.clone()), ("codes", codes(instruments))];
        let data = self.call(&format!("/{}/quotes", asset_prefix(first.asset_class)), &query).await?;
        let by_code = index_by_code(&data, instruments.len() == 1);
        let mut quotes = Vec::with_capacity(instruments.len());
        for instrument in instruments {
            let raw = by_code.get(&normalize_code(&instrument.code)).or_else(|| by_code.get(SOLE));
            let Some(raw) = raw else { continue };
            match parse_quote(raw, instrument, now) {
                Ok(quote) => quotes.push(quote),
                Err(why) => self.reject("quote", instrument.symbol.as_str(), &why),
            }
        }
        Ok(quotes)
    }

    /// Bars of one answer, validated, oldest first, at most `limit`, before `end`.
    fn bars(&self, items: &[Value], instrument: &Instrument, end: Option<DateTime<Utc>>, limit: usize) -> Vec<Kline> {
        let now = Utc::now();
        let mut bars: Vec<Kline> = Vec::with_capacity(items.len());
        for raw in items {
            match parse_kline(raw, now) {
                Ok(bar) if end.is_none_or(|end| bar.time < end) => bars.push(bar),
                Ok(_) => {}
                Err(why) => self.reject("kline", instrument.symbol.as_str(), &why),
            }
        }
        // Documented oldest first; sorted anyway.
        crate::sources::newest_bars(bars, limit)
    }

    /// An order book from one depth item (`{s, a: [asks], b: [bids], t?}`), best levels first.
    fn book(&self, book: &Value, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        let now = Utc::now();
        let side = |key: &str| -> Vec<BookLevel> {
            let mut out = Vec::new();
            for raw in book.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                match parse_level(raw) {
                    Ok(level) => out.push(level),
                    Err(why) => self.reject("depth level", instrument.symbol.as_str(), &why),
                }
            }
            out
        };
        let mut bids = side("b");
        let mut asks = side("a");
        bids.sort_by_key(|level| std::cmp::Reverse(level.price));
        asks.sort_by_key(|level| level.price);
        bids.truncate(levels);
        asks.truncate(levels);
        let timestamp =
            match book_time(book, now).and_then(|t| validate::not_in_future("book time", t, now).map(|()| t)) {
                Ok(t) => t,
                Err(why) => {
                    self.reject("depth", instrument.symbol.as_str(), &why);
                    return Err(SourceError::Invalid(format!("depth of {}: {why}", instrument.symbol)));
                }
            };
        Ok(OrderBook { symbol: instrument.symbol.clone(), bids, asks, timestamp })
    }
}

/// The `et` that makes a kline answer end with the last bar starting before `end`.
///
/// iTick does not say whether `et` includes the bar starting exactly at it (`shared/itick.md`):
/// asking with `et = end` for a window ending at a bar's start returned that bar too from an
/// inclusive upstream, and once it was dropped (it is not before `end`) the window held
/// `limit - 1` bars. One millisecond into the last bar wanted is inside it for either reading:
/// an inclusive upstream ends with it (it starts before `et`), an exclusive one too (it starts
/// before `et`), and neither includes the next bar, which starts at least a minute later.
fn upstream_end(interval: Interval, end: DateTime<Utc>) -> DateTime<Utc> {
    // Bars start on whole milliseconds: the last one starting before `end` is the one holding
    // the instant just before it.
    let last_wanted = interval.bar_start(end - chrono::Duration::nanoseconds(1));
    last_wanted + chrono::Duration::milliseconds(1)
}

/// Checks that instruments share an asset class and region (one iTick batch call takes one);
/// the first of them, if any.
fn one_group(instruments: &[Instrument]) -> Result<Option<&Instrument>, SourceError> {
    let Some(first) = instruments.first() else { return Ok(None) };
    if let Some(other) =
        instruments.iter().find(|i| i.asset_class != first.asset_class || !i.region.eq_ignore_ascii_case(&first.region))
    {
        return Err(SourceError::Invalid(format!(
            "one iTick batch takes one asset class and region: {} ({} {}) and {} ({} {})",
            first.symbol,
            first.asset_class.as_str(),
            first.region,
            other.symbol,
            other.asset_class.as_str(),
            other.region
        )));
    }
    Ok(Some(first))
}

/// The distinct codes of a chunk, comma-separated.
fn codes(instruments: &[Instrument]) -> String {
    let mut codes: Vec<&str> = Vec::with_capacity(instruments.len());
    for instrument in instruments {
        if !codes.iter().any(|c| c.eq_ignore_ascii_case(&instrument.code)) {
            codes.push(&instrument.code);
        }
    }
    codes.join(",")
}

#[async_trait::async_trait]
impl MarketSource for ItickSource {
    fn name(&self) -> &'static str {
        "itick"
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        one_group(instruments)?;
        let mut quotes = Vec::with_capacity(instruments.len());
        for chunk in instruments.chunks(BATCH_LIMIT) {
            quotes.extend(self.quotes_batch(chunk, Utc::now()).await?);
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
        let limit = limit.min(KLINE_LIMIT);
        let mut extra = vec![("kType", interval.itick_ktype().to_string()), ("limit", limit.to_string())];
        if let Some(end) = end {
            extra.push(("et", upstream_end(interval, end).timestamp_millis().to_string()));
        }
        let data = self.single(instrument, "kline", &extra).await?;
        let items = match &data {
            Value::Array(items) => items.as_slice(),
            // The batch shape `{code: [bars]}`.
            Value::Object(map) => {
                let wanted = normalize_code(&instrument.code);
                match map.iter().find(|(k, _)| normalize_code(k) == wanted).map(|(_, v)| v) {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => {
                        return Err(SourceError::Invalid(format!("unexpected kline answer for {}", instrument.symbol)));
                    }
                }
            }
            _ => return Err(SourceError::Invalid(format!("unexpected kline answer for {}", instrument.symbol))),
        };
        Ok(self.bars(items, instrument, end, limit))
    }

    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        let data = self.single(instrument, "depth", &[]).await?;
        let book = unwrap_single(&data, instrument, "a")
            .or_else(|| unwrap_single(&data, instrument, "b"))
            .ok_or_else(|| SourceError::Invalid(format!("unexpected depth answer for {}", instrument.symbol)))?;
        self.book(book, instrument, levels)
    }

    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let data = self.single(instrument, "tick", &[]).await?;
        let raw = unwrap_single(&data, instrument, "ld")
            .ok_or_else(|| SourceError::Invalid(format!("unexpected tick answer for {}", instrument.symbol)))?;
        match parse_tick(raw, instrument, Utc::now()) {
            Ok(tick) => Ok(vec![tick]),
            Err(why) => {
                self.reject("tick", instrument.symbol.as_str(), &why);
                Ok(Vec::new())
            }
        }
    }

    /// `/{asset}/depths`: one call per chunk of codes.
    async fn order_books(&self, instruments: &[Instrument], levels: usize) -> Result<Vec<OrderBook>, SourceError> {
        let Some(first) = one_group(instruments)? else { return Ok(Vec::new()) };
        let mut books = Vec::with_capacity(instruments.len());
        for chunk in instruments.chunks(BATCH_LIMIT) {
            let query = [("region", first.region.clone()), ("codes", codes(chunk))];
            let data = self.call(&format!("/{}/depths", asset_prefix(first.asset_class)), &query).await?;
            let by_code = index_by_code(&data, false);
            for instrument in chunk {
                if let Some(raw) = by_code.get(&normalize_code(&instrument.code)) {
                    // One bad book does not fail the others.
                    if let Ok(book) = self.book(raw, instrument, levels) {
                        books.push(book);
                    }
                }
            }
        }
        Ok(books)
    }

    /// `/{asset}/klines`: one call per chunk of codes.
    async fn latest_klines(
        &self,
        instruments: &[Instrument],
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<(Symbol, Vec<Kline>)>, SourceError> {
        let Some(first) = one_group(instruments)? else { return Ok(Vec::new()) };
        let limit = limit.clamp(1, KLINE_LIMIT);
        let mut series = Vec::with_capacity(instruments.len());
        for chunk in instruments.chunks(BATCH_LIMIT) {
            let query = [
                ("region", first.region.clone()),
                ("codes", codes(chunk)),
                ("kType", interval.itick_ktype().to_string()),
                ("limit", limit.to_string()),
            ];
            let data = self.call(&format!("/{}/klines", asset_prefix(first.asset_class)), &query).await?;
            let Value::Object(map) = &data else {
                return Err(SourceError::Invalid("unexpected batch kline answer".into()));
            };
            let by_code: HashMap<String, &Value> = map.iter().map(|(k, v)| (normalize_code(k), v)).collect();
            for instrument in chunk {
                if let Some(Value::Array(items)) = by_code.get(&normalize_code(&instrument.code)) {
                    series.push((instrument.symbol.clone(), self.bars(items, instrument, None, limit)));
                }
            }
        }
        Ok(series)
    }

    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        self.splits_of(instrument).await
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        self.snapshot(instrument, from, to).await
    }
}

#[cfg(test)]
mod tests;
