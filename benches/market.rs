//! Benchmark: market-data queries on a warm cache, on the embedded defaults (SQLite catalog,
//! simulated market).
//!
//! ```text
//! cargo bench --bench market
//! ```
//! Optional: `BENCH_SECS` (default 10), `BENCH_CONCURRENCY` (default 32), `BENCH_ONLY`
//! (`quotes` or `securities`: run one workload, e.g. under a profiler).
//!
//! Two workloads, each after a 2 s warm-up: 10 quotes with 6 fields, and 100 securities with
//! their quotes. The server runs in this process on its own 2-thread runtime; the load generator
//! on a separate single-thread runtime, over keep-alive HTTP/1.1 on loopback. The quote cache TTL
//! is raised to the run's length so every request is a cache hit: this measures finql, not the
//! source.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{env_or, load, rss_kib};

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
    println!("process RSS (server + load generator): {} KiB", rss_kib());
    drop(server_rt);
    Ok(())
}
