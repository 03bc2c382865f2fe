//! Credentials that lapse under a live socket, beyond the session tokens of `sessions`:
//! an API key revoked while its subscription streams (nothing sent by the client, on the
//! replica that revoked it and on another), and a token given on the upgrade request rather
//! than in `connection_init` (it used to leave the connection anonymous, its public
//! subscriptions outliving the token).

use serde_json::json;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use super::sessions::{close_after_data, next_message, short_lived, subscribe_quotes};
use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
};

/// The key's prefix (`fq_<prefix>_<secret>`), which names it to `revoke_key`.
fn prefix(key: &str) -> String {
    key.split('_').nth(1).expect("fq_<prefix>_<secret>").to_owned()
}

async fn key_socket(url: &str, key: &str) -> Ws {
    let mut ws = Ws::connect_url(url, TRANSPORT_WS).await;
    ws.send_json(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } })).await;
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_key_ends_its_streaming_socket() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let key = app.tenant_key("desk-ws-revoke", "developer", "market,live").await;
    let mut ws = key_socket(&app.ws_url(), &key).await;
    subscribe_quotes(&mut ws, "q").await;
    let revoked = std::time::Instant::now();
    app.state.tenancy.revoke_key(None, &prefix(&key)).await.unwrap();
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: API key revoked"));
    eprintln!("closed {:?} after the revocation (bound: 1 s re-check)", revoked.elapsed());
}

/// Two replicas on one database: a key revoked on one ends its socket on the other, within
/// that replica's key cache (5 s) and one re-check (1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_replica_ends_its_socket_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/shared.db?mode=rwc", dir.path().display());
    let vars = [("DATABASE_URL", database.as_str())];
    let a = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let b = spawn_app(Backend::Sqlite, &vars).await.unwrap();
    let key = a.tenant_key("desk-ws-replicas", "developer", "market,live").await;
    let mut ws = key_socket(&b.ws_url(), &key).await;
    subscribe_quotes(&mut ws, "q").await;
    let revoked = std::time::Instant::now();
    a.state.tenancy.revoke_key(None, &prefix(&key)).await.unwrap();
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: API key revoked"));
    eprintln!("B closed the socket {:?} after the revocation on A (bound: 6 s)", revoked.elapsed());
}

/// A token on the upgrade request (`Authorization` header; the `connection_init` payload has
/// none) is the connection's: the socket is the user's, and it ends when the token expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_on_the_handshake_is_the_connections_and_expires_with_it() {
    let app = short_lived("2").await;
    let user = app.new_user().await;
    let mut request = app.ws_url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(TRANSPORT_WS));
    headers.insert("Authorization", HeaderValue::from_str(&format!("Bearer {}", user.access_token)).unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("the handshake succeeds");
    let mut ws = Ws { stream };
    ws.send_json(json!({ "type": "connection_init" })).await;
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    ws.subscribe("me", "{ me { id } }").await;
    let me = next_message(&mut ws).await;
    assert_eq!(me["payload"]["data"]["me"]["id"], json!(user.id), "{me}");
    assert_eq!(next_message(&mut ws).await, json!({ "type": "complete", "id": "me" }));
    subscribe_quotes(&mut ws, "q").await;
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: access token expired"));
}

/// `X-API-Key` on the upgrade request works like the key in `connection_init`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_on_the_handshake_is_the_connections() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let key = app.tenant_key("desk-ws-header", "developer", "market,live").await;
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(TRANSPORT_WS));
    request.headers_mut().insert("X-API-Key", HeaderValue::from_str(&key).unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("the handshake succeeds");
    let mut ws = Ws { stream };
    ws.send_json(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    subscribe_quotes(&mut ws, "q").await;
    app.state.tenancy.revoke_key(None, &prefix(&key)).await.unwrap();
    let (code, reason) = close_after_data(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4403, "Forbidden: API key revoked"));
}
