//! GraphQL over WebSocket (`http::ws`): `graphql-transport-ws` and the legacy `graphql-ws`, their
//! close codes, keep-alives, and shutdown; and `Ws`, the client the live and abuse tests use.
//! Transport behaviour does not depend on the database, so these run on SQLite only.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::*;

pub(crate) const TRANSPORT_WS: &str = "graphql-transport-ws";
pub(crate) const LEGACY_WS: &str = "graphql-ws";

/// How long to wait for a message the server owes us before failing (rather than hanging).
/// A safety net, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// The WebSocket handshake for `protocol` (none when `None`).
async fn handshake(
    url: &str,
    protocol: Option<&str>,
) -> Result<(WebSocketStream<MaybeTlsStream<TcpStream>>, tungstenite::handshake::client::Response), tungstenite::Error>
{
    let mut request = url.into_client_request().expect("a valid ws URL");
    if let Some(protocol) = protocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocol).unwrap());
    }
    tokio_tungstenite::connect_async(request).await
}

/// One client connection.
pub(crate) struct Ws {
    pub(crate) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub(crate) async fn connect(app: &TestApp, protocol: &str) -> Self {
        Self::connect_url(&app.ws_url(), protocol).await
    }

    /// A `graphql-transport-ws` connection whose socket has a 4 KiB receive buffer: when the
    /// test stops reading it, the server's buffers fill at once, as behind a client that
    /// stopped reading.
    pub(crate) async fn connect_small_buffer(app: &TestApp) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(app.addr).await.unwrap();
        let mut request = app.ws_url().into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(TRANSPORT_WS));
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await.unwrap();
        Self { stream }
    }

    /// Connects to the GraphQL WebSocket endpoint at `url` (e.g. of a `FinqlProcess`).
    pub(crate) async fn connect_url(url: &str, protocol: &str) -> Self {
        let (stream, response) = handshake(url, Some(protocol)).await.expect("the WebSocket handshake succeeds");
        let selected = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        assert_eq!(selected, Some(protocol), "the server selects the requested subprotocol");
        Self { stream }
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    pub(crate) async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next frame that is not a WebSocket-level ping or pong.
    pub(crate) async fn next_frame(&mut self) -> Option<Message> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("the server answers in time");
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(err)) => panic!("WebSocket error: {err}"),
                None => return None,
            }
        }
    }

    /// The next text message, parsed.
    pub(crate) async fn next_json(&mut self) -> Value {
        match self.next_frame().await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("a JSON message"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The server closes the connection with `code` (and nothing else arrives first).
    pub(crate) async fn expect_close(&mut self, code: u16) {
        match self.next_frame().await {
            Some(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), code, "close reason: {}", frame.reason)
            }
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    /// `connection_init` (with `Authorization: Bearer <token>` when given), expecting the ack.
    pub(crate) async fn init(&mut self, token: Option<&str>) {
        let payload = token.map_or(json!({}), |t| json!({ "Authorization": format!("Bearer {t}") }));
        self.send_json(json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(self.next_json().await, json!({ "type": "connection_ack" }));
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str) {
        self.send_json(json!({ "type": "subscribe", "id": id, "payload": { "query": query } })).await;
    }
}

/// An operation's first result without its `extensions.traceId` (the operation's W3C trace
/// id, see `telemetry`), which must be there: 32 hex digits.
pub(crate) fn without_trace_id(mut message: Value) -> Value {
    message["payload"] = untraced(message["payload"].take());
    message
}

async fn expect_complete(ws: &mut Ws, id: &str) {
    assert_eq!(ws.next_json().await, json!({ "type": "complete", "id": id }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_query_gets_next_then_complete() {
    let app = app_with(&[]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    ws.subscribe("1", "{ me { email } }").await;
    let next = without_trace_id(ws.next_json().await);
    assert_eq!(next, json!({ "type": "next", "id": "1", "payload": { "data": { "me": { "email": user.email } } } }));
    expect_complete(&mut ws, "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connection_gets_unauthenticated_field_error() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.subscribe("1", "{ me { email } }").await;
    let next = ws.next_json().await;
    assert_eq!(next["type"], "next", "a field error is a result, not a request error: {next}");
    assert_eq!(next["id"], "1");
    assert_eq!(error_code(&next["payload"]), "UNAUTHENTICATED", "{next}");
    assert_eq!(next["payload"]["errors"][0]["path"], json!(["me"]));
    expect_complete(&mut ws, "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_in_init_closes_4403() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-jwt" } })).await;
    ws.expect_close(4403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_before_init_closes_4401() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.subscribe("1", "{ __typename }").await;
    ws.expect_close(4401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_init_closes_4408_after_the_timeout() {
    let app = app_with(&[("FINQL_WS_INIT_TIMEOUT_MS", "300")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.expect_close(4408).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_init_closes_4429() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "connection_init", "payload": {} })).await;
    ws.expect_close(4429).await;
}

/// A `login` that fails after an argon2 verification: an operation that runs for a while.
const SLOW: &str = r#"mutation { login(email: "nobody@example.com", password: "wrong password") { accessToken } }"#;

/// A wrong-password `login` keeps its operation running for the length of an argon2 hash, far
/// longer than the server takes to read the second `subscribe`, which is sent in the same
/// write: the id is still in use when it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_id_of_a_running_operation_closes_4409() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let slow = json!({ "type": "subscribe", "id": "1", "payload": { "query": SLOW } });
    ws.stream.feed(Message::text(slow.to_string())).await.unwrap();
    ws.stream.feed(Message::text(slow.to_string())).await.unwrap();
    ws.stream.flush().await.unwrap();
    ws.expect_close(4409).await;
}

/// With one operation allowed per connection, a second sent while a slow one runs is refused
/// with an `error` message, and the first still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_beyond_the_per_connection_limit_get_an_error() {
    let app = app_with(&[("FINQL_WS_MAX_SUBSCRIPTIONS", "1")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let first = json!({ "type": "subscribe", "id": "1", "payload": { "query": SLOW } });
    let second = json!({ "type": "subscribe", "id": "2", "payload": { "query": "{ __typename }" } });
    ws.stream.feed(Message::text(first.to_string())).await.unwrap();
    ws.stream.feed(Message::text(second.to_string())).await.unwrap();
    ws.stream.flush().await.unwrap();
    let refused = ws.next_json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "2");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
    let login = ws.next_json().await;
    assert_eq!(login["id"], "1", "{login}");
    assert_eq!(error_code(&login["payload"]), "UNAUTHENTICATED", "{login}");
    expect_complete(&mut ws, "1").await;
}

/// An id may be reused once its operation has completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_of_a_completed_operation_can_be_reused() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    // Reusing the id the moment `complete` arrives, many times over: the server must have
    // released it by then (a race here used to answer 4409).
    for _ in 0..200 {
        ws.subscribe("same", "{ __typename }").await;
        assert_eq!(without_trace_id(ws.next_json().await)["payload"], json!({ "data": { "__typename": "Query" } }));
        expect_complete(&mut ws, "same").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ping_gets_pong() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "ping" })).await;
    assert_eq!(ws.next_json().await, json!({ "type": "pong" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sends_keepalive_pings() {
    let app = app_with(&[("FINQL_WS_KEEPALIVE_SECS", "1")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let ping = tokio::time::timeout(Duration::from_secs(3), ws.next_json()).await.expect("a keep-alive within 3 s");
    assert_eq!(ping, json!({ "type": "ping" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_closes_4400() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_text("{ not json").await;
    ws.expect_close(4400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_closes_4400() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "start", "id": "1", "payload": { "query": "{ __typename }" } })).await;
    match ws.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (4400, r#"Invalid message received: unknown message type "start" for graphql-transport-ws"#)
        ),
        other => panic!("expected a 4400 close naming the type, got {other:?}"),
    }
    // A type longer than a close frame can carry is cut, not a reason to fail the close.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "x".repeat(500) })).await;
    match ws.next_frame().await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4400);
            assert!(frame.reason.starts_with("Invalid message received: unknown message type"), "{}", frame.reason);
            assert!(frame.reason.len() <= 123);
        }
        other => panic!("expected a 4400 close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_error_gets_an_error_message_and_the_connection_stays_open() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.subscribe("bad", "{ me { email }").await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "bad");
    let errors = error["payload"].as_array().unwrap_or_else(|| panic!("payload is an array of errors: {error}"));
    assert!(!errors.is_empty());
    for err in errors {
        assert_eq!(err["extensions"]["code"], "GRAPHQL_PARSE_FAILED", "{err}");
    }
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.starts_with("syntax error") && !message.contains('\n'), "{message}");
    // No `complete` follows an `error`; the connection still serves.
    ws.subscribe("good", "{ __typename }").await;
    let next = ws.next_json().await;
    assert_eq!(next["id"], "good", "{next}");
    assert_eq!(next["payload"]["data"]["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_that_is_not_a_request_gets_an_error_message() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "subscribe", "id": "1", "payload": { "no": "query" } })).await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "1");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_protocol_acks_with_keepalive_and_answers_data_then_complete() {
    let app = app_with(&[]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect(&app, LEGACY_WS).await;
    let auth = format!("Bearer {}", user.access_token);
    ws.send_json(json!({ "type": "connection_init", "payload": { "authorization": auth } })).await;
    assert_eq!(ws.next_json().await, json!({ "type": "connection_ack" }));
    assert_eq!(ws.next_json().await, json!({ "type": "ka" }));
    ws.send_json(json!({ "type": "start", "id": "7", "payload": { "query": "{ me { email } }" } })).await;
    assert_eq!(
        without_trace_id(ws.next_json().await),
        json!({ "type": "data", "id": "7", "payload": { "data": { "me": { "email": user.email } } } })
    );
    expect_complete(&mut ws, "7").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_invalid_token_gets_connection_error_then_4403() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, LEGACY_WS).await;
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer garbage" } })).await;
    let error = ws.next_json().await;
    assert_eq!(error["type"], "connection_error", "{error}");
    assert!(error["payload"]["message"].is_string(), "{error}");
    ws.expect_close(4403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_connection_terminate_closes_1000() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, LEGACY_WS).await;
    ws.send_json(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    assert_eq!(ws.next_json().await["type"], "ka");
    ws.send_json(json!({ "type": "connection_terminate" })).await;
    ws.expect_close(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_without_a_known_subprotocol_is_400() {
    let app = app_with(&[]).await;
    for protocol in [None, Some("graphql-nope")] {
        match handshake(&app.ws_url(), protocol).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 400, "{protocol:?}")
            }
            Err(other) => panic!("{protocol:?}: expected an HTTP 400, got {other}"),
            Ok(_) => panic!("{protocol:?}: the handshake must fail"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_sockets_with_1001() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let shutdown = tokio::spawn(app.shutdown());
    ws.expect_close(1001).await;
    shutdown.await.expect("shutdown task").expect("the server stops cleanly");
}
