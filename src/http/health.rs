//! Liveness and readiness, for load balancers and orchestrators.
//!
//! `/health` says the process is alive (no dependencies checked: restarting a healthy process
//! because the database blinked would make things worse). `/ready` says this replica should get
//! traffic: the database answers and the server is not shutting down.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::state::AppState;

pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "shutting down" })));
    }
    // A probe that hangs is worse than one that fails.
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready", "database": "up" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "down" })))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "timeout" }))),
    }
}

/// `finql healthcheck`: GET /health on FINQL_ADDR (a wildcard address is probed on loopback).
/// Plain HTTP/1.1 over a socket, so the container image needs no curl.
pub async fn probe() -> anyhow::Result<()> {
    let raw = std::env::var("FINQL_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let mut addr: SocketAddr = raw.parse().with_context(|| format!("FINQL_ADDR=`{raw}` is not an address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        anyhow::Ok(head[..n].starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => anyhow::bail!("{addr}/health did not answer 200"),
        Ok(Err(err)) => anyhow::bail!("{addr}/health: {err}"),
        Err(_) => anyhow::bail!("{addr}/health: timed out"),
    }
}
