//! A fake iTick REST server for tests: the real protocol (`shared/itick.md`) on 127.0.0.1, with
//! deterministic data and knobs to make it fail.
//!
//! Speaks `GET /{stock|fund|forex|indices|crypto|future}/{quote|quotes|tick|ticks|depth|depths|kline|klines}`,
//! and `GET /stock/split` (paged, see `SPLITS`) and `GET /stock/info`,
//! with the `{code, msg, data}` envelope, and requires the header `token: test-token` (else HTTP
//! 401). Each code's price is derived from the code (`100 + sum of bytes % 400`, with cents)
//! unless a test sets it; klines have consistent OHLC; depth levels come in a scrambled order,
//! as a client must not rely on them being sorted. Numbers are JSON numbers, as upstream sends.
//!
//! Start finql against it with `ITICK_BASE_URL=fake.base_url()` and `ITICK_TOKEN=test-token`.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::helpers::fake_server::FakeServer;

/// The token the fake accepts.
pub const TOKEN: &str = "test-token";

const ASSETS: &[&str] = &["stock", "fund", "forex", "indices", "crypto", "future"];
const DEPTH_LEVELS: i64 = 10;

/// How `/quotes` shapes its `data` (the docs say a map by code; variants have been seen).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuotesShape {
    /// `{"AAPL": {...}}`
    #[default]
    Map,
    /// `{"AAPL$US": {...}}`
    MapWithRegion,
    /// `[{"s": "AAPL", ...}]`
    Array,
}

#[derive(Default)]
struct Controls {
    /// Day bars planted by a test (code → start ms → o, h, l, c, v); once any is, day klines
    /// come from here only (`plant_day`).
    days: Option<HashMap<String, std::collections::BTreeMap<i64, [Decimal; 5]>>>,
    requests: Vec<(String, HashMap<String, String>)>,
    /// The `traceparent` header of each request, in order (W3C Trace Context).
    traceparents: Vec<Option<String>>,
    fail_http: VecDeque<u16>,
    fail_envelope: VecDeque<(i64, String)>,
    down: bool,
    delay: Duration,
    prices: HashMap<String, Decimal>,
    unknown: HashSet<String>,
    invalid_bar: bool,
    klines_newest_first: bool,
    /// `et` includes the bar starting exactly at it (the default: bars start before `et`).
    klines_through_et: bool,
    /// Start (ms) of the first bar the fake has: earlier bars do not exist.
    history_start: Option<i64>,
    /// No bar starts on a Saturday or Sunday (UTC), as for a stock: "the last `limit` bars"
    /// then reaches back past each weekend.
    weekend_gaps: bool,
    quotes_shape: QuotesShape,
}

/// The controls, shared by the test and the server's handlers.
type Shared = crate::helpers::fake_server::Controls<Controls>;

#[allow(dead_code)]
pub struct FakeItick {
    pub addr: SocketAddr,
    state: Arc<Shared>,
    _server: FakeServer,
}

#[allow(dead_code)]
impl FakeItick {
    pub async fn start() -> Self {
        let state = Arc::new(Shared::default());
        let app = Router::new().route("/{asset}/{endpoint}", get(handle)).with_state(state.clone());
        let server = FakeServer::serve(app, "fake iTick").await;
        Self { addr: server.addr, state, _server: server }
    }

    /// `http://127.0.0.1:PORT`, for `ITICK_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An adapter configuration pointing here: right token, short timeout, generous quota.
    pub fn config(&self) -> finql::sources::itick::ItickConfig {
        finql::sources::itick::ItickConfig {
            base_url: self.base_url(),
            token: finql::config::Secret::new(TOKEN.to_owned()),
            timeout: Duration::from_secs(2),
            requests_per_minute: 60_000,
            max_retries: 3,
        }
    }

    /// Requests received on `path` (e.g. `/stock/quotes`), failed ones included.
    pub fn calls(&self, path: &str) -> usize {
        self.state.lock().requests.iter().filter(|(p, _)| p == path).count()
    }

    pub fn total_calls(&self) -> usize {
        self.state.lock().requests.len()
    }

    /// The `traceparent` header of every request received, in order (`None` where absent).
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.state.lock().traceparents.clone()
    }

    /// Every request received, in order: path and query parameters.
    pub fn requests(&self) -> Vec<(String, HashMap<String, String>)> {
        self.state.lock().requests.clone()
    }

    pub fn reset_calls(&self) {
        self.state.lock().requests.clear();
    }

    /// Answers the next `n` requests with HTTP `status` (429 carries `Retry-After: 0`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().fail_http.extend(std::iter::repeat_n(status, n));
    }

    /// Answers the next `n` requests with HTTP 200 and the envelope `{"code": code, "msg": msg}`.
    pub fn fail_envelope_next(&self, n: usize, code: i64, msg: &str) {
        self.state.lock().fail_envelope.extend(std::iter::repeat_n((code, msg.to_owned()), n));
    }

    /// While down, every request gets HTTP 503.
    pub fn set_down(&self, down: bool) {
        self.state.lock().down = down;
    }

    /// Delay before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// The price of `code` from now on (quotes' last, ticks, the level depth is built around,
    /// and the level klines wiggle around).
    pub fn set_price(&self, code: &str, price: Decimal) {
        self.state.lock().prices.insert(code.to_ascii_uppercase(), price);
    }

    /// From now on, day klines (`kType=8`) hold only the bars planted with this: `code`'s bar
    /// of `day` (`[open, high, low, close, volume]`), starting at midnight UTC.
    pub fn plant_day(&self, code: &str, day: chrono::NaiveDate, ohlcv: [&str; 5]) {
        let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
        let bar = ohlcv.map(|v| v.parse::<Decimal>().unwrap());
        let mut controls = self.state.lock();
        let days = controls.days.get_or_insert_default();
        days.entry(code.to_ascii_uppercase()).or_default().insert(start, bar);
    }

    /// The price the fake serves for `code`.
    pub fn price(&self, code: &str) -> Decimal {
        price_of(&self.state.lock(), code)
    }

    /// Makes `code` unknown: absent from batch answers, `data: null` from single ones.
    pub fn set_unknown(&self, code: &str) {
        self.state.lock().unknown.insert(code.to_ascii_uppercase());
    }

    /// One bar in the middle of every kline answer gets a high below its low.
    pub fn serve_invalid_bar(&self, on: bool) {
        self.state.lock().invalid_bar = on;
    }

    /// Klines newest first (the docs say oldest first; clients should sort anyway).
    /// Makes history begin at `start_ms`: kline answers hold no bar before it.
    pub fn set_history_start(&self, start_ms: i64) {
        self.state.lock().history_start = Some(start_ms);
    }

    /// Whether a kline answer includes the bar that starts exactly at `et` (iTick does not say;
    /// by default the fake answers the bars starting before `et`).
    pub fn serve_klines_through_et(&self, on: bool) {
        self.state.lock().klines_through_et = on;
    }

    /// Klines only on weekdays (UTC), like a market closed at weekends.
    pub fn serve_weekend_gaps(&self, on: bool) {
        self.state.lock().weekend_gaps = on;
    }

    pub fn serve_klines_newest_first(&self, on: bool) {
        self.state.lock().klines_newest_first = on;
    }

    pub fn set_quotes_shape(&self, shape: QuotesShape) {
        self.state.lock().quotes_shape = shape;
    }
}

fn envelope(data: Value) -> Response {
    axum::Json(json!({"code": 0, "msg": null, "data": data})).into_response()
}

fn envelope_error(code: i64, msg: &str) -> Response {
    axum::Json(json!({"code": code, "msg": msg, "data": null})).into_response()
}

async fn handle(
    State(state): State<Arc<Shared>>,
    Path((asset, endpoint)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{asset}/{endpoint}");
    let delay = {
        let mut controls = state.lock();
        controls.requests.push((path, query.clone()));
        controls.traceparents.push(headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned));
        controls.delay
    };
    if !delay.is_zero() {
        // A slow upstream, as the test set it: real time, as the server's timeouts are.
        tokio::time::sleep(delay).await;
    }
    let mut controls = state.lock();
    if controls.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    if let Some(status) = controls.fail_http.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response =
            (status, axum::Json(json!({"code": status.as_u16(), "msg": "injected failure", "data": null})))
                .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        }
        return response;
    }
    if headers.get("token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": 401, "msg": "invalid token", "data": null})))
            .into_response();
    }
    if let Some((code, msg)) = controls.fail_envelope.pop_front() {
        return envelope_error(code, &msg);
    }
    if !ASSETS.contains(&asset.as_str()) {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    let Some(region) = query.get("region").filter(|r| !r.is_empty()) else {
        return envelope_error(400, "region is required");
    };
    let now = chrono::Utc::now().timestamp_millis();
    let single = || query.get("code").filter(|c| !c.is_empty()).map(|c| c.to_ascii_uppercase());
    let batch = || -> Option<Vec<String>> {
        let codes: Vec<String> =
            query.get("codes")?.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
        (!codes.is_empty()).then_some(codes)
    };
    let controls = &mut *controls;
    match endpoint.as_str() {
        "quote" | "tick" | "depth" | "kline" => {
            let Some(code) = single() else { return envelope_error(400, "code is required") };
            if controls.unknown.contains(&code) {
                return envelope(Value::Null);
            }
            let item = match endpoint.as_str() {
                "quote" => quote(controls, &code, now),
                "tick" => tick(controls, &code, now),
                "depth" => depth(controls, &code),
                _ => match klines(controls, &code, &query, now) {
                    Ok(bars) => bars,
                    Err(msg) => return envelope_error(400, msg),
                },
            };
            envelope(item)
        }
        "quotes" | "ticks" | "depths" | "klines" => {
            let Some(codes) = batch() else { return envelope_error(400, "codes is required") };
            let mut map = serde_json::Map::new();
            for code in codes.iter().filter(|c| !controls.unknown.contains(*c)) {
                let item = match endpoint.as_str() {
                    "quotes" => quote(controls, code, now),
                    "ticks" => tick(controls, code, now),
                    "depths" => depth(controls, code),
                    _ => match klines(controls, code, &query, now) {
                        Ok(bars) => bars,
                        Err(msg) => return envelope_error(400, msg),
                    },
                };
                map.insert(code.clone(), item);
            }
            if endpoint == "quotes" {
                match controls.quotes_shape {
                    QuotesShape::Map => {}
                    QuotesShape::MapWithRegion => {
                        return envelope(Value::Object(
                            map.into_iter().map(|(code, item)| (format!("{code}${region}"), item)).collect(),
                        ));
                    }
                    QuotesShape::Array => return envelope(Value::Array(map.into_iter().map(|(_, v)| v).collect())),
                }
            }
            envelope(Value::Object(map))
        }
        "split" if asset == "stock" => split_page(region, &query),
        "info" if asset == "stock" => {
            let Some(code) = single() else { return envelope_error(400, "code is required") };
            if controls.unknown.contains(&code) {
                return envelope(Value::Null);
            }
            envelope(info(controls, &code))
        }
        _ => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}

/// Splits the fake knows: (region, code as iTick writes it, ex-date, ratio `from:to`). One has
/// a malformed ratio, which a client must skip.
pub const SPLITS: &[(&str, &str, Ymd, &str)] = &[
    ("US", "AAPL", (2020, 8, 31), "1:4"),
    ("US", "TSLA", (2020, 8, 31), "1:5"),
    ("US", "AMZN", (2022, 6, 6), "1:20"),
    ("US", "GOOGL", (2022, 7, 18), "1:20"),
    ("US", "TSLA", (2022, 8, 25), "1:3"),
    ("US", "BROKEN", (2023, 1, 3), "two-for-one"),
    ("US", "NVDA", (2024, 6, 10), "1:10"),
    ("HK", "00700", (2014, 5, 15), "1:5"),
];
/// (year, month, day).
type Ymd = (i32, u32, u32);
/// Items per page of `/stock/split`, small so that clients must page.
const SPLIT_PAGE_SIZE: usize = 3;

/// `/stock/split?region=&page=` (pages numbered from 1): ex-dates are midnight at the exchange.
fn split_page(region: &str, query: &HashMap<String, String>) -> Response {
    let zone: chrono_tz::Tz = match region {
        "US" => chrono_tz::America::New_York,
        "HK" => chrono_tz::Asia::Hong_Kong,
        _ => chrono_tz::Asia::Shanghai,
    };
    let items: Vec<Value> = SPLITS
        .iter()
        .filter(|s| s.0 == region)
        .map(|&(r, code, (y, m, d), ratio)| {
            let midnight = chrono::TimeZone::with_ymd_and_hms(&zone, y, m, d, 0, 0, 0).unwrap();
            json!({"d": midnight.timestamp_millis(), "r": r, "n": format!("{code} Inc"), "c": code, "v": ratio})
        })
        .collect();
    let total_pages = items.len().div_ceil(SPLIT_PAGE_SIZE).max(1);
    let page = query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let content: Vec<Value> = items.into_iter().skip((page - 1) * SPLIT_PAGE_SIZE).take(SPLIT_PAGE_SIZE).collect();
    envelope(json!({"content": content, "page": page, "totalPages": total_pages, "size": SPLIT_PAGE_SIZE}))
}

/// `/stock/info`: shares `1e9 + sum of code bytes × 1e6`, market cap at the fake's price, and a
/// P/E of a fifth of the price.
fn info(controls: &Controls, code: &str) -> Value {
    let price = price_of(controls, code);
    let shares = Decimal::from(1_000_000_000i64 + code.bytes().map(i64::from).sum::<i64>() * 1_000_000);
    json!({
        "c": code, "n": format!("{code} Inc"), "t": "stock", "e": "NASDAQ", "s": "Technology",
        "i": "Software", "r": "US", "bd": "A company of the fake iTick.", "wu": "https://example.com",
        "mcb": num((price * shares).round_dp(0)), "tso": num(shares), "pet": num((price / Decimal::from(5)).round_dp(2)),
        "fcc": "USD",
    })
}

fn price_of(controls: &Controls, code: &str) -> Decimal {
    let code = code.to_ascii_uppercase();
    if let Some(price) = controls.prices.get(&code) {
        return *price;
    }
    let sum: i64 = code.bytes().map(i64::from).sum();
    Decimal::new((100 + sum % 400) * 100 + (sum * 37) % 100, 2)
}

/// A decimal as a JSON number, as iTick sends prices.
fn num(value: Decimal) -> Value {
    serde_json::from_str(&value.normalize().to_string()).expect("a decimal is a JSON number")
}

fn scaled(price: Decimal, permille: i64) -> Decimal {
    (price * Decimal::new(1000 + permille, 3)).round_dp(4)
}

fn quote(controls: &Controls, code: &str, now: i64) -> Value {
    let last = price_of(controls, code);
    let prev = scaled(last, -15);
    let volume: i64 = 1_000_000 + code.bytes().map(i64::from).sum::<i64>();
    json!({
        "s": code,
        "ld": num(last),
        "o": num(scaled(last, -10)),
        "h": num(scaled(last, 10)),
        "l": num(scaled(last, -20)),
        "p": num(prev),
        "t": now,
        "v": volume,
        "tu": num((last * Decimal::from(volume)).round_dp(2)),
        "ts": 0,
        "ch": num(last - prev),
        "chp": num(if prev.is_zero() { Decimal::ZERO } else { ((last - prev) * Decimal::ONE_HUNDRED / prev).round_dp(2) }),
    })
}

fn tick(controls: &Controls, code: &str, now: i64) -> Value {
    json!({"s": code, "ld": num(price_of(controls, code)), "t": now, "v": 100, "te": 0, "d": 2})
}

fn depth(controls: &Controls, code: &str) -> Value {
    let price = price_of(controls, code);
    let step = if price > Decimal::ONE { Decimal::new(1, 2) } else { (price / Decimal::ONE_HUNDRED).round_dp(6) };
    // Level k (1 = best) served in the order 3, 6, 9, 2, 5, … : clients must sort.
    let order: Vec<i64> = (0..DEPTH_LEVELS).map(|i| (i * 3) % DEPTH_LEVELS + 1).collect();
    let level = |k: i64, price: Decimal| json!({"po": k, "p": num(price), "v": 100 * k, "o": k});
    let asks: Vec<Value> = order.iter().map(|&k| level(k, price + step * Decimal::from(k))).collect();
    let bids: Vec<Value> = order.iter().map(|&k| level(k, price - step * Decimal::from(k))).collect();
    json!({"s": code, "a": asks, "b": bids})
}

fn ktype_ms(ktype: &str) -> Option<i64> {
    const MINUTE: i64 = 60_000;
    Some(match ktype {
        "1" => MINUTE,
        "2" => 5 * MINUTE,
        "3" => 15 * MINUTE,
        "4" => 30 * MINUTE,
        "5" => 60 * MINUTE,
        "6" => 120 * MINUTE,
        "7" => 240 * MINUTE,
        "8" => 1_440 * MINUTE,
        "9" => 10_080 * MINUTE,
        "10" => 43_200 * MINUTE, // 30 days: good enough for a fake
        _ => return None,
    })
}

/// `limit` bars (default 100, at most 1000) of `kType` starting before `et` (default now),
/// oldest first.
fn klines(controls: &Controls, code: &str, query: &HashMap<String, String>, now: i64) -> Result<Value, &'static str> {
    let len = query.get("kType").and_then(|k| ktype_ms(k)).ok_or("kType must be 1 to 10")?;
    let limit = match query.get("limit") {
        Some(l) => l.parse::<i64>().map_err(|_| "limit must be a number")?.clamp(1, 1000),
        None => 100,
    };
    let end = match query.get("et") {
        Some(et) => et.parse::<i64>().map_err(|_| "et must be milliseconds")?,
        None => now,
    };
    if query.get("kType").map(String::as_str) == Some("8")
        && let Some(days) = &controls.days
    {
        let before = if controls.klines_through_et { end + 1 } else { end };
        let planted = days.get(&code.to_ascii_uppercase());
        let mut bars: Vec<Value> = planted
            .map(|p| {
                p.range(..before)
                    .rev()
                    .take(limit as usize)
                    .map(|(t, [o, h, l, c, v])| json!({"t": t, "o": num(*o), "h": num(*h), "l": num(*l), "c": num(*c), "v": num(*v)}))
                    .collect()
            })
            .unwrap_or_default();
        if !controls.klines_newest_first {
            bars.reverse();
        }
        return Ok(Value::Array(bars));
    }
    let price = price_of(controls, code);
    let last_start = if controls.klines_through_et { end } else { end - 1 }.div_euclid(len) * len;
    let weekday = |start: i64| {
        let day = chrono::DateTime::from_timestamp_millis(start).map(|at| chrono::Datelike::weekday(&at));
        !matches!(day, Some(chrono::Weekday::Sat | chrono::Weekday::Sun))
    };
    // Bar starts, newest first, until `limit` bars exist (a year of slots at most).
    let starts: Vec<i64> = (0..limit.max(1) * 400)
        .map(|back| last_start - back * len)
        .filter(|start| !controls.weekend_gaps || weekday(*start))
        .take(limit as usize)
        .collect();
    let mut bars: Vec<Value> = starts
        .into_iter()
        .rev()
        .map(|start| {
            let back = (last_start - start) / len;
            let n = start.div_euclid(len);
            let open = scaled(price, (n * 7).rem_euclid(11) - 5);
            let close = scaled(price, (n * 13).rem_euclid(11) - 5);
            let mut high = (open.max(close) * Decimal::new(1002, 3))
                .round_dp_with_strategy(4, RoundingStrategy::ToPositiveInfinity);
            let mut low = (open.min(close) * Decimal::new(998, 3))
                .round_dp_with_strategy(4, RoundingStrategy::ToNegativeInfinity);
            if controls.invalid_bar && back == limit / 2 {
                std::mem::swap(&mut high, &mut low);
            }
            let volume = 1_000 + n.rem_euclid(500);
            json!({
                "t": start, "o": num(open), "h": num(high), "l": num(low), "c": num(close),
                "v": volume, "tu": num((close * Decimal::from(volume)).round_dp(2)),
            })
        })
        .filter(|bar: &Value| controls.history_start.is_none_or(|first| bar["t"].as_i64() >= Some(first)))
        .collect();
    if controls.klines_newest_first {
        bars.reverse();
    }
    Ok(Value::Array(bars))
}
