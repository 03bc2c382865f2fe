//! The `faults` workload of the market benchmark: warm-cache quote throughput while a
//! dependency is gone, as a ratio of the same workload with everything up (issue 9, item 6:
//! with Redis or the upstream gone, cached answers keep at least 80% of their throughput).
//!
//! Each scenario starts its own server with `FINQL_MARKET_SOURCE=itick` against a bench-local
//! iTick REST stand-in (`/…/quotes` only), and, when `BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) answers, `REDIS_URL` pointing at it. Both go through a [`FaultyPort`]
//! that the scenario turns silent (blackholed: accepts, never answers) once the cache is warm.
//! Quotes keep the default 1 s TTL, so the cache refreshes from upstream during the run: that
//! refresh is what a dead dependency used to stall.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, Query},
    routing::get,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A TCP front that forwards to `target` until [`FaultyPort::blackhole`]: then it cuts the
/// open connections and holds new ones without answering.
pub struct FaultyPort {
    pub addr: SocketAddr,
    silent: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
}

impl FaultyPort {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let silent = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let (quiet, tokens) = (silent.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let cut = tokens.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let quiet = quiet.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if quiet {
                        cut.cancelled().await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Ok(Self { addr, silent, cut })
    }

    pub fn blackhole(&self) {
        self.silent.store(true, Ordering::SeqCst);
        // Held connections stay open (never answered); forwarded ones are cut.
        let old = std::mem::replace(&mut *self.cut.lock().unwrap_or_else(|p| p.into_inner()), CancellationToken::new());
        old.cancel();
    }
}

/// A minimal iTick REST upstream: `GET /{asset}/quotes?region=&codes=a,b` with fixed prices.
pub async fn itick_stand_in() -> anyhow::Result<SocketAddr> {
    async fn quotes(
        Path((_, endpoint)): Path<(String, String)>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        if endpoint != "quotes" {
            return Json(json!({"code": 1, "msg": "only quotes here", "data": null}));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let codes = query.get("codes").map(String::as_str).unwrap_or_default();
        let data: serde_json::Map<String, Value> = codes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|code| {
                let quote = json!({"s": code, "ld": 101.5, "o": 100.0, "h": 102.0, "l": 99.5, "p": 100.25,
                    "t": now, "v": 12345, "tu": 1253017.5, "ts": 0, "ch": 1.25, "chp": 1.25});
                (code.to_owned(), quote)
            })
            .collect();
        Json(json!({"code": 0, "msg": null, "data": data}))
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/{asset}/{endpoint}", get(quotes));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// The Redis of `BENCH_REDIS_URL` as a socket address, if it answers a PING.
pub async fn redis_target(url: &str) -> Option<SocketAddr> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(1), client.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.replace("localhost", "127.0.0.1");
    format!("{host}:{}", parsed.port().unwrap_or(6379)).parse().ok()
}

/// The throughput (req/s) in a report of `common::load`.
pub fn throughput(report: &str) -> f64 {
    report
        .split("throughput ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}
