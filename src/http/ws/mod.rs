//! GraphQL over WebSocket: `graphql-transport-ws` (the current protocol, from the `graphql-ws`
//! library) and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Implemented here rather than with async-graphql-axum's socket, so that the connection
//! follows the spec's close codes (4400 bad message, 4401 subscribe before ack, 4403 rejected
//! or lapsed credentials, 4408 init timeout, 4409 duplicate id, 4429 repeated init), sends
//! keep-alives, caps the operations per connection, closes with 1001 on shutdown, with 1009 on
//! a message over `FINQL_MAX_BODY_BYTES`, 1007 on a text message that is not UTF-8, 1002 on a
//! WebSocket protocol error, and with 1008 "slow consumer" when the client leaves its messages
//! unread for `FINQL_WS_SLOW_CLIENT_MS` (see `writer`: WebSocket Ping frames ask whether
//! the client reads): live subscriptions conflate behind a
//! full outbox, but a client that reads nothing at all is holding a connection, its buffers and
//! its upstream topics for nobody.
//!
//! A 4400 says what was wrong (`Invalid message received: unknown message type "start"`, `…:
//! not JSON`, `…: no "type"`), and every close, the server's or the client's, is logged at
//! debug (target `finql::http::ws`) with its code and reason: a client closed for a protocol
//! mismatch must be diagnosable from either end.
//!
//! Credentials live as long as the access token (or API key), not as long as the socket:
//! `credentials` says how they are checked, when a connection ends because they lapsed (4403
//! naming why), and how a client renews them without reconnecting.
//!
//! The handshake, for the clients that read it strictly:
//! - the subprotocol is chosen by the server's preference (`graphql-transport-ws` first) among
//!   those offered, and answered with the exact token offered;
//! - `Sec-WebSocket-Protocol` is answered in the spelling the client used in its request
//!   (`http::server` hands hyper's record of the request's header spelling back on a 101).
//!   HTTP header names are case-insensitive, but Python's gql 4 reads the answer from a
//!   case-sensitive dict under `Sec-WebSocket-Protocol`, and on a miss falls back to the
//!   legacy protocol (and is closed 4400 on its first message). hyper writes names in lower
//!   case, or title case (`Sec-Websocket-Protocol`, which gql misses as well); the client's own
//!   spelling is what every such client looks for;
//! - a browser's upgrade from an origin `FINQL_CORS_ORIGINS` does not allow is refused with
//!   403 before upgrading (`http::cors`).
//!
//! A connection with a tenant (a user's or a key's) takes a place in the tenant's
//! `max_connections` at `connection_init` (`live::quotas`, across replicas), held until it
//! closes; past the limit the init is refused with 4403 `Forbidden: max_connections (N)
//! reached for tenant SLUG`.
//!
//! Shape: one reader loop per connection owns the protocol state; one writer task owns the
//! socket's sending half (`writer`); each operation runs in its own task (`operation`) and
//! sends through the bounded outbox, so a client that stops reading stalls only its own
//! operations.

mod credentials;
mod operation;
mod writer;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    extract::{
        FromRequest, Request as HttpRequest,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::json;
use tokio::{
    task::AbortHandle,
    time::{MissedTickBehavior, Sleep},
};
use tokio_tungstenite::tungstenite;

use self::{
    credentials::{Identity, authorization, far_future},
    writer::{CLOSE_LINGER, Outbox, SLOW_CONSUMER},
};
use crate::{error::ErrorCode, graphql::ClientInfo, live::quotas::ConnectionLease, metrics::Held, state::AppState};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// Socket buffer sizes. tungstenite's defaults (128 KiB each, the read buffer allocated up
/// front) would make buffers most of a connection's memory; clients send small documents
/// (the buffer grows for a larger one, up to the body limit), and outgoing messages are
/// written once this many bytes are queued, or at the end of a batch.
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 4 * 1024;

/// Close code when the connection's credentials are refused or have lapsed.
const FORBIDDEN: u16 = 4403;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::TransportWs => TRANSPORT_WS,
            Self::Legacy => LEGACY_WS,
        }
    }
}

/// `GET /graphql` with `Upgrade`: checks the origin and the subprotocol, then upgrades.
pub async fn upgrade(state: AppState, client: ClientInfo, request: HttpRequest) -> Response {
    if let Err(origin) = crate::http::cors::websocket_origin_allowed(&state.config.cors, request.headers()) {
        tracing::debug!(%origin, "WebSocket upgrade refused: origin not allowed");
        let message = format!("WebSocket connections from origin `{origin}` are not allowed");
        return crate::http::error_body(StatusCode::FORBIDDEN, &message, ErrorCode::Forbidden);
    }
    let handshake = credentials::from_handshake(request.headers());
    let upgrade = match WebSocketUpgrade::from_request(request, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = upgrade.protocols([TRANSPORT_WS, LEGACY_WS]);
    let protocol = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(TRANSPORT_WS) => Protocol::TransportWs,
        Some(LEGACY_WS) => Protocol::Legacy,
        _ => {
            return crate::http::error_body(
                StatusCode::BAD_REQUEST,
                "WebSocket subprotocol must be `graphql-transport-ws` or `graphql-ws`",
                ErrorCode::BadUserInput,
            );
        }
    };
    let max_message = state.config.limits.max_body_bytes;
    upgrade
        .max_message_size(max_message)
        // A frame is refused from its header, before its payload is buffered (the default
        // would buffer 16 MiB first).
        .max_frame_size(max_message)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| Connection::run(state, protocol, client, handshake, socket))
        .into_response()
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    /// The peer's address (the upgrade request's); every operation carries it.
    client: ClientInfo,
    outbox: Outbox,
    /// `None` until `connection_init` is accepted.
    identity: Option<Identity>,
    /// The connection's place in its tenant's `max_connections` (none for anonymous ones),
    /// given back when the connection ends.
    quota: Option<ConnectionLease>,
    /// Fires when a user connection's token stops being accepted (never for anonymous ones).
    expiry: Pin<Box<Sleep>>,
    /// The `Authorization` the upgrade request carried (or its `X-API-Key`, as a bearer
    /// value): the credentials of a `connection_init` whose payload has none.
    handshake: Option<String>,
    /// Running operations by client id, each with a sequence number: an id can be reused once
    /// its operation completed, and a late "finished" notice must not remove its successor.
    operations: HashMap<String, (u64, AbortHandle)>,
    next_seq: u64,
    finished: Finished,
}

/// Operations that ended, as each reports it (before its `complete` goes out), for the
/// connection to forget them before it reads the client's next message. A list rather than a
/// channel: a tokio channel allocates its first block of slots (a kilobyte here) when made,
/// and every connection has one of these.
#[derive(Clone, Default)]
struct Finished(Arc<Mutex<Vec<(String, u64)>>>);

impl Finished {
    fn report(&self, id: String, seq: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((id, seq));
    }

    fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Why the server ends a connection.
struct Close(u16, String);

impl Close {
    fn forbidden(reason: &str) -> Self {
        Self(FORBIDDEN, format!("Forbidden: {reason}"))
    }

    /// The reason cut to what a close frame can carry (123 bytes: a control frame's 125 less
    /// the code), on a character boundary.
    fn truncated(mut self) -> Self {
        const MAX_REASON: usize = 123;
        if self.1.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !self.1.is_char_boundary(end) {
                end -= 1;
            }
            self.1.truncate(end);
        }
        self
    }
}

impl Connection {
    async fn run(
        state: AppState,
        protocol: Protocol,
        client: ClientInfo,
        handshake: Option<String>,
        socket: WebSocket,
    ) {
        let _open = Held::new(metrics::gauge!("finql_ws_connections"));
        let (sink, mut stream) = socket.split();
        let ws_config = state.config.websocket.clone();
        let slow_timeout = ws_config.slow_client_timeout;
        let (outbox, writer) = writer::spawn(sink, slow_timeout);
        let mut revocations = state.accounts.tokens().revocations().watch();
        let mut conn = Connection {
            state,
            protocol,
            client,
            outbox,
            identity: None,
            quota: None,
            expiry: Box::pin(tokio::time::sleep_until(far_future())),
            handshake,
            operations: HashMap::new(),
            next_seq: 0,
            finished: Finished::default(),
        };

        let init_deadline = tokio::time::sleep(ws_config.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(ws_config.keepalive_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        keepalive.tick().await;
        let shutdown = conn.state.shutdown.clone();
        let stalled = conn.outbox.stalled().clone();
        let mut key_checks = tokio::time::interval(credentials::KEY_RECHECK);
        key_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);

        let close: Option<Close> = loop {
            let signed_in = matches!(conn.identity, Some(Identity::User(..)));
            let keyed = matches!(conn.identity, Some(Identity::Key(_)));
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        // An operation reports "finished" before its `complete` goes out, so
                        // draining here frees every id the client may already reuse.
                        for (id, seq) in conn.finished.take() {
                            conn.reap(&id, seq);
                        }
                        // Boxed: a message's handling (admission, persisted documents, Redis)
                        // is a large future, and inline it would sit in every idle
                        // connection's task for the connection's whole life.
                        if let Err(close) = Box::pin(conn.handle(text.as_str())).await {
                            break Some(close);
                        }
                    }
                    Some(Ok(Message::Binary(_))) => break Some(Close(4400, "binary messages are not supported".into())),
                    Some(Ok(Message::Pong(payload))) => conn.outbox.pong_frame(&payload),
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame.map(|f| (f.code, f.reason.to_string())).unwrap_or_default();
                        tracing::debug!(protocol = protocol.as_str(), code, %reason, "WebSocket closed by the client");
                        break None;
                    }
                    None => {
                        tracing::debug!(protocol = protocol.as_str(), "WebSocket ended by the client without a close");
                        break None;
                    }
                    Some(Err(err)) => break read_error(err, conn.state.config.limits.max_body_bytes),
                },
                () = &mut init_deadline, if conn.identity.is_none() => {
                    break Some(Close(4408, "Connection initialisation timeout".into()));
                }
                () = &mut conn.expiry, if signed_in => {
                    match conn.lapsed() {
                        Some(close) => break Some(close),
                        None => conn.arm_expiry(),
                    }
                }
                Ok(()) = revocations.changed(), if signed_in => {
                    if let Some(close) = conn.lapsed() {
                        break Some(close);
                    }
                }
                _ = key_checks.tick(), if keyed => {
                    if let Some(close) = Box::pin(conn.key_lapsed()).await {
                        break Some(close);
                    }
                }
                _ = keepalive.tick() => match conn.protocol {
                    // Never queued behind unread messages: a client that is not reading has
                    // no use for it, and the reader must not wait on it.
                    Protocol::TransportWs => conn.outbox.offer(json!({ "type": "ping" })),
                    Protocol::Legacy if conn.identity.is_some() => conn.outbox.offer(json!({ "type": "ka" })),
                    Protocol::Legacy => {}
                },
                () = shutdown.cancelled() => break Some(Close(1001, "server shutting down".into())),
                // The writer sends the reason itself, ahead of the unread backlog.
                () = stalled.cancelled() => break None,
            }
        };
        for (_, (_, operation)) in conn.operations.drain() {
            operation.abort();
        }
        if stalled.is_cancelled() {
            metrics::counter!("finql_live_slow_consumers_total").increment(1);
            let reason = "slow consumer";
            tracing::debug!(protocol = protocol.as_str(), code = SLOW_CONSUMER, reason, "closing the WebSocket");
        }
        if let Some(Close(code, reason)) = close.map(Close::truncated)
            && code != SLOW_CONSUMER
        {
            tracing::debug!(protocol = protocol.as_str(), code, %reason, "closing the WebSocket");
            let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
            let _ = conn.outbox.send(Message::Close(Some(frame))).await;
        }
        drop(conn);
        // The closing handshake: keep reading (and dropping) until the client's Close, so the
        // socket is not closed under data the client still sends (a Pong, say), which would
        // reset the connection before the client read why it ends. A client that never reads
        // again must not keep the connection (and its buffers): the writer bounds each of its
        // writes; this bounds the whole, whatever either side is doing.
        let drain = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let abort = writer.abort_handle();
        let closing = async { tokio::join!(writer, tokio::time::timeout(CLOSE_LINGER, drain)) };
        if tokio::time::timeout(slow_timeout * 2 + CLOSE_LINGER, closing).await.is_err() {
            abort.abort();
        }
    }

    fn reap(&mut self, id: &str, seq: u64) {
        if self.operations.get(id).is_some_and(|(running, _)| *running == seq) {
            self.operations.remove(id);
        }
    }

    async fn send(&self, message: serde_json::Value) {
        // A stall is noticed by the reader loop; nothing else to do here.
        let _ = self.outbox.send_json(message).await;
    }

    async fn handle(&mut self, text: &str) -> Result<(), Close> {
        let invalid = |what: &str| Close(4400, format!("Invalid message received: {what}"));
        let message: serde_json::Value = serde_json::from_str(text).map_err(|_| invalid("not JSON"))?;
        let kind = message.get("type").and_then(|t| t.as_str()).ok_or_else(|| invalid("no \"type\""))?;
        match (self.protocol, kind) {
            (Protocol::TransportWs, "connection_init") if self.identity.is_some() => {
                Err(Close(4429, "Too many initialisation requests".into()))
            }
            (Protocol::Legacy, "connection_init") if self.identity.is_some() => {
                self.renew(authorization(message.get("payload"))).await?;
                self.send(json!({ "type": "connection_ack" })).await;
                Ok(())
            }
            (_, "connection_init") => {
                let presented =
                    authorization(message.get("payload")).map(str::to_owned).or_else(|| self.handshake.clone());
                self.init(presented.as_deref()).await
            }
            (Protocol::TransportWs, "ping") => {
                let payload = message.get("payload").and_then(|p| p.as_object());
                if payload.is_some_and(|fields| fields.keys().any(|k| k.eq_ignore_ascii_case("authorization"))) {
                    if self.identity.is_none() {
                        return Err(Close(4401, "Unauthorized".into()));
                    }
                    self.renew(authorization(message.get("payload"))).await?;
                }
                self.outbox.pong();
                Ok(())
            }
            (Protocol::TransportWs, "pong") => Ok(()),
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let principal = match &self.identity {
                    None => return Err(Close(4401, "Unauthorized".into())),
                    Some(Identity::Anonymous(principal)) => principal.clone(),
                    Some(Identity::User(_, principal)) => match self.lapsed() {
                        Some(close) => return Err(close),
                        None => principal.clone(),
                    },
                    Some(Identity::Key(key)) => self.key_principal(&key.clone()).await?,
                };
                let id = message
                    .get("id")
                    .and_then(|i| i.as_str())
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| invalid("no \"id\""))?;
                if self.operations.contains_key(id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                let payload = message.get("payload").cloned().ok_or_else(|| invalid("no \"payload\""))?;
                self.start(id.to_owned(), payload, principal).await;
                Ok(())
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some(id) = message.get("id").and_then(|i| i.as_str())
                    && let Some((_, operation)) = self.operations.remove(id)
                {
                    operation.abort();
                }
                Ok(())
            }
            (Protocol::Legacy, "connection_terminate") => Err(Close(1000, "terminated by client".into())),
            // Named, so a client speaking the other protocol (a legacy `start` here) can tell.
            _ => Err(invalid(&format!("unknown message type {kind:?} for {}", self.protocol.as_str()))),
        }
    }
}

/// The close owed for a frame the socket could not read (`None`: the socket itself failed).
fn read_error(err: axum::Error, max_message: usize) -> Option<Close> {
    let inner = err.into_inner();
    let Some(err) = inner.downcast_ref::<tungstenite::Error>() else {
        tracing::debug!(error = %inner, "WebSocket failed");
        return None;
    };
    match err {
        tungstenite::Error::Capacity(_) => Some(Close(1009, format!("message too big (limit {max_message} bytes)"))),
        tungstenite::Error::Utf8(_) => Some(Close(1007, "text message is not valid UTF-8".into())),
        tungstenite::Error::Protocol(_) => Some(Close(1002, "WebSocket protocol error".into())),
        other => {
            tracing::debug!(error = %other, "WebSocket failed");
            None
        }
    }
}
