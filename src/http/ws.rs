//! GraphQL over WebSocket: `graphql-transport-ws` (the current protocol, from the `graphql-ws`
//! library) and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Implemented here rather than with async-graphql-axum's socket, so that the connection
//! follows the spec's close codes (4400 bad message, 4401 subscribe before ack, 4403 rejected
//! init, 4408 init timeout, 4409 duplicate id, 4429 repeated init), sends keep-alives, caps the
//! operations per connection, closes with 1001 on shutdown, and with 1008 "slow consumer" when
//! the client leaves its messages unread for `FINQL_WS_SLOW_CLIENT_MS` (its outbox stays full):
//! live subscriptions conflate behind a full outbox, but a client that reads nothing at all is
//! holding a connection, its buffers and its upstream topics for nobody.
//!
//! Shape: one reader loop per connection owns the protocol state; one writer task owns the
//! socket's sending half; each operation runs in its own task and sends through a bounded
//! channel, so a client that stops reading stalls only its own operations.

use std::collections::HashMap;

use async_graphql::{Request, Response as GqlResponse, parser::types::OperationType};
use axum::{
    extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
    time::MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::Credentials,
    app::AppState,
    error::ErrorCode,
    graphql::{
        context::{ClientInfo, RequestContext},
        guard,
    },
};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// Messages queued for one client before its operations wait. Enough to absorb bursts; small
/// enough that a stalled client holds little memory.
const OUTBOX: usize = 256;

/// Messages written to the socket per flush, at most.
const WRITE_BATCH: usize = 64;

/// Socket buffer sizes. tungstenite's defaults (128 KiB each, the read buffer allocated up
/// front) would make buffers most of a connection's memory; clients send small documents
/// (the buffer grows for a larger one, up to the body limit), and outgoing messages are
/// written once this many bytes are queued, or at the end of a batch.
const READ_BUFFER: usize = 2 * 1024;
const WRITE_BUFFER: usize = 4 * 1024;

/// Close code for a client that does not read its messages (RFC 6455: policy violation).
const SLOW_CONSUMER: u16 = 1008;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    TransportWs,
    Legacy,
}

pub fn upgrade(state: AppState, client: ClientInfo, upgrade: WebSocketUpgrade) -> Response {
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
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| Connection::run(state, protocol, client, socket))
        .into_response()
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    /// The peer's address (the upgrade request's); every operation carries it.
    client: ClientInfo,
    outbox: mpsc::Sender<Message>,
    /// `None` until `connection_init` is accepted.
    credentials: Option<Credentials>,
    /// Running operations by client id, each with a sequence number: an id can be reused once
    /// its operation completed, and a late "finished" notice must not remove its successor.
    operations: HashMap<String, (u64, AbortHandle)>,
    next_seq: u64,
    finished: mpsc::UnboundedSender<(String, u64)>,
    /// Cancelled by an operation that could not queue a message for `slow_client_timeout`.
    stalled: CancellationToken,
}

/// Why the server ends a connection.
struct Close(u16, String);

impl Connection {
    async fn run(state: AppState, protocol: Protocol, client: ClientInfo, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
        // A close that must not queue behind the full outbox (slow consumer).
        let (close_now, mut close_now_rx) = oneshot::channel::<CloseFrame>();
        let writer = tokio::spawn(async move {
            let mut close_pending = true;
            loop {
                let message = tokio::select! {
                    biased;
                    frame = &mut close_now_rx, if close_pending => match frame {
                        Ok(frame) => Message::Close(Some(frame)),
                        Err(_) => {
                            close_pending = false;
                            continue;
                        }
                    },
                    message = outgoing.recv() => match message {
                        Some(message) => message,
                        None => break,
                    },
                };
                // What else is already queued goes out in the same write: a burst of updates
                // costs one flush, not one syscall each.
                let mut closing = matches!(message, Message::Close(_));
                let mut ok = sink.feed(message).await.is_ok();
                for _ in 1..WRITE_BATCH {
                    if closing || !ok {
                        break;
                    }
                    let Ok(message) = outgoing.try_recv() else { break };
                    closing = matches!(message, Message::Close(_));
                    ok = sink.feed(message).await.is_ok();
                }
                if !ok || sink.flush().await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (finished, mut finished_rx) = mpsc::unbounded_channel();
        let mut conn = Connection {
            state,
            protocol,
            client,
            outbox,
            credentials: None,
            operations: HashMap::new(),
            next_seq: 0,
            finished,
            stalled: CancellationToken::new(),
        };

        let ws_config = conn.state.config.websocket.clone();
        let init_deadline = tokio::time::sleep(ws_config.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(ws_config.keepalive_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        keepalive.tick().await;
        let shutdown = conn.state.shutdown.clone();
        let stalled = conn.stalled.clone();
        let slow_timeout = ws_config.slow_client_timeout;

        let close: Option<Close> = loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        // An operation reports "finished" before its `complete` goes out, so
                        // draining here frees every id the client may already reuse.
                        while let Ok((id, seq)) = finished_rx.try_recv() {
                            conn.reap(&id, seq);
                        }
                        if let Err(close) = conn.handle(text.as_str()).await {
                            break Some(close);
                        }
                    }
                    Some(Ok(Message::Binary(_))) => break Some(Close(4400, "binary messages are not supported".into())),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                },
                () = &mut init_deadline, if conn.credentials.is_none() => {
                    break Some(Close(4408, "Connection initialisation timeout".into()));
                }
                _ = keepalive.tick() => {
                    let ping = match conn.protocol {
                        Protocol::TransportWs => json!({ "type": "ping" }),
                        Protocol::Legacy if conn.credentials.is_some() => json!({ "type": "ka" }),
                        Protocol::Legacy => continue,
                    };
                    if conn.send(ping).await.is_err() {
                        break None;
                    }
                }
                Some((id, seq)) = finished_rx.recv() => conn.reap(&id, seq),
                () = shutdown.cancelled() => break Some(Close(1001, "server shutting down".into())),
                () = stalled.cancelled() => break Some(Close(SLOW_CONSUMER, format!(
                    "slow consumer: messages unread for {} ms", slow_timeout.as_millis()
                ))),
            }
        };
        for (_, (_, operation)) in conn.operations.drain() {
            operation.abort();
        }
        if let Some(Close(code, reason)) = close {
            let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
            if code == SLOW_CONSUMER {
                // Ahead of the unread backlog: the client sees it as soon as it reads again.
                let _ = close_now.send(frame);
            } else {
                let _ = tokio::time::timeout(slow_timeout, conn.outbox.send(Message::Close(Some(frame)))).await;
            }
        }
        drop(conn);
        // A client that never reads again must not keep the connection (and its buffers).
        let abort = writer.abort_handle();
        if tokio::time::timeout(slow_timeout, writer).await.is_err() {
            abort.abort();
        }
    }

    fn reap(&mut self, id: &str, seq: u64) {
        if self.operations.get(id).is_some_and(|(running, _)| *running == seq) {
            self.operations.remove(id);
        }
    }

    async fn send(&self, message: serde_json::Value) -> Result<(), ()> {
        self.outbox.send(Message::Text(message.to_string().into())).await.map_err(|_| ())
    }

    async fn handle(&mut self, text: &str) -> Result<(), Close> {
        let invalid = || Close(4400, "Invalid message received".into());
        let message: serde_json::Value = serde_json::from_str(text).map_err(|_| invalid())?;
        let kind = message.get("type").and_then(|t| t.as_str()).ok_or_else(invalid)?;
        match (self.protocol, kind) {
            (_, "connection_init") => self.init(message.get("payload")).await,
            (Protocol::TransportWs, "ping") => {
                let _ = self.send(json!({ "type": "pong" })).await;
                Ok(())
            }
            (Protocol::TransportWs, "pong") => Ok(()),
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(credentials) = self.credentials.clone() else {
                    return Err(Close(4401, "Unauthorized".into()));
                };
                let id = message.get("id").and_then(|i| i.as_str()).filter(|i| !i.is_empty()).ok_or_else(invalid)?;
                if self.operations.contains_key(id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                let payload = message.get("payload").cloned().ok_or_else(invalid)?;
                self.start(id.to_owned(), payload, credentials).await;
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
            _ => Err(invalid()),
        }
    }

    async fn init(&mut self, payload: Option<&serde_json::Value>) -> Result<(), Close> {
        if self.credentials.is_some() {
            return Err(Close(4429, "Too many initialisation requests".into()));
        }
        let authorization = payload.and_then(|p| p.as_object()).and_then(|fields| {
            fields.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).and_then(|(_, v)| v.as_str())
        });
        let credentials = self.state.accounts.tokens().credentials(authorization);
        if let Credentials::Invalid(reason) = credentials {
            if self.protocol == Protocol::Legacy {
                let _ = self.send(json!({ "type": "connection_error", "payload": { "message": reason } })).await;
            }
            return Err(Close(4403, format!("Forbidden: {reason}")));
        }
        self.credentials = Some(credentials);
        let _ = self.send(json!({ "type": "connection_ack" })).await;
        if self.protocol == Protocol::Legacy {
            let _ = self.send(json!({ "type": "ka" })).await;
        }
        Ok(())
    }

    async fn start(&mut self, id: String, payload: serde_json::Value, credentials: Credentials) {
        let (next, error) = match self.protocol {
            Protocol::TransportWs => ("next", "error"),
            Protocol::Legacy => ("data", "error"),
        };
        let limit = self.state.config.websocket.max_subscriptions;
        if self.operations.len() >= limit {
            let message = format!("too many operations on this connection (limit {limit})");
            let _ = self.send(error_message(error, &id, &message, ErrorCode::BadUserInput)).await;
            return;
        }
        let mut request: Request = match serde_json::from_value(payload) {
            Ok(request) => request,
            Err(_) => {
                let message = "payload must be a GraphQL request with a `query`";
                let _ = self.send(error_message(error, &id, message, ErrorCode::BadUserInput)).await;
                return;
            }
        };
        let limits = self.state.config.limits.clone();
        let operation_name = request.operation_name.clone();
        let checked = guard::check_tokens(&request.query, &limits).and_then(|()| match request.parsed_query() {
            Ok(document) => guard::check_document(document, &limits)
                .map(|_| guard::operation_type(document, operation_name.as_deref())),
            Err(err) => Err(guard::parse_error(&err, &limits)),
        });
        let operation = match checked {
            Ok(operation) => operation,
            Err(mut rejected) => {
                guard::assign_codes(std::slice::from_mut(&mut rejected), &limits);
                let _ = self.send(json!({ "type": error, "id": id, "payload": [rejected] })).await;
                return;
            }
        };
        // Queries and mutations end by `FINQL_REQUEST_TIMEOUT_MS`; subscriptions are meant to last.
        let deadline = (operation != Some(OperationType::Subscription))
            .then(|| tokio::time::Instant::now() + limits.request_timeout);
        let request = RequestContext::new(self.state.clone(), credentials, self.client.clone()).into_request(request);
        let schema = self.state.schema.clone();
        let outbox = self.outbox.clone();
        let finished = self.finished.clone();
        let stalled = self.stalled.clone();
        let slow_timeout = self.state.config.websocket.slow_client_timeout;
        let task_id = id.clone();
        let seq = self.next_seq;
        self.next_seq += 1;
        let task = tokio::spawn(async move {
            let mut responses = schema.execute_stream(request);
            let mut first = true;
            let mut panicked = false;
            while !panicked {
                // A stream that panicked is not polled again: the error ends the operation.
                let next_response = guard::catch_panic(responses.next(), || {
                    panicked = true;
                    Some(GqlResponse::from_errors(vec![guard::internal_error()]))
                });
                let Some(next_response) = guard::deadline::before(deadline, next_response).await else {
                    // Like a failed request: an `error` ends the operation.
                    let timeout = guard::deadline::timeout_error(limits.request_timeout);
                    let message = json!({ "type": error, "id": task_id, "payload": [timeout] });
                    let _ = finished.send((task_id, seq));
                    let _ = outbox.send(Message::Text(message.to_string().into())).await;
                    return;
                };
                let Some(mut response) = next_response else { break };
                guard::assign_codes(&mut response.errors, &limits);
                let failed_request = first && guard::is_request_error(&response);
                first = false;
                if failed_request {
                    // An `error` ends the operation: no `complete` follows.
                    let message = json!({ "type": error, "id": task_id, "payload": response.errors });
                    let _ = finished.send((task_id, seq));
                    let _ = outbox.send(Message::Text(message.to_string().into())).await;
                    return;
                }
                // Written straight to text (no JSON tree in between): this runs once per
                // subscriber per live update.
                let message = match serde_json::to_string(&Next { kind: next, id: &task_id, payload: &response }) {
                    Ok(text) => text,
                    Err(_) => json!({ "type": error, "id": task_id, "payload": [guard::internal_error()] }).to_string(),
                };
                match outbox.send_timeout(Message::Text(message.into()), slow_timeout).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        stalled.cancel();
                        return;
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
            let _ = finished.send((task_id.clone(), seq));
            let complete = json!({ "type": "complete", "id": task_id });
            let _ = outbox.send(Message::Text(complete.to_string().into())).await;
        });
        self.operations.insert(id, (seq, task.abort_handle()));
    }
}

/// A `next` (or legacy `data`) message.
#[derive(serde::Serialize)]
struct Next<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: &'a GqlResponse,
}

fn error_message(kind: &str, id: &str, message: &str, code: ErrorCode) -> serde_json::Value {
    json!({ "type": kind, "id": id, "payload": [{ "message": message, "extensions": { "code": code.as_str() } }] })
}
