//! The load generator shared by the benchmarks: a fixed number of concurrent keep-alive
//! HTTP/1.1 clients posting one GraphQL query in a loop, latency measured to the last byte of
//! each response (as a client sees it), after a warm-up.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::json;

pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of this process (server and load generator), in KiB.
pub fn rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)).map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

/// What one load run measured.
#[derive(Clone, Copy, Debug)]
pub struct LoadStats {
    pub requests: u64,
    pub errors: u64,
    /// Requests a second.
    pub throughput: f64,
    /// Latency percentiles, in milliseconds.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl std::fmt::Display for LoadStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests {}, errors {}, throughput {:.0} req/s\nlatency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.requests, self.errors, self.throughput, self.p50, self.p90, self.p99, self.max
        )
    }
}

/// Runs `query` (as `token`'s user, if any) from `concurrency` clients for 2 s of warm-up and
/// then `duration`, and reports throughput and latency percentiles.
#[allow(dead_code, reason = "each benchmark binary uses `load` or `measure`")]
pub async fn load(
    addr: std::net::SocketAddr,
    query: &str,
    token: Option<String>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<String> {
    Ok(measure(addr, query, token, concurrency, duration).await?.to_string())
}

/// [`load`], as numbers.
pub async fn measure(
    addr: std::net::SocketAddr,
    query: &str,
    token: Option<String>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadStats> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let url = format!("http://{addr}/graphql");
    let body = serde_json::to_vec(&json!({ "query": query }))?;
    let post = |client: &reqwest::Client, body: Vec<u8>| {
        let mut request = client.post(&url).header("content-type", "application/json").body(body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        request
    };
    let check: serde_json::Value = post(&client, body.clone()).send().await?.json().await?;
    anyhow::ensure!(check.get("errors").is_none(), "the query failed: {check}");

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let request = post(&client, body.clone());
        let (measuring, stop, errors) = (measuring.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = request.try_clone().expect("a buffered body clones").send().await;
                // An answer with GraphQL errors (`SERVICE_UNAVAILABLE`, `TIMEOUT`, …) is an
                // error too, though its status is 200.
                let ok = match response {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.is_ok_and(|body| !body.windows(9).any(|w| w == b"\"errors\":"))
                    }
                    _ => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        histogram.record(started.elapsed().as_micros() as u64).ok();
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            histogram
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for worker in workers {
        total.add(worker.await?)?;
    }
    let count = total.len();
    let ms = |quantile: f64| total.value_at_quantile(quantile) as f64 / 1000.0;
    Ok(LoadStats {
        requests: count,
        errors: errors.load(Ordering::Relaxed),
        throughput: count as f64 / elapsed.as_secs_f64(),
        p50: ms(0.50),
        p90: ms(0.90),
        p99: ms(0.99),
        max: total.max() as f64 / 1000.0,
    })
}
