//! The anchor finql's ledger is measured against: the same page of the same user's
//! transactions from a plain axum handler on tokio-postgres, the least a Rust service could do
//! to answer it. One prepared statement per connection, 16 connections used in turn (a
//! tokio-postgres client pipelines the queries sent to it), rows written straight into the
//! JSON finql answers with (the same shape and fields; amounts as decimal strings). It checks
//! no token (the user is fixed) and parses no GraphQL: the ratio is what finql's auth, GraphQL,
//! ORM and metering cost on top of the driver.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::post};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio_postgres::{Client, NoTls, Statement};

const CONNECTIONS: usize = 16;
const PAGE: &str = "SELECT id, amount_scaled, currency, kind, occurred_at FROM transactions \
                    WHERE user_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT 50";

struct Anchor {
    clients: Vec<(Client, Statement)>,
    next: AtomicUsize,
    user: uuid::Uuid,
}

/// Starts the anchor on a random port of loopback, on the calling runtime.
pub async fn start(url: &str, schema: &str, user: uuid::Uuid) -> anyhow::Result<SocketAddr> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(&format!("SET search_path TO {schema}")).await?;
        let page = client.prepare(PAGE).await?;
        clients.push((client, page));
    }
    let anchor = Arc::new(Anchor { clients, next: AtomicUsize::new(0), user });
    let app = Router::new().route("/graphql", post(page)).with_state(anchor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn page(State(anchor): State<Arc<Anchor>>) -> axum::response::Response {
    let (client, statement) = &anchor.clients[anchor.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS];
    let rows = match client.query(statement, &[&anchor.user]).await {
        Ok(rows) => rows,
        Err(err) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let mut body = String::with_capacity(64 + rows.len() * 160);
    body.push_str(r#"{"data":{"transactions":{"edges":["#);
    for (i, row) in rows.iter().enumerate() {
        let id: uuid::Uuid = row.get(0);
        let scaled: i64 = row.get(1);
        let currency: &str = row.get(2);
        let kind: &str = row.get(3);
        let at: DateTime<Utc> = row.get(4);
        if i > 0 {
            body.push(',');
        }
        // Amounts are stored in ten-thousandths; USD and EUR show two decimal places.
        let _ = write!(
            body,
            r#"{{"node":{{"id":"{id}","amount":"{}.{:02}","currency":"{currency}","kind":"{kind}","occurredAt":"{}"}}}}"#,
            scaled / 10_000,
            (scaled % 10_000).abs() / 100,
            at.to_rfc3339_opts(SecondsFormat::Micros, true),
        );
    }
    body.push_str("]}}}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
