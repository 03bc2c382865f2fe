//! A fake iTick WebSocket server for tests: the real protocol (`shared/itick.md`, WebSocket
//! section) on 127.0.0.1, with knobs to misbehave.
//!
//! Paths `/stock`, `/forex`, `/indices`, `/crypto`. On upgrade it sends
//! `{"code":1,"msg":"Connected Successfully"}`, then checks the `token` header and answers
//! `{"code":1,"resAc":"auth",…}` or `{"code":0,"resAc":"auth",…}` and closes. In legacy mode it
//! ignores the header and waits for `{"ac":"auth","params":"<token>"}` instead. It handles
//! `subscribe` / `unsubscribe` (`params` `CODE$REGION,…`, `types` `quote,tick,depth,kline@N`;
//! more than 500 symbols on one connection is refused with `E003`), and `ping` (answered with
//! `{"resAc":"pong","data":{"params":…}}`). It records every connection, every message and each
//! connection's subscriptions, and pushes `{"code":1,"data":{…,"s","r","type"}}` on demand to
//! the connections subscribed to that symbol and type. On demand it drops every connection,
//! makes the current connections silent (no pongs, no pushes), or rejects the token.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
};

use axum::{
    Router,
    extract::{
        Path, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::fake_server::FakeServer;

/// The token the fake accepts.
pub const TOKEN: &str = "test-token";
pub const ENDPOINTS: &[&str] = &["stock", "forex", "indices", "crypto"];
const MAX_SYMBOLS: usize = 500;

/// What the server tells one connection's writer.
enum Out {
    Text(String),
    /// Close the socket without a close frame (as a network failure would).
    Drop,
}

struct Conn {
    endpoint: String,
    authenticated: bool,
    silent: bool,
    /// `(CODE$REGION, type)`.
    subscriptions: BTreeSet<(String, String)>,
    out: mpsc::UnboundedSender<Out>,
}

#[derive(Default)]
struct Controls {
    next_id: u64,
    conns: BTreeMap<u64, Conn>,
    /// Every connection ever opened: id and endpoint.
    opened: Vec<(u64, String)>,
    /// Every message received: connection id and JSON.
    messages: Vec<(u64, Value)>,
    reject_auth: bool,
    legacy_only: bool,
    refuse_subscriptions: bool,
}

/// The controls, shared by the test and the server's handlers.
type Shared = crate::helpers::fake_server::Controls<Controls>;

#[allow(dead_code)]
pub struct FakeItickWs {
    pub addr: SocketAddr,
    state: Arc<Shared>,
    _server: FakeServer,
}

#[allow(dead_code)]
impl FakeItickWs {
    pub async fn start() -> Self {
        let state = Arc::new(Shared::default());
        let app = Router::new().route("/{endpoint}", get(upgrade)).with_state(state.clone());
        let server = FakeServer::serve(app, "fake iTick WebSocket").await;
        Self { addr: server.addr, state, _server: server }
    }

    /// `ws://127.0.0.1:PORT`, for `ITICK_WS_URL`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Only the older auth message authenticates (the `token` header is ignored).
    pub fn legacy_only(&self, on: bool) {
        self.state.lock().legacy_only = on;
    }

    /// Every token is rejected from now on.
    pub fn reject_auth(&self, on: bool) {
        self.state.lock().reject_auth = on;
    }

    /// Every subscribe is answered `code: 0` (as for a plan's subscription limit).
    pub fn refuse_subscriptions(&self, on: bool) {
        self.state.lock().refuse_subscriptions = on;
    }

    /// Connections ever opened on `endpoint`.
    pub fn connections_opened(&self, endpoint: &str) -> usize {
        self.state.lock().opened.iter().filter(|(_, e)| e == endpoint).count()
    }

    /// Authenticated connections open now on `endpoint`.
    pub fn open_connections(&self, endpoint: &str) -> usize {
        self.state.lock().conns.values().filter(|c| c.endpoint == endpoint && c.authenticated).count()
    }

    /// The subscriptions of each authenticated connection open on `endpoint`: `(CODE$REGION, type)`.
    pub fn subscriptions(&self, endpoint: &str) -> Vec<BTreeSet<(String, String)>> {
        let controls = self.state.lock();
        controls
            .conns
            .values()
            .filter(|c| c.endpoint == endpoint && c.authenticated)
            .map(|c| c.subscriptions.clone())
            .collect()
    }

    /// All subscriptions on `endpoint`, over its open connections.
    pub fn subscribed(&self, endpoint: &str) -> BTreeSet<(String, String)> {
        self.subscriptions(endpoint).into_iter().flatten().collect()
    }

    /// Messages received with this `ac` (`subscribe`, `unsubscribe`, `ping`, `auth`), in order.
    pub fn messages(&self, ac: &str) -> Vec<Value> {
        let controls = self.state.lock();
        controls.messages.iter().filter(|(_, m)| m["ac"] == ac).map(|(_, m)| m.clone()).collect()
    }

    /// Closes every connection abruptly (no close frame).
    pub fn drop_all(&self) {
        let mut controls = self.state.lock();
        for conn in controls.conns.values() {
            let _ = conn.out.send(Out::Drop);
        }
        controls.conns.clear();
    }

    /// The connections open now stop answering pings and stop receiving pushes (they stay
    /// open). New connections behave.
    pub fn silence_current(&self) {
        for conn in self.state.lock().conns.values_mut() {
            conn.silent = true;
        }
    }

    /// Pushes `{"code":1,"data":{…fields, "s": code, "r": region, "type": kind}}` to every
    /// connection subscribed to `code$region` for `kind`; returns how many got it.
    pub fn push(&self, code: &str, region: &str, kind: &str, fields: Value) -> usize {
        let mut data = fields;
        data["s"] = json!(code);
        data["r"] = json!(region);
        data["type"] = json!(kind);
        let text = json!({"code": 1, "data": data}).to_string();
        let key = (format!("{code}${region}"), kind.to_owned());
        let controls = self.state.lock();
        let mut sent = 0;
        for conn in controls.conns.values().filter(|c| !c.silent && c.subscriptions.contains(&key)) {
            if conn.out.send(Out::Text(text.clone())).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// A quote as iTick pushes it (JSON numbers), timestamped now.
    pub fn push_quote(&self, code: &str, region: &str, last: &str) -> usize {
        let now = chrono::Utc::now().timestamp_millis();
        let fields = json!({
            "ld": number(last), "o": number(last), "h": number(last), "l": number(last), "p": number(last),
            "t": now, "v": 1200, "tu": 250000.5, "ts": 0,
        });
        self.push(code, region, "quote", fields)
    }

    pub fn push_tick(&self, code: &str, region: &str, price: &str, volume: u64) -> usize {
        let now = chrono::Utc::now().timestamp_millis();
        self.push(code, region, "tick", json!({"ld": number(price), "v": volume, "t": now, "te": 0, "d": 2}))
    }

    /// A book with levels given as `(price, size)`, in the order given.
    pub fn push_depth(&self, code: &str, region: &str, asks: &[(&str, u64)], bids: &[(&str, u64)]) -> usize {
        let side = |levels: &[(&str, u64)]| -> Vec<Value> {
            levels.iter().enumerate().map(|(i, (p, v))| json!({"po": i + 1, "p": number(p), "v": v, "o": 1})).collect()
        };
        let now = chrono::Utc::now().timestamp_millis();
        self.push(code, region, "depth", json!({"a": side(asks), "b": side(bids), "t": now}))
    }

    /// The forming bar of `kline@ktype` that started at `start_ms`.
    pub fn push_kline(&self, code: &str, region: &str, ktype: u8, start_ms: i64, ohlc: [&str; 4]) -> usize {
        let [o, h, l, c] = ohlc.map(number);
        let fields = json!({"t": start_ms, "o": o, "h": h, "l": l, "c": c, "v": 10, "tu": 1000});
        self.push(code, region, &format!("kline@{ktype}"), fields)
    }

    /// Sends `frame` as is to every authenticated, non-silent connection on `endpoint`.
    pub fn push_raw(&self, endpoint: &str, frame: Value) -> usize {
        let text = frame.to_string();
        let controls = self.state.lock();
        let mut sent = 0;
        for conn in controls.conns.values().filter(|c| c.endpoint == endpoint && c.authenticated && !c.silent) {
            if conn.out.send(Out::Text(text.clone())).is_ok() {
                sent += 1;
            }
        }
        sent
    }
}

/// A JSON number from decimal text, as iTick sends prices.
pub fn number(text: &str) -> Value {
    serde_json::from_str(text).expect("a number")
}

async fn upgrade(
    State(state): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
    }
    let token = headers.get("token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    ws.on_upgrade(move |socket| serve(state, endpoint, token, socket))
}

async fn serve(state: Arc<Shared>, endpoint: String, header_token: Option<String>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outbox) = mpsc::unbounded_channel();
    let id = {
        let mut controls = state.lock();
        let id = controls.next_id;
        controls.next_id += 1;
        controls.opened.push((id, endpoint.clone()));
        let conn =
            Conn { endpoint, authenticated: false, silent: false, subscriptions: BTreeSet::new(), out: out.clone() };
        controls.conns.insert(id, conn);
        let _ = out.send(Out::Text(json!({"code": 1, "msg": "Connected Successfully"}).to_string()));
        if !controls.legacy_only {
            let ok = header_token.as_deref() == Some(TOKEN) && !controls.reject_auth;
            auth_answer(&mut controls, id, ok);
        }
        id
    };
    loop {
        tokio::select! {
            next = outbox.recv() => match next {
                Some(Out::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Drop) | None => break,
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    if !handle(&state, id, message) {
                        // Auth failed: the answer is queued; flush it, then close.
                        while let Ok(Out::Text(text)) = outbox.try_recv() {
                            let _ = sink.send(Message::Text(text.into())).await;
                        }
                        let _ = sink.send(Message::Close(None)).await;
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.lock().conns.remove(&id);
}

/// Queues the auth answer; a rejection also queues the close (`Out::Drop` after the answer).
fn auth_answer(controls: &mut Controls, id: u64, ok: bool) {
    let Some(conn) = controls.conns.get_mut(&id) else { return };
    if ok {
        conn.authenticated = true;
        let _ = conn.out.send(Out::Text(json!({"code": 1, "resAc": "auth", "msg": "authenticated"}).to_string()));
    } else {
        let _ = conn.out.send(Out::Text(json!({"code": 0, "resAc": "auth", "msg": "invalid token"}).to_string()));
        let _ = conn.out.send(Out::Drop);
    }
}

/// Handles one client message; false when the connection must close.
fn handle(state: &Shared, id: u64, message: Value) -> bool {
    let mut controls = state.lock();
    controls.messages.push((id, message.clone()));
    let ac = message["ac"].as_str().unwrap_or_default().to_owned();
    let params = message["params"].as_str().unwrap_or_default().to_owned();
    let reject_auth = controls.reject_auth;
    let refuse_subscriptions = controls.refuse_subscriptions;
    let Some(conn) = controls.conns.get_mut(&id) else { return false };
    let reply = |conn: &Conn, value: Value| {
        let _ = conn.out.send(Out::Text(value.to_string()));
    };
    if ac == "auth" {
        let ok = params == TOKEN && !reject_auth;
        auth_answer(&mut controls, id, ok);
        return true;
    }
    if !conn.authenticated {
        reply(conn, json!({"code": 0, "msg": "not authenticated"}));
        return true;
    }
    match ac.as_str() {
        "ping" => {
            if !conn.silent {
                reply(conn, json!({"resAc": "pong", "data": {"params": params}}));
            }
        }
        "subscribe" | "unsubscribe" => {
            let symbols: Vec<String> =
                params.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            let types: Vec<String> = message["types"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if symbols.is_empty() || types.is_empty() || symbols.iter().any(|s| !s.contains('$')) {
                reply(conn, json!({"code": 0, "resAc": ac, "msg": "invalid params"}));
                return true;
            }
            if ac == "subscribe" {
                let mut after: BTreeSet<&str> = conn.subscriptions.iter().map(|(s, _)| s.as_str()).collect();
                after.extend(symbols.iter().map(String::as_str));
                if refuse_subscriptions {
                    reply(
                        conn,
                        json!({"code": 0, "resAc": "subscribe", "msg": "E003 exceeding the maximum subscription limit"}),
                    );
                    return true;
                }
                if after.len() > MAX_SYMBOLS {
                    reply(
                        conn,
                        json!({"code": 0, "resAc": "subscribe", "msg": "E003 exceeding the maximum subscription limit"}),
                    );
                    return true;
                }
                for symbol in &symbols {
                    for kind in &types {
                        conn.subscriptions.insert((symbol.clone(), kind.clone()));
                    }
                }
                reply(conn, json!({"code": 1, "resAc": "subscribe", "msg": "subscribe Successfully"}));
            } else {
                for symbol in &symbols {
                    for kind in &types {
                        conn.subscriptions.remove(&(symbol.clone(), kind.clone()));
                    }
                }
                reply(conn, json!({"code": 1, "resAc": "unsubscribe", "msg": "unsubscribe Successfully"}));
            }
        }
        _ => reply(conn, json!({"code": 0, "msg": format!("unknown action `{ac}`")})),
    }
    true
}
