//! The anchor finql's dataset reads are measured against: the same points from a plain axum
//! handler on tokio-postgres, the least a Rust service could do to answer them. One prepared
//! statement per connection, connections used in turn, rows written straight into the JSON
//! finql answers with (same shape, same fields, decimals as strings). It checks no key and
//! parses no GraphQL: the ratio is what finql's auth, GraphQL, typed values and audit cost on
//! top of the driver.

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

const CONNECTIONS: usize = 8;
const POINTS: &str = "SELECT symbol, time, value, score FROM ds_factors \
                      WHERE symbol = ANY($1) AND time >= $2 AND time < $3 ORDER BY symbol, time LIMIT $4";

struct Anchor {
    clients: Vec<(Client, Statement)>,
    next: AtomicUsize,
    symbols: Vec<String>,
    range: (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
}

/// Starts the anchor on a random port of loopback, on the calling runtime.
pub async fn start(
    url: &str,
    schema: &str,
    symbols: Vec<String>,
    range: (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
) -> anyhow::Result<SocketAddr> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(&format!("SET search_path TO {schema}")).await?;
        let statement = client.prepare(POINTS).await?;
        clients.push((client, statement));
    }
    let anchor = Arc::new(Anchor { clients, next: AtomicUsize::new(0), symbols, range, limit });
    let app = Router::new().route("/graphql", post(points)).with_state(anchor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn points(State(anchor): State<Arc<Anchor>>) -> axum::response::Response {
    let (client, statement) = &anchor.clients[anchor.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS];
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&anchor.symbols, &anchor.range.0, &anchor.range.1, &anchor.limit];
    let rows = match client.query(statement, &params).await {
        Ok(rows) => rows,
        Err(err) => return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let mut body = String::with_capacity(64 + rows.len() * 96);
    body.push_str(r#"{"data":{"datasetPoints":["#);
    for (i, row) in rows.iter().enumerate() {
        let symbol: &str = row.get(0);
        let time: DateTime<Utc> = row.get(1);
        let value: Option<&str> = row.get(2);
        let score: Option<i32> = row.get(3);
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"symbol":"{symbol}","time":"{}","value":"{}","score":{}}}"#,
            time.to_rfc3339_opts(SecondsFormat::Micros, true),
            value.unwrap_or_default(),
            score.unwrap_or_default(),
        );
    }
    body.push_str("]}}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
