//! The iTick REST adapter (`https://api.itick.org`; protocol notes in `shared/itick.md`).
//!
//! One `ItickSource` per process: it owns a pooled HTTPS client and a client-side token bucket
//! that keeps every call of the instance under the plan's per-minute quota. Each call:
//!
//! 1. waits for a token (bounded by the request timeout, else `Unavailable`);
//! 2. sends `GET {base}/{asset}/{endpoint}?…` with headers `token` and `accept`;
//! 3. retries 429, 5xx, timeouts and connection failures with exponential backoff and full jitter
//!    (honouring `Retry-After`), up to `max_retries` times, then answers `Unavailable`; but only
//!    while the request's upstream budget (`market::health`) leaves time for the wait and
//!    another attempt: a retry that cannot finish in time is not started;
//! 4. opens the `{code, msg, data}` envelope, maps `data` to domain types (exact decimals: JSON
//!    numbers go through their shortest round-trip text, never through arithmetic on `f64`);
//! 5. validates every item and drops (and counts, and logs) the ones that make no sense: a
//!    price of zero, a high below the low, a timestamp in the future. Bad data is never served.
//!
//! The parsing and validation functions are pure and take `now` so they can be unit-tested.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::{StatusCode, header};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::market::{
    corporate::{CorporateAction, FundamentalPoint},
    source::{MarketSource, SourceError},
    types::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick, TickDirection, TradingStatus},
};
use crate::{
    config::Secret,
    reference::{Symbol, service::AssetClass},
};

/// Splits (`/stock/split`, cached per region) and the fundamentals snapshot (`/stock/info`).
pub mod reference;
/// The WebSocket stream (`MarketStream`): connections, plan, wire format, stats.
pub mod stream;

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

/// Backoff of retries: full jitter over `min(CAP, BASE * 2^attempt)`.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How far in the future a timestamp may be (clock skew) before the item is rejected.
const MAX_CLOCK_SKEW_MS: i64 = 5_000;

const UNAUTHORIZED: &str = "iTick rejected the token (check ITICK_TOKEN)";

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

/// reqwest is built with `rustls-no-provider`: the process must install a rustls crypto provider
/// (ring) before building any `reqwest::Client`, or the build panics. Idempotent; safe to call
/// from anywhere, any number of times.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct ItickSource {
    client: reqwest::Client,
    base_url: String,
    token: Secret<String>,
    timeout: Duration,
    max_retries: u32,
    limiter: Mutex<TokenBucket>,
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
        let base_url = config.base_url.trim().trim_end_matches('/').to_owned();
        let parsed =
            url::Url::parse(&base_url).map_err(|e| anyhow::anyhow!("invalid iTick base URL `{base_url}`: {e}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "invalid iTick base URL `{base_url}`: expected http:// or https://"
        );
        anyhow::ensure!(!config.token.expose().trim().is_empty(), "the iTick token is empty");
        anyhow::ensure!(config.requests_per_minute > 0, "the iTick requests per minute must be at least 1");
        anyhow::ensure!(!config.timeout.is_zero(), "the iTick timeout must be positive");
        header::HeaderValue::from_str(config.token.expose())
            .map_err(|_| anyhow::anyhow!("the iTick token contains characters not allowed in an HTTP header"))?;
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3).min(config.timeout))
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("finql/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base_url,
            token: config.token,
            timeout: config.timeout,
            max_retries: config.max_retries,
            limiter: Mutex::new(TokenBucket::per_minute(config.requests_per_minute, Instant::now())),
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

    fn reject(&self, what: &str, symbol: &str, why: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(source = "itick", %symbol, what, why, "rejected an item from iTick");
    }

    /// Waits for a token of the client-side rate limiter.
    async fn acquire(&self) -> Result<(), SourceError> {
        let reserved = self.bucket().reserve(Instant::now(), self.timeout);
        match reserved {
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Err(wait) => Err(SourceError::Unavailable(format!(
                "client-side rate limit: the next iTick request slot is {} ms away",
                wait.as_millis()
            ))),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One GET with retries; returns the envelope's `data`.
    async fn call(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let url = format!("{}{path}", self.base_url);
        let mut last = String::new();
        for attempt in 0..=self.max_retries {
            self.acquire().await?;
            let (retry_after, why) = match self.attempt(&url, query).await {
                Ok(data) => return Ok(data),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry { after, why }) => (after, why),
            };
            last = why;
            if attempt == self.max_retries {
                break;
            }
            let delay = match retry_after {
                Some(after) if after > self.timeout => {
                    return Err(SourceError::Unavailable(format!(
                        "iTick {path}: {last}; asked to retry after {} s",
                        after.as_secs()
                    )));
                }
                Some(after) => after,
                None => backoff_delay(attempt, rand::random::<f64>()),
            };
            if let Some(deadline) = crate::market::health::deadline()
                && tokio::time::Instant::now() + delay >= deadline
            {
                return Err(SourceError::Unavailable(format!(
                    "iTick {path}: {last}; no time left in the budget to retry"
                )));
            }
            tracing::debug!(source = "itick", path, attempt, delay_ms = delay.as_millis() as u64, why = %last, "retrying");
            tokio::time::sleep(delay).await;
        }
        tracing::warn!(source = "itick", path, attempts = self.max_retries + 1, why = %last, "iTick unavailable");
        Err(SourceError::Unavailable(format!("iTick {path}: {last} (after {} attempts)", self.max_retries + 1)))
    }

    async fn attempt(&self, url: &str, query: &[(&str, String)]) -> Result<Value, Attempt> {
        let response = self
            .client
            .get(url)
            .header("token", self.token.expose().as_str())
            .header(header::ACCEPT, "application/json")
            .query(query)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Attempt::Fail(SourceError::Unauthorized(UNAUTHORIZED.to_owned())));
        }
        if status == StatusCode::NOT_FOUND {
            return Err(Attempt::Fail(SourceError::NotFound(format!(
                "iTick answered 404 for {}",
                response.url().path()
            ))));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Whoever else shares the quota is using it: stop bursting.
            self.bucket().drain(Instant::now());
            return Err(Attempt::Retry {
                after: retry_after(response.headers()),
                why: "HTTP 429 (rate limited)".into(),
            });
        }
        if status.is_server_error() {
            return Err(Attempt::Retry {
                after: retry_after(response.headers()),
                why: format!("HTTP {}", status.as_u16()),
            });
        }
        if !status.is_success() {
            return Err(Attempt::Fail(SourceError::Unavailable(format!("iTick answered HTTP {}", status.as_u16()))));
        }
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fail(SourceError::Invalid(format!("iTick's answer is not JSON: {e}"))))?;
        open_envelope(body)
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
        // Documented oldest first; sort anyway, and keep the last of any duplicate bar.
        bars.sort_by_key(|bar| bar.time);
        bars.dedup_by(|later, earlier| {
            let same = later.time == earlier.time;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        if bars.len() > limit {
            bars.drain(..bars.len() - limit);
        }
        bars
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
        let timestamp = match book.get("t") {
            Some(t) if !t.is_null() => match required_time(book, "t", now) {
                Ok(t) => t,
                Err(why) => {
                    self.reject("depth", instrument.symbol.as_str(), &why);
                    return Err(SourceError::Invalid(format!("depth of {}: {why}", instrument.symbol)));
                }
            },
            _ => now,
        };
        Ok(OrderBook { symbol: instrument.symbol.clone(), bids, asks, timestamp })
    }
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

enum Attempt {
    Retry { after: Option<Duration>, why: String },
    Fail(SourceError),
}

fn transport_error(e: &reqwest::Error) -> Attempt {
    if e.is_builder() {
        return Attempt::Fail(SourceError::Invalid(format!("cannot build the iTick request: {e}")));
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // reqwest's Display includes the URL and its query, never the headers (so not the token).
    Attempt::Retry { after: None, why: format!("{kind}: {e}") }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by APIs like this one; ignored).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base * 2^attempt)]`, `unit`
/// being a uniform random number in `[0, 1)`. `attempt` counts from 0 (the first retry).
pub fn backoff_delay(attempt: u32, unit: f64) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX)).min(BACKOFF_CAP);
    let unit = if unit.is_nan() { 0.0 } else { unit.clamp(0.0, 1.0) };
    ceiling.mul_f64(unit)
}

/// The URL prefix of an asset class.
pub fn asset_prefix(class: AssetClass) -> &'static str {
    match class {
        AssetClass::Stock => "stock",
        AssetClass::Fund => "fund",
        AssetClass::Forex => "forex",
        AssetClass::Index => "indices",
        AssetClass::Crypto => "crypto",
        AssetClass::Future => "future",
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------------------------

/// A token bucket with reservations: a caller takes a token now, or reserves the next one and
/// sleeps until it is due (tokens may go negative: that is the queue of waiting callers).
///
/// Sized so that no 60 s window ever sees more than `per_minute` calls: a burst of a tenth of the
/// quota (at least 1), then the rest of the quota spread over the minute. Any window holds at
/// most `capacity + rate * 60 = per_minute` takes. (A bucket of a full minute plus a refill of a
/// minute a minute would allow twice the quota in the first minute.)
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    /// Tokens per second.
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn per_minute(per_minute: u32, now: Instant) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        let capacity = (per_minute / 10.0).floor().clamp(1.0, (per_minute - 1.0).max(1.0));
        let rate = (per_minute - capacity).max(1.0) / 60.0;
        Self::new(capacity, rate, now)
    }

    pub fn new(capacity: f64, rate_per_second: f64, now: Instant) -> Self {
        Self { capacity, rate: rate_per_second, tokens: capacity, last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Takes a token: `Ok(wait)` with how long the caller must wait before using it (zero when
    /// one was available), or `Err(wait)` without taking anything when the wait would exceed
    /// `max_wait`.
    pub fn reserve(&mut self, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(Duration::ZERO);
        }
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
        if wait > max_wait {
            return Err(wait);
        }
        self.tokens -= 1.0;
        Ok(wait)
    }

    /// Forgets the burst allowance (after the upstream answered 429): later calls are paced at
    /// the refill rate.
    pub fn drain(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.min(0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope and values
// ---------------------------------------------------------------------------------------------

/// `{"code": 0, "msg": …, "data": …}` -> `data`; other codes -> the error they mean.
fn open_envelope(mut body: Value) -> Result<Value, Attempt> {
    let Some(object) = body.as_object_mut() else {
        return Err(Attempt::Fail(SourceError::Invalid("iTick's answer is not a JSON object".into())));
    };
    let code = match object.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(code) = code else {
        return Err(Attempt::Fail(SourceError::Invalid("iTick's answer has no numeric `code`".into())));
    };
    if code == 0 {
        return Ok(object.remove("data").unwrap_or(Value::Null));
    }
    let msg = match object.get("msg") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Err(envelope_error(code, &msg))
}

/// Classifies an envelope error. iTick's codes are only documented as `E001 not found`,
/// `E002 auth failed`, `E003 exceeding the maximum subscription limit`, inside `msg`; the numeric
/// `code` may also carry an HTTP-like status.
fn envelope_error(code: i64, msg: &str) -> Attempt {
    let lower = msg.to_ascii_lowercase();
    let shown = if msg.is_empty() { format!("error code {code}") } else { format!("{msg} (code {code})") };
    if lower.contains("e003") || lower.contains("subscription limit") {
        return Attempt::Fail(SourceError::Unavailable(format!("iTick: {shown}")));
    }
    if lower.contains("e002")
        || lower.contains("auth")
        || lower.contains("token")
        || lower.contains("forbidden")
        || lower.contains("permission")
        || code == 401
        || code == 403
    {
        return Attempt::Fail(SourceError::Unauthorized(format!("{UNAUTHORIZED}: {shown}")));
    }
    if lower.contains("e001") || lower.contains("not found") || lower.contains("not exist") || code == 404 {
        return Attempt::Fail(SourceError::NotFound(format!("iTick: {shown}")));
    }
    if code == 429 || lower.contains("too many") || lower.contains("rate limit") || lower.contains("frequen") {
        return Attempt::Retry { after: None, why: format!("rate limited: {shown}") };
    }
    Attempt::Fail(SourceError::Unavailable(format!("iTick: {shown}")))
}

/// An exact decimal from a JSON number or numeric string. JSON numbers are printed by serde_json
/// as the shortest text that round-trips (189.98 prints `189.98`), so no binary noise creeps in.
pub fn decimal(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).ok().map(|d| d.normalize())
}

/// Milliseconds since the epoch (number or numeric string) as UTC.
pub fn millis(value: &Value) -> Option<DateTime<Utc>> {
    let ms = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64))?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    DateTime::from_timestamp_millis(ms)
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn required_decimal(object: &Value, field: &str) -> Result<Decimal, String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(format!("missing `{field}`")),
        Some(v) => decimal(v).ok_or_else(|| format!("`{field}` is not a number: {v}")),
    }
}

/// An optional field: absent or null means `default`; present but unreadable is an error.
fn optional_decimal(object: &Value, field: &str, default: Decimal) -> Result<Decimal, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => decimal(v).ok_or_else(|| format!("`{field}` is not a number: {v}")),
    }
}

pub(crate) fn required_time(object: &Value, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let time = match object.get(field) {
        None | Some(Value::Null) => return Err(format!("missing `{field}`")),
        Some(v) => millis(v).ok_or_else(|| format!("`{field}` is not a time in ms: {v}"))?,
    };
    if time.timestamp_millis() > now.timestamp_millis() + MAX_CLOCK_SKEW_MS {
        return Err(format!("`{field}` {} is in the future", time.to_rfc3339()));
    }
    Ok(time)
}

/// Upper case, without a `$REGION` suffix, and for all-digit codes without leading zeros (iTick
/// and exchanges disagree on `700` vs `00700`).
pub fn normalize_code(code: &str) -> String {
    let code = code.split('$').next().unwrap_or(code).trim().to_ascii_uppercase();
    if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = code.trim_start_matches('0');
        return if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() };
    }
    code
}

/// Key under which a lone quote object (not wrapped in a map) is indexed.
const SOLE: &str = "\u{0}sole";

/// Indexes a batch answer by normalised code. Tolerates the documented map `code -> item`, maps
/// keyed `CODE$REGION`, arrays of items carrying `s`, and (when one code was asked for) the bare
/// item itself.
fn index_by_code(data: &Value, single: bool) -> HashMap<String, &Value> {
    let mut index = HashMap::new();
    let symbol_of = |item: &Value| item.get("s").and_then(Value::as_str).map(normalize_code);
    match data {
        Value::Object(map) if looks_like_item(map) => {
            match symbol_of(data) {
                Some(code) => index.insert(code, data),
                None if single => index.insert(SOLE.to_owned(), data),
                None => None,
            };
        }
        Value::Object(map) => {
            for (key, item) in map {
                if item.is_object() {
                    index.insert(normalize_code(key), item);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Some(code) = symbol_of(item) {
                    index.insert(code, item);
                }
            }
        }
        _ => {}
    }
    index
}

/// A quote or tick itself rather than a map of them (codes are upper case; `ld` is a number).
fn looks_like_item(map: &serde_json::Map<String, Value>) -> bool {
    map.get("ld").is_some_and(|v| !v.is_object())
}

// ---------------------------------------------------------------------------------------------
// Domain mapping and validation
// ---------------------------------------------------------------------------------------------

pub(crate) fn parse_quote(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Quote, String> {
    let last = required_decimal(raw, "ld")?;
    let timestamp = required_time(raw, "t", now)?;
    let open = optional_decimal(raw, "o", Decimal::ZERO)?;
    let high = optional_decimal(raw, "h", Decimal::ZERO)?;
    let low = optional_decimal(raw, "l", Decimal::ZERO)?;
    let prev_close = optional_decimal(raw, "p", Decimal::ZERO)?;
    let volume = optional_decimal(raw, "v", Decimal::ZERO)?;
    let turnover = optional_decimal(raw, "tu", Decimal::ZERO)?;
    let trading_status = match raw.get("ts").and_then(int) {
        Some(1) => TradingStatus::Suspended,
        Some(2) => TradingStatus::Delisted,
        Some(3) => TradingStatus::CircuitBreaker,
        _ => TradingStatus::Normal,
    };
    if last <= Decimal::ZERO {
        return Err(format!("last price {last} is not positive"));
    }
    // Before the session's first trade open/high/low are 0: allowed, but never negative, and
    // consistent when present.
    for (name, value) in [("open", open), ("high", high), ("low", low), ("previous close", prev_close)] {
        if value < Decimal::ZERO {
            return Err(format!("{name} {value} is negative"));
        }
    }
    if high > Decimal::ZERO && low > Decimal::ZERO {
        if high < low {
            return Err(format!("high {high} is below low {low}"));
        }
        if open > Decimal::ZERO && (open > high || open < low) {
            return Err(format!("open {open} is outside [{low}, {high}]"));
        }
    }
    if volume < Decimal::ZERO || turnover < Decimal::ZERO {
        return Err("negative volume or turnover".into());
    }
    Ok(Quote {
        symbol: instrument.symbol.clone(),
        last,
        open,
        high,
        low,
        prev_close,
        volume,
        turnover,
        timestamp,
        trading_status,
        source: "itick",
        stale: false,
    })
}

pub(crate) fn parse_kline(raw: &Value, now: DateTime<Utc>) -> Result<Kline, String> {
    let kline = Kline {
        time: required_time(raw, "t", now)?,
        open: required_decimal(raw, "o")?,
        high: required_decimal(raw, "h")?,
        low: required_decimal(raw, "l")?,
        close: required_decimal(raw, "c")?,
        volume: optional_decimal(raw, "v", Decimal::ZERO)?,
        turnover: optional_decimal(raw, "tu", Decimal::ZERO)?,
    };
    validate_kline(&kline)?;
    Ok(kline)
}

/// Prices positive, `low <= open, close <= high`, volume and turnover not negative.
pub fn validate_kline(k: &Kline) -> Result<(), String> {
    if k.open <= Decimal::ZERO || k.high <= Decimal::ZERO || k.low <= Decimal::ZERO || k.close <= Decimal::ZERO {
        return Err(format!("non-positive price in bar at {}", k.time.to_rfc3339()));
    }
    if k.high < k.low {
        return Err(format!("high {} below low {} at {}", k.high, k.low, k.time.to_rfc3339()));
    }
    if k.high < k.open.max(k.close) || k.low > k.open.min(k.close) {
        return Err(format!(
            "open {} / close {} outside [{}, {}] at {}",
            k.open,
            k.close,
            k.low,
            k.high,
            k.time.to_rfc3339()
        ));
    }
    if k.volume < Decimal::ZERO || k.turnover < Decimal::ZERO {
        return Err(format!("negative volume or turnover at {}", k.time.to_rfc3339()));
    }
    Ok(())
}

pub(crate) fn parse_level(raw: &Value) -> Result<BookLevel, String> {
    let price = required_decimal(raw, "p")?;
    let volume = optional_decimal(raw, "v", Decimal::ZERO)?;
    if price <= Decimal::ZERO {
        return Err(format!("level price {price} is not positive"));
    }
    if volume < Decimal::ZERO {
        return Err(format!("level volume {volume} is negative"));
    }
    Ok(BookLevel { price, volume, orders: raw.get("o").and_then(int) })
}

pub(crate) fn parse_tick(raw: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<Tick, String> {
    let price = required_decimal(raw, "ld")?;
    let timestamp = required_time(raw, "t", now)?;
    let volume = optional_decimal(raw, "v", Decimal::ZERO)?;
    if price <= Decimal::ZERO {
        return Err(format!("trade price {price} is not positive"));
    }
    if volume < Decimal::ZERO {
        return Err(format!("trade volume {volume} is negative"));
    }
    let direction = match raw.get("d").and_then(int) {
        Some(0) => Some(TickDirection::Neutral),
        Some(1) => Some(TickDirection::Sell),
        Some(2) => Some(TickDirection::Buy),
        _ => None,
    };
    Ok(Tick { symbol: instrument.symbol.clone(), price, volume, timestamp, direction })
}

/// The single item of a single-instrument answer; tolerates it wrapped in a one-entry map or
/// array (as batch endpoints answer).
fn unwrap_single<'a>(data: &'a Value, instrument: &Instrument, item_key: &str) -> Option<&'a Value> {
    match data {
        Value::Object(map) if map.get(item_key).is_some_and(|v| !v.is_object()) => Some(data),
        Value::Object(map) => {
            let wanted = normalize_code(&instrument.code);
            map.iter().find(|(k, _)| normalize_code(k) == wanted).map(|(_, v)| v)
        }
        Value::Array(items) => items.iter().find(|item| item.get(item_key).is_some()),
        _ => None,
    }
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
            extra.push(("et", end.timestamp_millis().to_string()));
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
