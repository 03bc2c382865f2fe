//! The WebSocket handshake as strict clients read it, byte for byte: the subprotocol answered
//! with the exact token offered, under `Sec-WebSocket-Protocol` spelled as the client spelled
//! it (Python's gql 4 looks it up case-sensitively); and the origin check of upgrades
//! (`FINQL_CORS_ORIGINS`): a browser's upgrade from another origin refused with 403 before
//! upgrading, clients without `Origin` and the server's own pages let through.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// A safety net for reading the answer, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(10);

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// Sends an upgrade request for `/graphql` with `extra` header lines (each ending in CRLF),
/// and returns the response head exactly as it arrived.
async fn raw_upgrade(app: &TestApp, extra: &str) -> String {
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /graphql HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(PATIENCE, tcp.read(&mut byte)).await.expect("the server answers in time");
        if read.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII head")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subprotocol_is_answered_with_the_offered_token_in_the_clients_spelling() {
    let app = app_with(&[]).await;
    // What gql 4 sends: both protocols, the legacy one first, in the RFC's spelling.
    let head = raw_upgrade(&app, "Sec-WebSocket-Protocol: graphql-ws, graphql-transport-ws\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n"), "{head}");
    // The legacy protocol alone, spelled otherwise: answered the same way.
    let head = raw_upgrade(&app, "sec-websocket-protocol: graphql-ws\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nsec-websocket-protocol: graphql-ws\r\n"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_from_origins_not_allowed_are_refused_before_upgrading() {
    let app = app_with(&[("FINQL_CORS_ORIGINS", "https://app.example.com")]).await;
    let offer = "Sec-WebSocket-Protocol: graphql-transport-ws\r\n";
    let head = raw_upgrade(&app, &format!("{offer}Origin: https://evil.example\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    for allowed in [
        format!("{offer}Origin: https://app.example.com\r\n"),
        // Not a browser.
        offer.to_owned(),
        // The server's own pages (GraphiQL).
        format!("{offer}Origin: http://{}\r\n", app.addr),
    ] {
        let head = raw_upgrade(&app, &allowed).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{allowed}: {head}");
    }
    // Unset: not checked (as before the setting checked upgrades).
    let open = app_with(&[]).await;
    let head = raw_upgrade(&open, &format!("{offer}Origin: https://evil.example\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}
