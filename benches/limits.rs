//! Benchmark: what the plan limits cost. The 10-quote query through an API key, on three fresh
//! servers: limits off (`FINQL_PLAN_LIMITS=false`, the baseline), limits in process, and limits
//! in Redis (one Lua script per request); throughput and p99 of each against the baseline.
//!
//! ```text
//! cargo bench --bench limits
//! ```
//! Optional: `BENCH_SECS` (default 10), `BENCH_CONCURRENCY` (default 32), `BENCH_ROUNDS`
//! (default 1: each configuration once; more alternates them and reports the medians, which
//! evens out a noisy machine), `BENCH_REDIS_URL` (default `TEST_REDIS_URL`, else
//! `redis://127.0.0.1:6379`).
//!
//! The key's plan is far above the load (a million requests a second), so no request is
//! refused: this measures admitting, not refusing. Each server runs in this process on its own
//! 2-thread runtime, the load generator on a single-thread runtime, as in `market`; the quote
//! cache TTL covers the run, so every quote is a cache hit.

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, time::Duration};

use common::{LoadStats, env_or, measure, rss_kib};
use tenant::TEN_QUOTES;

#[path = "common/tenant.rs"]
mod tenant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    InProcess,
    Redis,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Off => "limits off",
            Self::InProcess => "limits in process",
            Self::Redis => "limits in Redis",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let rounds: usize = env_or("BENCH_ROUNDS", 1);
    let redis: String = std::env::var("BENCH_REDIS_URL")
        .or_else(|_| std::env::var("TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let modes = [Mode::Off, Mode::InProcess, Mode::Redis];
    let mut results: HashMap<&str, Vec<LoadStats>> = HashMap::new();
    for round in 0..rounds {
        // Alternate the order, so no configuration always runs on a warmer (or hotter) machine.
        let order: Vec<Mode> = if round % 2 == 0 { modes.to_vec() } else { modes.iter().rev().copied().collect() };
        for mode in order {
            let stats = run(mode, &redis, &client_rt, concurrency, secs)?;
            println!(
                "{} (round {}): concurrency {concurrency}, {secs} s after 2 s warm-up\n{stats}",
                mode.name(),
                round + 1
            );
            results.entry(mode.name()).or_default().push(stats);
        }
    }
    let median = |mode: Mode, field: fn(&LoadStats) -> f64| {
        let mut values: Vec<f64> = results[mode.name()].iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (base_rps, base_p99) = (median(Mode::Off, |s| s.throughput), median(Mode::Off, |s| s.p99));
    println!("\nmedians over {rounds} round(s), against limits off ({base_rps:.0} req/s, p99 {base_p99:.2} ms):");
    for mode in [Mode::InProcess, Mode::Redis] {
        let (rps, p99) = (median(mode, |s| s.throughput), median(mode, |s| s.p99));
        println!(
            "{}: {rps:.0} req/s ({:.1}% of off, {:+.1}%), p99 {p99:.2} ms ({:+.2} ms)",
            mode.name(),
            100.0 * rps / base_rps,
            100.0 * (rps - base_rps) / base_rps,
            p99 - base_p99
        );
    }
    println!("process RSS (servers + load generator): {} KiB", rss_kib());
    Ok(())
}

/// One configuration on a fresh server: a tenant on the `bench` plan, its key, the load.
fn run(
    mode: Mode,
    redis: &str,
    client_rt: &tokio::runtime::Runtime,
    concurrency: usize,
    secs: u64,
) -> anyhow::Result<LoadStats> {
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let data = tempfile::tempdir()?;
    let extra = match mode {
        Mode::Off => vec![("FINQL_PLAN_LIMITS", "false".to_owned())],
        Mode::InProcess => vec![],
        Mode::Redis => vec![("REDIS_URL", redis.to_owned())],
    };
    let (addr, key, _) = tenant::start(&server_rt, data.path(), secs, &extra)?;
    let stats = client_rt.block_on(measure(addr, TEN_QUOTES, Some(key), concurrency, Duration::from_secs(secs)))?;
    server_rt.shutdown_timeout(Duration::from_secs(1));
    Ok(stats)
}
