//! Sessions that outlived their token, and sockets that outlived their reader.
//!
//! Replayed: a WebSocket initialised with a token kept working after the token expired (a
//! `createTransaction` over it succeeded while HTTP already said UNAUTHENTICATED) and its
//! subscriptions kept streaming; `logout` and a refresh-token reuse left the family's access
//! tokens working for up to 15 minutes; tokens from the future or with an over-long lifetime;
//! clients that never read (with the default keep-alive) or flood pings without reading, kept
//! open for minutes; oversized and non-UTF-8 frames; a token for a deleted user answered
//! INTERNAL. Expiry tests use a 2-3 s token lifetime and no leeway: real time, short
//! durations, generous upper bounds.

use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::{MaybeTlsStream, tungstenite::Message};

use crate::{
    helpers::*,
    http::ws::{LEGACY_WS, TRANSPORT_WS, Ws},
};

/// The longest a test waits for something the server owes it (a safety net, not a timing
/// assertion).
const PATIENCE: Duration = Duration::from_secs(15);

const ME: &str = "{ me { id } }";
const CREATE: &str = "mutation($input: CreateTransactionInput!) { createTransaction(input: $input) { id } }";
const COUNT: &str = "{ transactions(first: 1) { totalCount } }";
const LOGOUT: &str = "mutation($token: String!) { logout(refreshToken: $token) }";
const REFRESH: &str = "mutation($token: String!) { refreshToken(token: $token) { accessToken refreshToken } }";
const QUOTES: &str = "subscription($symbols: [String!]!) { quotes(symbols: $symbols) { symbol last } }";

/// Short-lived tokens, no leeway, and a fast simulated market.
pub(super) async fn short_lived(ttl_secs: &str) -> TestApp {
    let vars = [
        ("FINQL_ACCESS_TOKEN_TTL_SECS", ttl_secs),
        ("FINQL_JWT_LEEWAY_SECS", "0"),
        ("FINQL_LIVE_GRACE_MS", "100"),
        ("FINQL_SIM_TICKS_PER_SEC", "10"),
    ];
    spawn_app(Backend::Sqlite, &vars).await.expect("SQLite is always available")
}

/// The claims of a JWT (not verified: the test reads what the server signed).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// How long until the token's `exp` (negative once past).
fn until_exp(token: &str) -> f64 {
    let exp = claims(token)["exp"].as_i64().unwrap() as f64;
    exp - chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

fn mint(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The next message that is not a keep-alive or a pong.
pub(super) async fn next_message(ws: &mut Ws) -> Value {
    loop {
        let message = ws.next_json().await;
        if !matches!(message["type"].as_str(), Some("ping" | "pong" | "ka")) {
            return message;
        }
    }
}

/// Reads until the server closes; returns the close code and reason (data before it is fine).
pub(super) async fn close_after_data(ws: &mut Ws) -> (u16, String) {
    let mut frames = 0;
    loop {
        frames += 1;
        match tokio::time::timeout(PATIENCE, ws.stream.next()).await.expect("the server closes in time") {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a reason"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => panic!("WebSocket error before the close frame (after {frames} frames): {err}"),
        }
    }
}

async fn user_socket(app: &TestApp, protocol: &str, token: &str) -> Ws {
    let mut ws = Ws::connect(app, protocol).await;
    let auth = format!("Bearer {token}");
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": auth } })).await;
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    ws
}

pub(super) async fn subscribe_quotes(ws: &mut Ws, id: &str) {
    let payload = json!({ "query": QUOTES, "variables": { "symbols": ["CRYPTO:BTCUSDT", "CRYPTO:ETHUSDT"] } });
    ws.send_json(json!({ "type": "subscribe", "id": id, "payload": payload })).await;
    let first = next_message(ws).await;
    assert_eq!(first["type"], "next", "{first}");
}

async fn me_code(app: &TestApp, token: &str) -> Option<String> {
    let body = app.gql(Some(token), ME, json!({})).await;
    body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_cannot_create_over_the_socket_it_opened() {
    let app = short_lived("2").await;
    let user = app.new_user().await;
    let mut ws = user_socket(&app, TRANSPORT_WS, &user.access_token).await;
    // Real time: a token's `exp` is wall-clock seconds, and its passing is the behaviour under test.
    tokio::time::sleep(Duration::from_secs_f64(until_exp(&user.access_token).max(0.0) + 0.2)).await;
    assert_eq!(me_code(&app, &user.access_token).await.as_deref(), Some("UNAUTHENTICATED"), "HTTP refuses it");
    let input = json!({ "amount": "12.34", "kind": "DEBIT" });
    let payload = json!({ "query": CREATE, "variables": { "input": input } });
    // The socket may already be closed (the expiry timer): the send may fail; nothing is created.
    let _ =
        ws.stream.send(Message::text(json!({ "type": "subscribe", "id": "1", "payload": payload }).to_string())).await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: access token expired"));
    let fresh = app.data(None, REFRESH, json!({ "token": user.refresh_token })).await;
    let fresh = fresh["refreshToken"]["accessToken"].as_str().unwrap();
    let count = app.data(Some(fresh), COUNT, json!({})).await;
    assert_eq!(count["transactions"]["totalCount"], 0, "nothing was created with the expired token");
}

/// A subscription on a socket whose token expires ends at `exp` (leeway 0), with 4403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_subscription_ends_when_its_token_expires() {
    let app = short_lived("2").await;
    let user = app.new_user().await;
    let mut ws = user_socket(&app, TRANSPORT_WS, &user.access_token).await;
    subscribe_quotes(&mut ws, "q").await;
    let (code, reason) = close_after_data(&mut ws).await;
    let late = -until_exp(&user.access_token);
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: access token expired"));
    assert!((-0.05..0.5).contains(&late), "closed {late:.3} s after exp");
}

/// Legacy protocol: the same timer; a repeated `connection_init` renews.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_repeated_init_renews_and_expiry_still_closes() {
    let app = short_lived("3").await;
    let user = app.new_user().await;
    let mut ws = user_socket(&app, LEGACY_WS, &user.access_token).await;
    // A token with a later `exp`: the next second's (real time: `exp` is wall-clock seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = app.data(None, REFRESH, json!({ "token": user.refresh_token })).await;
    let renewed = renewed["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    assert!(until_exp(&renewed) > until_exp(&user.access_token));
    let auth = format!("Bearer {renewed}");
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": auth } })).await;
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    let payload = json!({ "query": QUOTES, "variables": { "symbols": ["CRYPTO:BTCUSDT"] } });
    ws.send_json(json!({ "type": "start", "id": "q", "payload": payload })).await;
    // Past the first token's expiry, data still flows.
    tokio::time::sleep(Duration::from_secs_f64(until_exp(&user.access_token).max(0.0) + 0.3)).await;
    let data = next_message(&mut ws).await;
    assert_eq!(data["type"], "data", "{data}");
    let (code, _) = close_after_data(&mut ws).await;
    let late = -until_exp(&renewed);
    assert_eq!(code, 4403);
    assert!((-0.05..0.5).contains(&late), "closed {late:.3} s after the renewed token's exp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_payload_renews_and_the_subscription_outlives_the_first_token() {
    let app = short_lived("4").await;
    let user = app.new_user().await;
    let mut ws = user_socket(&app, TRANSPORT_WS, &user.access_token).await;
    subscribe_quotes(&mut ws, "q").await;
    // A token that expires two seconds later: time for quotes between the two expiries (real
    // time: `exp` is wall-clock seconds).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let renewed = app.data(None, REFRESH, json!({ "token": user.refresh_token })).await;
    let renewed = renewed["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    assert!(until_exp(&user.access_token) > 0.0, "renewed before the first token expired");
    assert!(until_exp(&renewed) > until_exp(&user.access_token) + 1.9);
    ws.send_json(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {renewed}") } })).await;
    // The pong (among the quotes) says the renewal was taken.
    let mut ponged = false;
    let old_exp_passed = Instant::now() + Duration::from_secs_f64(until_exp(&user.access_token).max(0.0) + 0.3);
    let mut after_old_exp = 0;
    while after_old_exp < 1 {
        let message = match ws.next_frame().await {
            Some(Message::Text(text)) => serde_json::from_str::<Value>(text.as_str()).unwrap(),
            other => panic!(
                "{other:?} {:.3} s before the first token's exp, {:.3} s before the renewed one's (pong: {ponged})",
                until_exp(&user.access_token),
                until_exp(&renewed)
            ),
        };
        match message["type"].as_str() {
            Some("pong") => ponged = true,
            Some("next") if Instant::now() > old_exp_passed => after_old_exp += 1,
            Some("next" | "ping") => {}
            _ => panic!("unexpected {message}"),
        }
    }
    assert!(ponged, "a renewal ping is answered");
    let (code, reason) = close_after_data(&mut ws).await;
    let late = -until_exp(&renewed);
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: access token expired"));
    assert!((-0.05..0.5).contains(&late), "closed {late:.3} s after the renewed token's exp");

    // Renewing with another user's token is refused.
    let other = app.new_user().await;
    let user = app.new_user().await;
    let mut ws = user_socket(&app, TRANSPORT_WS, &user.access_token).await;
    ws.send_json(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {}", other.access_token) } }))
        .await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!(code, 4403, "{reason}");
    // And an anonymous connection stays anonymous.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "ping", "payload": { "Authorization": format!("Bearer {}", user.access_token) } }))
        .await;
    assert_eq!(close_after_data(&mut ws).await.0, 4403);
}

/// `logout` ends the session's access tokens: a live socket closes and HTTP refuses the
/// token, within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_a_live_socket_and_http_access_within_a_second() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let user = app.new_user().await;
    let mut ws = user_socket(&app, TRANSPORT_WS, &user.access_token).await;
    subscribe_quotes(&mut ws, "q").await;
    assert_eq!(me_code(&app, &user.access_token).await, None);
    let started = Instant::now();
    app.data(None, LOGOUT, json!({ "token": user.refresh_token })).await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: session revoked"));
    assert_eq!(me_code(&app, &user.access_token).await.as_deref(), Some("UNAUTHENTICATED"));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // Another login of the same user is another session, untouched.
    let other = app
        .data(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            json!({ "e": user.email, "p": PASSWORD }),
        )
        .await;
    assert_eq!(me_code(&app, other["login"]["accessToken"].as_str().unwrap()).await, None);
}

/// Two replicas on one Redis (and one database): a logout on one ends the token on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_replica_ends_the_token_on_another_within_a_second() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/shared.db?mode=rwc", dir.path().display());
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("DATABASE_URL", database.as_str()),
    ];
    let a = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let b = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let user = a.new_user().await;
    assert_eq!(me_code(&b, &user.access_token).await, None, "B accepts A's token");
    let mut ws = user_socket(&b, TRANSPORT_WS, &user.access_token).await;
    subscribe_quotes(&mut ws, "q").await;
    a.data(None, LOGOUT, json!({ "token": user.refresh_token })).await;
    let took = within(Duration::from_secs(1), "B refuses the token", async || {
        me_code(&b, &user.access_token).await.as_deref() == Some("UNAUTHENTICATED")
    })
    .await;
    eprintln!("B refused the token {took:?} after the logout on A");
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: session revoked"));
    // A replica started afterwards learns it from Redis.
    let c = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    within(Duration::from_secs(1), "a new replica refuses the token", async || {
        me_code(&c, &user.access_token).await.as_deref() == Some("UNAUTHENTICATED")
    })
    .await;
}

/// A refresh-token reuse revokes the family: its access tokens stop working too, sockets close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reuse_ends_the_familys_access_tokens() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let user = app.new_user().await;
    let rotated = app.data(None, REFRESH, json!({ "token": user.refresh_token })).await;
    let second = rotated["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(claims(&second)["sid"], claims(&user.access_token)["sid"], "one family, one session id");
    let mut ws = user_socket(&app, TRANSPORT_WS, &second).await;
    subscribe_quotes(&mut ws, "q").await;
    let reuse = app.gql(None, REFRESH, json!({ "token": user.refresh_token })).await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
    for token in [&user.access_token, &second] {
        let body = app.gql(Some(token), ME, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("revoked"), "{body}");
    }
    assert_eq!(close_after_data(&mut ws).await, (4403, "Forbidden: session revoked".to_owned()));
}

/// Tokens from the future, or longer-lived than the server issues, are refused by HTTP and by
/// sockets alike; the leeway is the same for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_matrix_is_the_same_for_http_and_sockets() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_JWT_LEEWAY_SECS", "3"), ("FINQL_ACCESS_TOKEN_TTL_SECS", "600")])
        .await
        .unwrap();
    let user = app.new_user().await;
    let token = |iat: i64, exp: i64, nbf: Option<i64>| {
        let mut claims = json!({ "sub": user.uuid, "iat": iat, "exp": exp, "iss": "finql", "aud": "finql-api" });
        if let Some(nbf) = nbf {
            claims["nbf"] = json!(nbf);
        }
        mint(claims)
    };
    // (case, iat, exp, nbf) as offsets from now, and whether it is accepted (leeway 3 s).
    let cases = [
        ("iat in the future", 60, 600, None, false),
        ("nbf in the future", 0, 300, Some(60), false),
        ("lifetime over the configured one", 0, 601, None, false),
        ("lifetime equal to the configured one", 0, 600, None, true),
        ("iat within the leeway", 2, 300, None, true),
        ("nbf within the leeway", 0, 300, Some(2), true),
        ("expired within the leeway", -100, -1, None, true),
        ("expired beyond the leeway", -100, -5, None, false),
    ];
    for (case, iat, exp, nbf, accepted) in cases {
        let t = now();
        let token = token(t + iat, t + exp, nbf.map(|n| t + n));
        let http = me_code(&app, &token).await;
        assert_eq!(http.is_none(), accepted, "HTTP, {case}: {http:?}");
        let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
        ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        match ws.next_frame().await {
            Some(Message::Text(text)) if accepted => assert!(text.contains("connection_ack"), "{case}: {text}"),
            Some(Message::Close(Some(frame))) if !accepted => assert_eq!(u16::from(frame.code), 4403, "{case}"),
            other => panic!("socket, {case}: {other:?}"),
        }
    }
    // The socket accepted within the leeway closes when the leeway runs out (exp + 3 s).
    let exp = now() - 1;
    let late = token(exp - 100, exp, None);
    let mut ws = user_socket(&app, TRANSPORT_WS, &late).await;
    let (code, _) = close_after_data(&mut ws).await;
    let at = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - exp as f64;
    assert_eq!(code, 4403);
    assert!((2.95..3.6).contains(&at), "closed {at:.3} s after exp, leeway 3 s");
}

/// The backlog, then the 1008 close.
async fn expect_slow_consumer_close(ws: &mut Ws) {
    let (code, reason) = close_after_data(ws).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("slow consumer"), "{reason}");
}

/// 20 sockets with 100 subscriptions each that never read, with the default keep-alive: all
/// closed with 1008, and their subscriptions ended, within the slow-client timeout (before the
/// fix: still open after 135 s). Each subscription asks for the quotes of 30 instruments, whose
/// current values come at once: 3,000 messages per socket. Each client reads again 2.5 s after
/// subscribing (1 s slow-client timeout and a margin for a loaded machine): had the server
/// not given up on it by then, it would answer the server's probes and never see a 1008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_sockets_are_closed_1008_with_the_default_keepalive() {
    let app = spawn_app(
        Backend::Sqlite,
        &[("FINQL_WS_SLOW_CLIENT_MS", "1000"), ("FINQL_LIVE_GRACE_MS", "100"), ("FINQL_SIM_TICKS_PER_SEC", "10")],
    )
    .await
    .unwrap();
    let user = app.new_user().await;
    let symbols: Vec<Value> =
        app.data(None, "{ securities(first: 30) { nodes { symbol } } }", json!({})).await["securities"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["symbol"].clone())
            .collect();
    let client = async |_| {
        let mut ws = Ws::connect_small_buffer(&app).await;
        ws.init(Some(&user.access_token)).await;
        for id in 0..100 {
            let payload = json!({ "query": QUOTES, "variables": { "symbols": symbols } });
            let message = json!({ "type": "subscribe", "id": id.to_string(), "payload": payload });
            ws.stream.feed(Message::text(message.to_string())).await.unwrap();
        }
        ws.stream.flush().await.unwrap();
        // Real time: not reading for longer than the server's slow-consumer limit is the point.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        expect_slow_consumer_close(&mut ws).await;
    };
    let started = Instant::now();
    futures::future::join_all((0..20).map(client)).await;
    eprintln!("20 never-reading sockets closed with 1008 in {:?}", started.elapsed());
    within(Duration::from_secs(1), "every subscription ended", async || app.state.live.stats().subscribers == 0).await;
}

/// A client that floods `ping`s and never reads: its pongs are coalesced (at most one waits),
/// and once they fill the socket it is closed with 1008 like any client that does not read.
/// It holds one subscription, so the test can see the server end the connection without
/// reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flooder_that_never_reads_is_closed_1008() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_WS_SLOW_CLIENT_MS", "1000")]).await.unwrap();
    let user = app.new_user().await;
    let mut ws = Ws::connect_small_buffer(&app).await;
    ws.init(Some(&user.access_token)).await;
    let payload = json!({ "query": QUOTES, "variables": { "symbols": ["CRYPTO:BTCUSDT"] } });
    ws.send_json(json!({ "type": "subscribe", "id": "q", "payload": payload })).await;
    within(PATIENCE, "the subscription runs", async || app.state.live.stats().subscribers == 1).await;
    let started = Instant::now();
    let ping = json!({ "type": "ping" }).to_string();
    let mut sent = 0u64;
    // Flood (our sends wait while the server reads slower than we write) until the server
    // ends the connection.
    while app.state.live.stats().subscribers > 0 {
        // 1 s slow-client timeout, and a margin for a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(5), "still open after {:?}", started.elapsed());
        let burst = async {
            for _ in 0..100 {
                ws.stream.feed(Message::text(ping.clone())).await?;
            }
            ws.stream.flush().await
        };
        match tokio::time::timeout(Duration::from_millis(100), burst).await {
            Ok(Ok(())) => sent += 100,
            Ok(Err(err)) => panic!("the socket failed before the server said why: {err}"),
            Err(_) => {}
        }
    }
    eprintln!("ping flooder closed after {:?} ({sent} pings)", started.elapsed());
    expect_slow_consumer_close(&mut ws).await;
}

/// A masked client frame: `opcode` (1 text, 2 binary), written raw.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut bytes = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => bytes.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            bytes.push(0x80 | 126);
            bytes.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            bytes.push(0x80 | 127);
            bytes.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bytes
}

async fn send_raw(ws: &mut Ws, bytes: &[u8]) {
    match ws.stream.get_mut() {
        MaybeTlsStream::Plain(tcp) => tcp.write_all(bytes).await.unwrap(),
        _ => unreachable!("tests speak plain TCP"),
    }
}

/// A frame header announcing 64 MiB: refused from the header (nothing of it is buffered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_1009() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_MAX_BODY_BYTES", "2048")]).await.unwrap();
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    send_raw(&mut ws, &header).await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("2048"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_utf8_text_frame_closes_1007() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    send_raw(&mut ws, &frame(1, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}")).await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!(code, 1007, "{reason}");
}

crate::backend_tests!(a_deleted_users_token_is_unauthenticated);

/// A valid token for a user deleted since: UNAUTHENTICATED everywhere, never INTERNAL.
async fn a_deleted_users_token_is_unauthenticated(app: TestApp) {
    use sea_orm::EntityTrait;
    let user = app.new_user().await;
    let id = uuid::Uuid::parse_str(&user.uuid).unwrap();
    entity::user::Entity::delete_by_id(id).exec(&app.state.db).await.expect("delete the user row");
    assert_eq!(me_code(&app, &user.access_token).await.as_deref(), Some("UNAUTHENTICATED"));
    let body = app.gql(Some(&user.access_token), CREATE, json!({ "input": { "amount": "1", "kind": "DEBIT" } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let body = app.gql(Some(&user.access_token), COUNT, json!({})).await;
    assert!(body.get("errors").is_none() || error_code(&body) == "UNAUTHENTICATED", "{body}");
    // Over WebSocket the token is refused when the connection is initialised: its user is
    // nobody, so it has no tenant and no plan to connect under.
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    let auth = format!("Bearer {}", user.access_token);
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": auth } })).await;
    ws.expect_close(4403).await;
}
