//! Liveness and readiness, for load balancers and orchestrators.
//!
//! `/health` says the process is alive (no dependencies checked: restarting a healthy process
//! because the database blinked would make things worse). `/ready` says this replica should get
//! traffic: the database answers and the server is not shutting down. It also reports each
//! dependency's state for operators (`database`, `redis`, each market source: `ok` | `stale` |
//! `down`; `redis` is `off` without `REDIS_URL`), with the live sources' freshness in `detail`;
//! only the database decides the status code: with Redis down finql degrades (per-replica
//! limits, no shared cache), and a stale source is as stale on every replica, so taking this
//! one out of rotation would help no one.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{live::freshness::SourceState, resilience::breaker::BreakerState, state::AppState};

pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "shutting down" })));
    }
    // A probe that hangs is worse than one that fails (Redis has its own, shorter, timeout).
    let (database, redis) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(2), state.db.ping()), state.freshness.redis_answers());
    let database_up = match database {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer within 2 s");
            false
        }
    };
    let (sources, detail) = sources(&state);
    let body = json!({
        "status": if database_up { "ready" } else { "unavailable" },
        "database": if database_up { "ok" } else { "down" },
        "redis": match redis { None => "off", Some(true) => "ok", Some(false) => "down" },
        "sources": sources,
        "detail": { "sources": detail },
    });
    let status = if database_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// Each source's state (a source whose breaker is not closed is `down`, whatever its stream
/// says; a live stream's staleness comes from `live::freshness`), and the live sources' detail.
fn sources(state: &AppState) -> (BTreeMap<&'static str, &'static str>, BTreeMap<&'static str, Value>) {
    let mut states: BTreeMap<&'static str, SourceState> = BTreeMap::new();
    let mut detail = BTreeMap::new();
    for report in state.freshness.sources() {
        states.insert(report.source, report.state);
        detail.insert(
            report.source,
            json!({
                "state": report.state.as_str(),
                "lastEventAgeSeconds": report.last_event_age.as_secs_f64(),
                "lagSeconds": report.lag.as_secs_f64(),
                "inSession": report.in_session.iter().map(|m| m.code()).collect::<Vec<_>>(),
            }),
        );
    }
    for breaker in state.market.source_health() {
        let down = !matches!(breaker.state, BreakerState::Closed { .. });
        let entry = states.entry(breaker.name).or_insert(SourceState::Ok);
        if down {
            *entry = SourceState::Down;
        }
    }
    (states.into_iter().map(|(name, s)| (name, s.as_str())).collect(), detail)
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
