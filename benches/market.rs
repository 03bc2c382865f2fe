//! Benchmark: market-data queries on a warm cache, on the embedded defaults (SQLite catalog,
//! simulated market).
//!
//! ```text
//! cargo bench --bench market
//! ```
//! Optional: `BENCH_SECS` (default 10), `BENCH_CONCURRENCY` (default 32), `BENCH_ONLY`
//! (`quotes`, `securities` or `faults`: run one workload, e.g. under a profiler).
//!
//! `faults` (see `market/faults.rs`) runs the 10-quote workload three times on an iTick
//! upstream with the default 1 s quote TTL, each on a fresh server: everything up, Redis
//! blackholed, the upstream blackholed; and reports each throughput as a ratio of the first.
//!
//! Two workloads, each after a 2 s warm-up: 10 quotes with 6 fields, and 100 securities with
//! their quotes. The server runs in this process on its own 2-thread runtime; the load generator
//! on a separate single-thread runtime, over keep-alive HTTP/1.1 on loopback. The quote cache TTL
//! is raised to the run's length so every request is a cache hit: this measures finql, not the
//! source.

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, time::Duration};

use common::{env_or, load, rss_kib};

#[path = "market/faults.rs"]
mod faults;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEN_QUOTES: &str = r#"{ quotes(symbols: ["AAPL.US", "MSFT.US", "NVDA.US", "AMZN.US", "GOOGL.US", "META.US", "TSLA.US", "700.HK", "9988.HK", "600519.SH"]) { symbol last change changePercent volume timestamp } }"#;
const HUNDRED_SECURITIES: &str = "{ securities(first: 100) { nodes { symbol name quote { last changePercent } } } }";

fn main() -> anyhow::Result<()> {
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let addr = server_rt.block_on(async {
        let vars: HashMap<&str, String> = HashMap::from([
            ("FINQL_ADDR", "127.0.0.1:0".into()),
            ("FINQL_DATA_DIR", dir.path().display().to_string()),
            ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
            ("FINQL_QUOTE_TTL_MS", ((secs + 60) * 1000).to_string()),
            // The load is anonymous and far above any plan: this measures the data path
            // (`benches/limits.rs` measures the limits).
            ("FINQL_ANONYMOUS_PLAN", "enterprise".into()),
            ("FINQL_PLAN_LIMITS", "false".into()),
        ]);
        let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
        let app = finql::App::build(config).await?;
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        anyhow::Ok(addr)
    })?;
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let only: String = env_or("BENCH_ONLY", String::new());
    let workloads = [
        ("quotes", "10 quotes, 6 fields", TEN_QUOTES),
        ("securities", "100 securities with quotes", HUNDRED_SECURITIES),
    ];
    for (_, name, query) in workloads.into_iter().filter(|(key, _, _)| only.is_empty() || only == *key) {
        let report = client_rt.block_on(load(addr, query, None, concurrency, Duration::from_secs(secs)))?;
        println!("{name}: concurrency {concurrency}, {secs} s after 2 s warm-up\n{report}");
    }
    if only.is_empty() || only == "faults" {
        run_faults(&server_rt, &client_rt, dir.path(), concurrency, secs)?;
    }
    println!("process RSS (server + load generator): {} KiB", rss_kib());
    drop(server_rt);
    Ok(())
}

/// The `faults` workload: 10 quotes with everything up, with Redis blackholed, with the
/// upstream blackholed; throughput of each as a ratio of the first.
fn run_faults(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    concurrency: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let redis_url: String = env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379".to_owned());
    let (itick, redis) = server_rt
        .block_on(async { anyhow::Ok((faults::itick_stand_in().await?, faults::redis_target(&redis_url).await)) })?;
    if redis.is_none() {
        println!("faults: no Redis at BENCH_REDIS_URL ({redis_url}); the Redis scenario is skipped");
    }
    let scenarios: [(&str, bool, bool); 3] =
        [("everything up", false, false), ("Redis blackholed", true, false), ("upstream blackholed", false, true)];
    let mut normal = None;
    for (n, (name, cut_redis, cut_upstream)) in scenarios.into_iter().enumerate() {
        if cut_redis && redis.is_none() {
            continue;
        }
        let (addr, itick_port, redis_port) = server_rt.block_on(async {
            let itick_port = faults::FaultyPort::start(itick).await?;
            let redis_port = match redis {
                Some(redis) => Some(faults::FaultyPort::start(redis).await?),
                None => None,
            };
            let mut vars: HashMap<&str, String> = HashMap::from([
                ("FINQL_ADDR", "127.0.0.1:0".into()),
                ("FINQL_DATA_DIR", dir.join(format!("faults-{n}")).display().to_string()),
                ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
                ("FINQL_MARKET_SOURCE", "itick".into()),
                ("ITICK_TOKEN", "bench-token".into()),
                ("ITICK_BASE_URL", format!("http://{}", itick_port.addr)),
                // The stand-in has no quota; the default 600/min would throttle the refreshes.
                ("ITICK_REQUESTS_PER_MINUTE", "1000000".into()),
                ("FINQL_CACHE_NAMESPACE", format!("bench-{}-{n}", std::process::id())),
                ("FINQL_ANONYMOUS_PLAN", "enterprise".into()),
                ("FINQL_PLAN_LIMITS", "false".into()),
            ]);
            if let Some(port) = &redis_port {
                vars.insert("REDIS_URL", format!("redis://{}", port.addr));
            }
            std::fs::create_dir_all(dir.join(format!("faults-{n}")))?;
            let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
            let app = finql::App::build(config).await?;
            let addr = app.local_addr();
            tokio::spawn(app.run_until(std::future::pending()));
            anyhow::Ok((addr, itick_port, redis_port))
        })?;
        // Warm the cache (and the last known quotes) while everything is up, then cut.
        client_rt.block_on(load(addr, TEN_QUOTES, None, 1, Duration::from_millis(100)))?;
        if cut_redis && let Some(port) = &redis_port {
            port.blackhole();
        }
        if cut_upstream {
            itick_port.blackhole();
        }
        let report = client_rt.block_on(load(addr, TEN_QUOTES, None, concurrency, Duration::from_secs(secs)))?;
        let throughput = faults::throughput(&report);
        let base = *normal.get_or_insert(throughput);
        println!(
            "10 quotes, {name}: concurrency {concurrency}, {secs} s after 2 s warm-up, ratio to everything up {:.2}\n{report}",
            throughput / base
        );
    }
    Ok(())
}
