//! A fake Polygon (Massive) REST server for tests: the real protocol (`shared/polygon.md`) on
//! 127.0.0.1, with deterministic data and knobs to make it fail.
//!
//! Speaks the v2 snapshots (stocks; forex and crypto with millisecond times; tickers a test
//! made it `forget` left out), the v3 indices
//! snapshot (per-item errors for unknown tickers), aggregates (newest first with `sort=desc`,
//! `limit` counting minute base aggregates, pages of `PAGE` bars whose absolute `next_url`
//! points at the real host, as Polygon's do, without the key), the NBBO, v3 trades, and v3
//! splits and dividends (paged). A test may delay every answer or replace it with a body of
//! its own. Requires `Authorization: Bearer test-key`, else 401 with
//! Polygon's error body. Prices are derived from the ticker (`100 + sum of bytes % 400`).
//!
//! Start finql against it with `POLYGON_BASE_URL=fake.base_url()` and `POLYGON_API_KEY=test-key`.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::helpers::fake_server::FakeServer;

/// The key the fake accepts.
pub const KEY: &str = "test-key";
/// Bars per aggregates page.
pub const PAGE: usize = 100;
/// The newest bar the fake has: 2025-11-03 00:00 UTC (bars of every interval line up on it).
pub const LAST_BAR_MS: i64 = 1_762_128_000_000;

#[derive(Default)]
struct Controls {
    requests: Vec<(String, HashMap<String, String>)>,
    authorizations: Vec<Option<String>>,
    fail_http: VecDeque<u16>,
    /// Tickers the snapshots leave out, as Polygon leaves out what it does not know.
    unknown: HashSet<String>,
    /// How long every answer waits before it is sent.
    delay: Duration,
    /// Answer 200 with this body instead of the endpoint's (malformed answers).
    body: Option<String>,
    /// Day bars planted by a test (ticker → start ms → o, h, l, c, v); once any is, day
    /// aggregates come from here only (`plant_day`).
    days: Option<HashMap<String, std::collections::BTreeMap<i64, [String; 5]>>>,
}

type Shared = crate::helpers::fake_server::Controls<Controls>;

pub struct FakePolygon {
    pub addr: SocketAddr,
    state: Arc<Shared>,
    _server: FakeServer,
}

impl FakePolygon {
    pub async fn start() -> Self {
        let state = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v2/snapshot/locale/{locale}/markets/{market}/tickers", get(snapshot))
            .route("/v3/snapshot/indices", get(indices))
            .route("/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}", get(aggregates))
            .route("/v2/last/nbbo/{ticker}", get(nbbo))
            .route("/v3/trades/{ticker}", get(trades))
            .route("/v3/reference/{kind}", get(reference))
            .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
            .with_state(state.clone());
        let server = FakeServer::serve(app, "fake Polygon").await;
        Self { addr: server.addr, state, _server: server }
    }

    /// `http://127.0.0.1:PORT`, for `POLYGON_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received, in order: path and query parameters.
    pub fn requests(&self) -> Vec<(String, HashMap<String, String>)> {
        self.state.lock().requests.clone()
    }

    /// The paths of the requests received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|(path, _)| path).collect()
    }

    /// The `Authorization` header of every request, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state.lock().authorizations.clone()
    }

    /// Delays every answer by `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// Answers every request with HTTP 200 and `body` from now on.
    pub fn set_body(&self, body: &str) {
        self.state.lock().body = Some(body.to_owned());
    }

    /// Leaves `ticker` out of the snapshots from now on.
    pub fn forget(&self, ticker: &str) {
        self.state.lock().unknown.insert(ticker.to_owned());
    }

    /// From now on, day aggregates hold only the bars planted with this: `ticker`'s bar of
    /// `day` (`[open, high, low, close, volume]`), starting at midnight New York time as
    /// Polygon's do (05:00 UTC in winter, 04:00 in summer: the fake uses 04:30).
    pub fn plant_day(&self, ticker: &str, day: chrono::NaiveDate, ohlcv: [&str; 5]) {
        let start = day.and_hms_opt(4, 30, 0).unwrap().and_utc().timestamp_millis();
        let mut controls = self.state.lock();
        let days = controls.days.get_or_insert_default();
        days.entry(ticker.to_owned()).or_default().insert(start, ohlcv.map(str::to_owned));
    }

    /// Answers the next `n` requests with HTTP `status` (429 carries `Retry-After: 0`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.lock().fail_http.extend(std::iter::repeat_n(status, n));
    }
}

/// The price of a ticker: `100 + (sum of its bytes) % 400`, and cents from its length.
pub fn price_of(ticker: &str) -> String {
    let sum: u32 = ticker.bytes().map(u32::from).sum();
    format!("{}.{:02}", 100 + sum % 400, ticker.len() * 7 % 100)
}

fn number(text: &str) -> Value {
    serde_json::from_str(text).expect("a number")
}

/// Logs the request, checks the key, and plays the failures a test queued.
async fn guard(
    State(state): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (failure, delay, body) = {
        let mut controls = state.lock();
        controls.requests.push((request.uri().path().to_owned(), query));
        controls.authorizations.push(authorization.clone());
        (controls.fail_http.pop_front(), controls.delay, controls.body.clone())
    };
    tokio::time::sleep(delay).await;
    if let Some(body) = body {
        return (StatusCode::OK, body).into_response();
    }
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).expect("a status");
        let body = Json(json!({"status": "ERROR", "request_id": "r", "error": "planted failure"}));
        return if status == StatusCode::TOO_MANY_REQUESTS {
            (status, [(header::RETRY_AFTER, "0")], body).into_response()
        } else {
            (status, body).into_response()
        };
    }
    if authorization.as_deref() != Some(&format!("Bearer {KEY}")) {
        let body = json!({"status": "ERROR", "request_id": "r", "error": "Unknown API Key"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    next.run(request).await
}

/// `tickers=A,B`: one snapshot per known ticker (those `forget` named are left out).
async fn snapshot(
    State(state): State<Arc<Shared>>,
    Path((_, market)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let unknown = state.lock().unknown.clone();
    let tickers: Vec<Value> = q
        .get("tickers")
        .map(|t| t.split(',').filter(|t| !unknown.contains(*t)).map(|t| snap(&market, t)).collect())
        .unwrap_or_default();
    Json(json!({"status": "OK", "request_id": "r", "count": tickers.len(), "tickers": tickers}))
}

fn snap(market: &str, ticker: &str) -> Value {
    let last = number(&price_of(ticker));
    if market == "stocks" {
        json!({"ticker": ticker, "day": {"o": last, "h": last, "l": last, "c": last, "v": 1000, "vw": last},
            "lastTrade": {"c": null, "i": "1", "p": last, "s": 100, "t": 1_762_128_000_123_456_789i64, "x": 4},
            "prevDay": {"c": 100.5, "v": 2000.0}, "updated": 1_762_128_000_123_456_789i64})
    } else {
        json!({"ticker": ticker, "day": {"o": last, "h": last, "l": last, "c": last, "v": 10},
            "lastQuote": {"a": last, "b": last, "t": 1_762_128_000_000i64, "x": 48},
            "prevDay": {"c": last}, "updated": 1_762_128_000_000i64})
    }
}

/// `ticker.any_of=I:SPX,…`: known indices, and `NOT_FOUND` items for `I:ZZZZ`.
async fn indices(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let results: Vec<Value> = q
        .get("ticker.any_of")
        .map(|t| {
            t.split(',')
                .map(|t| match t {
                    "I:ZZZZ" => json!({"ticker": t, "error": "NOT_FOUND", "message": "Ticker not found."}),
                    _ => {
                        json!({"ticker": t, "value": number(&price_of(t)), "last_updated": 1_762_128_000_000_000_000i64,
                        "timeframe": "REAL-TIME", "session": {"previous_close": 100.25}})
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({"status": "OK", "request_id": "r", "results": results}))
}

/// Bars of `multiplier × timespan` from `from` to `to` (ms, inclusive), newest first when asked,
/// `PAGE` a page; `cursor` is the offset. Day bars a test planted replace the generated ones.
async fn aggregates(
    State(state): State<Arc<Shared>>,
    Path((ticker, multiplier, timespan, from, to)): Path<(String, i64, String, i64, i64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if timespan == "day"
        && multiplier == 1
        && let Some(days) = state.lock().days.clone()
    {
        let mut bars: Vec<Value> = days
            .get(&ticker)
            .map(|planted| {
                planted
                    .range(from..=to)
                    .map(|(t, [o, h, l, c, v])| {
                        json!({"o": number(o), "h": number(h), "l": number(l), "c": number(c), "v": number(v), "t": t})
                    })
                    .collect()
            })
            .unwrap_or_default();
        if q.get("sort").map(String::as_str) == Some("desc") {
            bars.reverse();
        }
        return Json(json!({"ticker": ticker, "adjusted": true, "status": "OK", "request_id": "r",
            "queryCount": bars.len(), "resultsCount": bars.len(), "results": bars}))
        .into_response();
    }
    let minutes = match timespan.as_str() {
        "minute" => 1,
        "hour" => 60,
        "day" => 1440,
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"status": "ERROR", "error": "timespan"}))).into_response(),
    };
    let step = multiplier * minutes * 60_000;
    let mut starts: Vec<i64> =
        (0..).map(|i| LAST_BAR_MS - i * step).take_while(|t| *t >= from).filter(|t| *t <= to).collect();
    if q.get("sort").map(String::as_str) != Some("desc") {
        starts.reverse();
    }
    let offset: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = starts
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(|t| {
            let close = 100 + (t / step) % 50;
            json!({"o": close, "h": close + 1, "l": close - 1, "c": close, "v": 10.0, "vw": close, "t": t, "n": 3})
        })
        .collect();
    let mut body = json!({"ticker": ticker, "adjusted": true, "status": "OK", "request_id": "r",
        "queryCount": page.len(), "resultsCount": page.len(), "results": page});
    if offset + PAGE < starts.len() {
        let sort = q.get("sort").cloned().unwrap_or_default();
        body["next_url"] = json!(format!(
            "https://api.massive.com/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}?cursor={}&sort={sort}",
            offset + PAGE
        ));
    }
    Json(body).into_response()
}

async fn nbbo(Path(ticker): Path<String>) -> Json<Value> {
    let bid = number(&price_of(&ticker));
    Json(json!({"status": "OK", "request_id": "r", "results": {"T": ticker, "p": bid, "s": 200, "P": 999.99, "S": 300,
        "t": 1_762_128_000_000_000_000i64}}))
}

async fn trades(Path(ticker): Path<String>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let results: Vec<Value> = (0..limit.min(5))
        .map(|i| {
            json!({"price": number(&price_of(&ticker)), "size": 10 + i, "exchange": 4, "id": i.to_string(),
            "sip_timestamp": 1_762_128_000_000_000_000i64 - i * 1_000_000_001})
        })
        .collect();
    Json(json!({"status": "OK", "request_id": "r", "results": results}))
}

/// Splits (two pages) and dividends of `AAPL`; nothing for other tickers.
async fn reference(Path(kind): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    // The second page's URL holds the cursor alone, as Polygon's do.
    let aapl = q.get("ticker").map(String::as_str) == Some("AAPL") || q.contains_key("cursor");
    let (results, next) = match (kind.as_str(), aapl, q.contains_key("cursor")) {
        ("splits", true, false) => (
            json!([{"id": "s1", "ticker": "AAPL", "execution_date": "2014-06-09", "split_from": 1, "split_to": 7}]),
            Some("https://api.massive.com/v3/reference/splits?cursor=page2"),
        ),
        ("splits", true, true) => (
            json!([{"id": "s2", "ticker": "AAPL", "execution_date": "2020-08-31", "split_from": 1, "split_to": 4}]),
            None,
        ),
        ("dividends", true, _) => (
            json!([{"id": "d1", "ticker": "AAPL", "cash_amount": 0.26, "currency": "USD", "dividend_type": "CD",
                "ex_dividend_date": "2025-08-11", "frequency": 4}]),
            None,
        ),
        ("splits" | "dividends", _, _) => (json!([]), None),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut body = json!({"status": "OK", "request_id": "r", "results": results});
    if let Some(next) = next {
        body["next_url"] = json!(next);
    }
    Json(body).into_response()
}
