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
//! Credentials live as long as the access token, not as long as the socket. A connection
//! initialised with a token is checked like an HTTP request (the same `TokenIssuer::check`,
//! the same `FINQL_JWT_LEEWAY_SECS`):
//! - on every `subscribe` (legacy `start`): a token that expired or whose session was revoked
//!   closes the connection with 4403 (`Forbidden: access token expired` / `Forbidden: session
//!   revoked`) before the operation runs;
//! - while nothing is sent: a timer set to the token's `exp` + leeway closes the connection with
//!   4403 `Forbidden: access token expired` at that instant, and a watch on the revocation set
//!   closes it with 4403 `Forbidden: session revoked` as soon as this replica learns of the
//!   revocation (at once on the replica that took the logout, within a second on the others).
//!   Running subscriptions end with the connection. A close, rather than `error`/`complete`
//!   per operation, because the credentials belong to the connection: every operation on it
//!   has lost them at once, and a client library reconnects (re-reading its token) on 4403.
//! - renewal without reconnecting: on `graphql-transport-ws`, a `ping` whose payload carries
//!   `{"Authorization": "Bearer <new access token>"}` replaces the connection's credentials and
//!   moves the timer (answered by `pong`); on the legacy protocol a repeated `connection_init`
//!   does the same (answered by `connection_ack`). The new token must be valid and for the same
//!   user, else 4403. (On `graphql-transport-ws` a repeated `connection_init` is still 4429.)
//! - anonymous connections stay anonymous (market data is public) and never expire.
//!
//! A connection with a tenant (a user's or a key's) takes a place in the tenant's
//! `max_connections` at `connection_init` (`live::quotas`, across replicas), held until it
//! closes; past the limit the init is refused with 4403 `Forbidden: max_connections (N)
//! reached for tenant SLUG`.
//!
//! Shape: one reader loop per connection owns the protocol state; one writer task owns the
//! socket's sending half (`writer`); each operation runs in its own task and sends through the
//! bounded outbox, so a client that stops reading stalls only its own operations.

mod writer;

use std::{collections::HashMap, pin::Pin, sync::Arc};

use async_graphql::{Request, Response as GqlResponse, parser::types::OperationType};
use axum::{
    extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use futures::StreamExt;
use metrics::SharedString;
use serde_json::json;
use tokio::{
    sync::mpsc,
    task::AbortHandle,
    time::{Instant, MissedTickBehavior, Sleep},
};
use tokio_tungstenite::tungstenite;
use tracing::Instrument;

use self::writer::{CLOSE_LINGER, Outbox, SLOW_CONSUMER};
use crate::{
    accounts::{AccessGrant, Authentication},
    audit::{self, Operation},
    error::ErrorCode,
    graphql::{ClientInfo, guard},
    identity::{Credentials, Principal},
    live::quotas::{ConnectionLease, Refusal},
    metrics::{Held, graphql as graphql_metrics},
    state::AppState,
    telemetry,
    tenancy::keys,
    usage::{self, OperationMeter},
};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// Socket buffer sizes. tungstenite's defaults (128 KiB each, the read buffer allocated up
/// front) would make buffers most of a connection's memory; clients send small documents
/// (the buffer grows for a larger one, up to the body limit), and outgoing messages are
/// written once this many bytes are queued, or at the end of a batch.
const READ_BUFFER: usize = 2 * 1024;
const WRITE_BUFFER: usize = 4 * 1024;

/// Close code when the connection's credentials are refused or have lapsed.
const FORBIDDEN: u16 = 4403;

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
        // A frame is refused from its header, before its payload is buffered (the default
        // would buffer 16 MiB first).
        .max_frame_size(max_message)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| Connection::run(state, protocol, client, socket))
        .into_response()
}

/// Who the connection speaks for, once `connection_init` was accepted, and who that makes it.
enum Identity {
    Anonymous(Principal),
    User(AccessGrant, Principal),
    /// An API key (kept to re-check it on every operation: a revoked key stops the connection
    /// at its next operation, or within `tenancy::service::CACHE_TTL` on another replica).
    Key(String),
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
    /// Running operations by client id, each with a sequence number: an id can be reused once
    /// its operation completed, and a late "finished" notice must not remove its successor.
    operations: HashMap<String, (u64, AbortHandle)>,
    next_seq: u64,
    finished: mpsc::UnboundedSender<(String, u64)>,
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
    async fn run(state: AppState, protocol: Protocol, client: ClientInfo, socket: WebSocket) {
        let _open = Held::new(metrics::gauge!("finql_ws_connections"));
        let (sink, mut stream) = socket.split();
        let ws_config = state.config.websocket.clone();
        let slow_timeout = ws_config.slow_client_timeout;
        let (outbox, writer) = writer::spawn(sink, slow_timeout);
        let (finished, mut finished_rx) = mpsc::unbounded_channel();
        let mut revocations = state.accounts.tokens().revocations().watch();
        let mut conn = Connection {
            state,
            protocol,
            client,
            outbox,
            identity: None,
            quota: None,
            expiry: Box::pin(tokio::time::sleep_until(far_future())),
            operations: HashMap::new(),
            next_seq: 0,
            finished,
        };

        let init_deadline = tokio::time::sleep(ws_config.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(ws_config.keepalive_interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        keepalive.tick().await;
        let shutdown = conn.state.shutdown.clone();
        let stalled = conn.outbox.stalled().clone();

        let close: Option<Close> = loop {
            let signed_in = matches!(conn.identity, Some(Identity::User(..)));
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
                    Some(Ok(Message::Pong(payload))) => conn.outbox.pong_frame(&payload),
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break None,
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
                _ = keepalive.tick() => match conn.protocol {
                    // Never queued behind unread messages: a client that is not reading has
                    // no use for it, and the reader must not wait on it.
                    Protocol::TransportWs => conn.outbox.offer(json!({ "type": "ping" })),
                    Protocol::Legacy if conn.identity.is_some() => conn.outbox.offer(json!({ "type": "ka" })),
                    Protocol::Legacy => {}
                },
                Some((id, seq)) = finished_rx.recv() => conn.reap(&id, seq),
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
        }
        if let Some(Close(code, reason)) = close
            && code != SLOW_CONSUMER
        {
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

    /// Answers an operation refused before it ran with its `error` message, metered as a
    /// request with an error (`rate_limited`: refused by the plan's limits).
    async fn refuse_operation(
        &self,
        principal: &Principal,
        operation: Arc<Operation>,
        message: serde_json::Value,
        rate_limited: bool,
    ) {
        let code = message["payload"][0]["extensions"]["code"].as_str().unwrap_or("INTERNAL").to_owned();
        graphql_metrics::record(
            graphql_metrics::operation_type(None),
            principal.tenant_label(),
            code.into(),
            std::time::Duration::ZERO,
        );
        let mut usage = self.state.usage.operation(principal, false);
        let bytes = message.to_string().len();
        meter(&mut usage, bytes, true, rate_limited);
        audit::edge::ws_refused(&self.state.audit, principal, operation, &message, bytes);
        self.send(message).await;
    }

    /// The close owed when the connection's token no longer holds.
    fn lapsed(&self) -> Option<Close> {
        let Some(Identity::User(grant, _)) = &self.identity else { return None };
        self.state.accounts.tokens().check(grant).err().map(|lapsed| Close::forbidden(lapsed.reason()))
    }

    /// Points the expiry timer at the current token's end (leeway included).
    fn arm_expiry(&mut self) {
        let deadline = match &self.identity {
            Some(Identity::User(grant, _)) => {
                let left = (grant.valid_until - Utc::now()).to_std().unwrap_or_default();
                Instant::now() + left
            }
            _ => far_future(),
        };
        self.expiry.as_mut().reset(deadline);
    }

    async fn handle(&mut self, text: &str) -> Result<(), Close> {
        let invalid = || Close(4400, "Invalid message received".into());
        let message: serde_json::Value = serde_json::from_str(text).map_err(|_| invalid())?;
        let kind = message.get("type").and_then(|t| t.as_str()).ok_or_else(invalid)?;
        match (self.protocol, kind) {
            (Protocol::TransportWs, "connection_init") if self.identity.is_some() => {
                Err(Close(4429, "Too many initialisation requests".into()))
            }
            (Protocol::Legacy, "connection_init") if self.identity.is_some() => {
                self.renew(authorization(message.get("payload"))).await?;
                self.send(json!({ "type": "connection_ack" })).await;
                Ok(())
            }
            (_, "connection_init") => self.init(authorization(message.get("payload"))).await,
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
                let id = message.get("id").and_then(|i| i.as_str()).filter(|i| !i.is_empty()).ok_or_else(invalid)?;
                if self.operations.contains_key(id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                let payload = message.get("payload").cloned().ok_or_else(invalid)?;
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
            _ => Err(invalid()),
        }
    }

    /// Checks a presented token, telling a legacy client why it is refused (its protocol has a
    /// message for that) before the 4403.
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Authentication, Close> {
        match self.state.accounts.tokens().authenticate(authorization) {
            Authentication::Invalid(reason) => Err(self.refuse(reason).await),
            accepted => Ok(accepted),
        }
    }

    /// The 4403 for refused credentials, told first to a legacy client (its protocol has a
    /// message for that).
    async fn refuse(&self, reason: &str) -> Close {
        if self.protocol == Protocol::Legacy {
            self.send(json!({ "type": "connection_error", "payload": { "message": reason } })).await;
        }
        Close::forbidden(reason)
    }

    /// Checks an API key (again): its principal, or the 4403 owed.
    async fn key_principal(&self, key: &str) -> Result<Principal, Close> {
        let principal = self.state.tenancy.authenticate_key(key).await.map_err(|_| internal_close())?;
        match principal.credentials {
            Credentials::Invalid(reason) => Err(self.refuse(reason).await),
            _ => Ok(principal),
        }
    }

    /// Who `credentials` make the caller (tenant, role, plan).
    async fn principal(&self, credentials: Credentials) -> Result<Principal, Close> {
        let principal = self.state.tenancy.principal(credentials).await.map_err(|_| internal_close())?;
        match principal.credentials {
            Credentials::Invalid(reason) => Err(self.refuse(reason).await),
            _ => Ok(principal),
        }
    }

    async fn init(&mut self, authorization: Option<&str>) -> Result<(), Close> {
        let (identity, principal) = match api_key(authorization) {
            Some(key) => {
                let principal = self.key_principal(key).await?;
                (Identity::Key(key.to_owned()), principal)
            }
            None => match self.authenticate(authorization).await? {
                Authentication::User(grant) => {
                    let principal = self.principal(Credentials::User(grant.user_id)).await?;
                    (Identity::User(grant, principal.clone()), principal)
                }
                _ => {
                    let principal = self.principal(Credentials::Anonymous).await?;
                    (Identity::Anonymous(principal.clone()), principal)
                }
            },
        };
        self.quota = self.admit(&principal).await?;
        self.identity = Some(identity);
        self.arm_expiry();
        self.send(json!({ "type": "connection_ack" })).await;
        if self.protocol == Protocol::Legacy {
            self.send(json!({ "type": "ka" })).await;
        }
        Ok(())
    }

    /// Takes the connection's place in its tenant's `max_connections`, or the 4403 owed (the
    /// reason names the limit). Anonymous connections belong to no tenant and are not counted.
    async fn admit(&self, principal: &Principal) -> Result<Option<ConnectionLease>, Close> {
        let (Some(tenant), Some(plan)) = (&principal.tenant, &principal.plan) else { return Ok(None) };
        match self.state.live_quotas.connect(tenant, plan).await {
            Ok(lease) => Ok(Some(lease)),
            Err(Refusal::Exceeded { limit, max, .. }) => {
                let reason = format!("{} ({max}) reached for tenant {}", limit.as_str(), tenant.slug);
                Err(self.refuse(&reason).await.truncated())
            }
            Err(Refusal::Unavailable) => Err(Close(1011, "live quotas unavailable; try again shortly".into())),
        }
    }

    /// New credentials for the same identity: a later expiry (or another session of the user).
    async fn renew(&mut self, authorization: Option<&str>) -> Result<(), Close> {
        if let Some(key) = api_key(authorization) {
            return match &self.identity {
                Some(Identity::Key(current)) if current == key => self.key_principal(key).await.map(drop),
                _ => Err(Close::forbidden("renewed credentials must be for the same user")),
            };
        }
        let renewed = self.authenticate(authorization).await?;
        match (self.identity.take(), renewed) {
            (Some(Identity::User(current, principal)), Authentication::User(grant))
                if grant.user_id == current.user_id =>
            {
                self.identity = Some(Identity::User(grant, principal));
                self.arm_expiry();
                Ok(())
            }
            (Some(identity @ Identity::Anonymous(_)), Authentication::Anonymous) => {
                self.identity = Some(identity);
                Ok(())
            }
            _ => Err(Close::forbidden("renewed credentials must be for the same user")),
        }
    }

    async fn start(&mut self, id: String, payload: serde_json::Value, principal: Principal) {
        let (next, error) = match self.protocol {
            Protocol::TransportWs => ("next", "error"),
            Protocol::Legacy => ("data", "error"),
        };
        let limit = self.state.config.websocket.max_subscriptions;
        if self.operations.len() >= limit {
            let message = format!("too many operations on this connection (limit {limit})");
            self.refuse_operation(
                &principal,
                Arc::default(),
                error_message(error, &id, &message, ErrorCode::BadUserInput),
                false,
            )
            .await;
            return;
        }
        // The client's trace, if it sent one: `{"extensions": {"traceparent": "00-…"}}`.
        let traceparent = payload.pointer("/extensions/traceparent").and_then(|v| v.as_str()).map(str::to_owned);
        let mut request: Request = match serde_json::from_value(payload) {
            Ok(request) => request,
            Err(_) => {
                let message = "payload must be a GraphQL request with a `query`";
                self.refuse_operation(
                    &principal,
                    Arc::default(),
                    error_message(error, &id, message, ErrorCode::BadUserInput),
                    false,
                )
                .await;
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
                self.refuse_operation(
                    &principal,
                    Arc::new(audit::edge::unread(&request)),
                    json!({ "type": error, "id": id, "payload": [rejected] }),
                    false,
                )
                .await;
                return;
            }
        };
        // Each operation is a request on the plan's limits, as over HTTP; a subscription pays
        // its estimated cost once, when it starts.
        let variables = request.variables.clone();
        let cost =
            request.parsed_query().map_or(0, |doc| self.state.demand.cost(doc, operation_name.as_deref(), &variables));
        let shape = Arc::new(if self.state.audit.enabled() {
            audit::edge::shape_of(&mut request)
        } else {
            Operation::default()
        });
        let admission = self.state.plan_limits.admit(&principal, self.client.addr, 1, cost).await;
        if let Some(refusal) = admission.refusal {
            let message = json!({ "type": error, "id": id, "payload": [refusal.error()] });
            self.refuse_operation(&principal, shape, message, refusal.is_rate_limited()).await;
            return;
        }
        // Queries and mutations end by `FINQL_REQUEST_TIMEOUT_MS`; subscriptions are meant to last.
        let deadline = (operation != Some(OperationType::Subscription))
            .then(|| tokio::time::Instant::now() + limits.request_timeout);
        // Counted when the operation ends, however it ends (the meter goes with the task).
        let mut usage = self.state.usage.operation(&principal, operation == Some(OperationType::Subscription));
        if let Some(usage) = &mut usage {
            usage.charged(cost);
        }
        let (ty, name) = request
            .parsed_query()
            .map(|doc| guard::operation_label(doc, operation_name.as_deref()))
            .unwrap_or_default();
        let (span, trace_id) = telemetry::trace::ws_operation_span(ty, name.as_deref(), traceparent.as_deref());
        let trace_id = trace_id.to_string();
        let client = ClientInfo { trace_id: Some(trace_id.clone()), ..self.client.clone() };
        // Likewise its audit record (a subscription's start is recorded now).
        let subscription = operation == Some(OperationType::Subscription);
        let mut audit = self.state.audit.operation(&principal, Some(trace_id.clone()), shape, subscription);
        // Counted at its first answer (a subscription's first event), timed from its start.
        let mut timing =
            Some((std::time::Instant::now(), graphql_metrics::operation_type(operation), principal.tenant_label()));
        let mut answered = move |code: SharedString| {
            if let Some((started, kind, tenant)) = timing.take() {
                graphql_metrics::record(kind, tenant, code, started.elapsed());
            }
        };
        let request = self.state.prepare(request, principal, client);
        let schema = self.state.schema.clone();
        let outbox = self.outbox.clone();
        let finished = self.finished.clone();
        let task_id = id.clone();
        let seq = self.next_seq;
        self.next_seq += 1;
        let task = tokio::spawn(
            async move {
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
                        answered(graphql_metrics::code_of(std::slice::from_ref(&timeout)));
                        let message = json!({ "type": error, "id": task_id, "payload": [&timeout] });
                        let bytes = message.to_string().len();
                        meter(&mut usage, bytes, true, false);
                        audit.sent(bytes, std::slice::from_ref(&timeout));
                        let _ = finished.send((task_id, seq));
                        let _ = outbox.send_json(message).await;
                        return;
                    };
                    let Some(mut response) = next_response else { break };
                    guard::assign_codes(&mut response.errors, &limits);
                    answered(graphql_metrics::code_of(&response.errors));
                    if first {
                        // Once per operation (not on every live update): the client has it from then on.
                        response.extensions.insert("traceId".into(), async_graphql::Value::from(trace_id.as_str()));
                    }
                    let (errored, rate_limited) =
                        (!response.errors.is_empty(), usage::graphql::is_rate_limited(&response));
                    let failed_request = first && guard::is_request_error(&response);
                    first = false;
                    if failed_request {
                        // An `error` ends the operation: no `complete` follows.
                        let message = json!({ "type": error, "id": task_id, "payload": response.errors });
                        let bytes = message.to_string().len();
                        meter(&mut usage, bytes, errored, rate_limited);
                        audit.sent(bytes, &response.errors);
                        let _ = finished.send((task_id, seq));
                        let _ = outbox.send_json(message).await;
                        return;
                    }
                    // Written straight to text (no JSON tree in between): this runs once per
                    // subscriber per live update.
                    let message = match serde_json::to_string(&Next { kind: next, id: &task_id, payload: &response }) {
                        Ok(text) => text,
                        Err(_) => {
                            json!({ "type": error, "id": task_id, "payload": [guard::internal_error()] }).to_string()
                        }
                    };
                    meter(&mut usage, message.len(), errored, rate_limited);
                    audit.sent(message.len(), &response.errors);
                    if outbox.send(Message::Text(message.into())).await.is_err() {
                        return;
                    }
                }
                answered(graphql_metrics::OK.into());
                let _ = finished.send((task_id.clone(), seq));
                let _ = outbox.send_json(json!({ "type": "complete", "id": task_id })).await;
            }
            .instrument(span),
        );
        self.operations.insert(id, (seq, task.abort_handle()));
    }
}

/// Counts a message sent for an operation (metered callers only).
fn meter(usage: &mut Option<OperationMeter>, bytes: usize, errored: bool, rate_limited: bool) {
    if let Some(usage) = usage {
        usage.sent(bytes, errored, rate_limited);
    }
}

/// The `Authorization` field of a `connection_init` (or renewal `ping`) payload, in any case.
/// The API key in an `Authorization: Bearer fq_…` value, if that is what it holds.
fn api_key(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && keys::is_api_key(token)).then_some(token)
}

/// The close when the server cannot tell who the client is (its database failed).
fn internal_close() -> Close {
    Close(1011, "internal error".into())
}

fn authorization(payload: Option<&serde_json::Value>) -> Option<&str> {
    payload.and_then(|p| p.as_object()).and_then(|fields| {
        fields.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).and_then(|(_, v)| v.as_str())
    })
}

/// The close owed for a frame the socket could not read (`None`: the socket itself failed).
fn read_error(err: axum::Error, max_message: usize) -> Option<Close> {
    let inner = err.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(Close(1009, format!("message too big (limit {max_message} bytes)"))),
        tungstenite::Error::Utf8(_) => Some(Close(1007, "text message is not valid UTF-8".into())),
        tungstenite::Error::Protocol(_) => Some(Close(1002, "WebSocket protocol error".into())),
        _ => None,
    }
}

/// A deadline that never comes (a timer must exist to be reset; a year is never).
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(365 * 86_400)
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
