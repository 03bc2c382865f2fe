//! Benchmark: what metrics and the audit trail cost. The 10-quote query through a tenant's API
//! key (so every request carries a tenant label and writes an audit record), on fresh servers
//! with observability off (`FINQL_METRICS=off`, `FINQL_AUDIT=off`), metrics only, and metrics
//! and audit (the defaults); throughput, p99 and the server's CPU per request of each against
//! off.
//!
//! ```text
//! cargo bench --bench observability
//! ```
//! Optional: `BENCH_SECS` (default 10), `BENCH_CONCURRENCY` (default 32), `BENCH_ROUNDS`
//! (default 3: the configurations alternate, the medians are reported).
//!
//! The metrics recorder is process-wide (the `metrics` facade has one slot), so a server with
//! metrics off must not share a process with one that installed it: each configuration runs in
//! a child process (this binary again, `BENCH_OBSERVABILITY_CHILD` naming the configuration),
//! the server on a 2-thread runtime and the load generator on a single-thread one, as in
//! `limits`. Audit records go to the embedded SQLite database, the development default; the
//! report says how many were written and dropped.

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, time::Duration};

use common::{LoadStats, env_or, measure, rss_kib};
use cpu::{cpu_secs, main_thread_cpu_secs};
use tenant::TEN_QUOTES;

#[path = "common/tenant.rs"]
mod tenant;

#[path = "common/cpu.rs"]
mod cpu;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The variable that makes this binary a child running one configuration.
const CHILD: &str = "BENCH_OBSERVABILITY_CHILD";

/// The configurations: a name, and the variables that make it.
const MODES: [(&str, [(&str, &str); 2]); 3] = [
    ("off", [("FINQL_METRICS", "off"), ("FINQL_AUDIT", "off")]),
    ("metrics", [("FINQL_METRICS", "on"), ("FINQL_AUDIT", "off")]),
    ("metrics+audit", [("FINQL_METRICS", "on"), ("FINQL_AUDIT", "on")]),
];

fn main() -> anyhow::Result<()> {
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode, concurrency, secs);
    }
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let mut results: HashMap<&str, Vec<LoadStats>> = HashMap::new();
    let mut cpus: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        // Alternate the order, so no configuration always runs on a warmer (or hotter) machine.
        let order: Vec<&str> = if round % 2 == 0 {
            MODES.iter().map(|(name, _)| *name).collect()
        } else {
            MODES.iter().rev().map(|(name, _)| *name).collect()
        };
        for mode in order {
            let output = std::process::Command::new(std::env::current_exe()?).env(CHILD, mode).output()?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            anyhow::ensure!(output.status.success(), "{mode}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
            let stats = parse(&stdout).ok_or_else(|| anyhow::anyhow!("{mode}: no result in {stdout}"))?;
            let cpu: f64 = stdout.lines().find_map(|line| line.strip_prefix("CPU ")?.parse().ok()).unwrap_or(0.0);
            println!(
                "{mode} (round {}): concurrency {concurrency}, {secs} s after 2 s warm-up\n{stats}\nserver CPU {cpu:.1} µs per request",
                round + 1
            );
            cpus.entry(mode).or_default().push(cpu);
            for line in stdout.lines().filter(|line| line.starts_with("audit") || line.starts_with("process")) {
                println!("{line}");
            }
            results.entry(mode).or_default().push(stats);
        }
    }
    let median = |mode: &str, field: fn(&LoadStats) -> f64| {
        let mut values: Vec<f64> = results[mode].iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let median_cpu = |mode: &str| {
        let mut values = cpus[mode].clone();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (base_rps, base_p99, base_cpu) = (median("off", |s| s.throughput), median("off", |s| s.p99), median_cpu("off"));
    println!(
        "\nmedians over {rounds} round(s), against off ({base_rps:.0} req/s, p99 {base_p99:.2} ms, server CPU {base_cpu:.1} µs per request):"
    );
    for (mode, _) in &MODES[1..] {
        let (rps, p99, cpu) = (median(mode, |s| s.throughput), median(mode, |s| s.p99), median_cpu(mode));
        println!(
            "{mode}: {rps:.0} req/s ({:.1}% of off, {:+.1}%), p99 {p99:.2} ms ({:+.2} ms), server CPU {cpu:.1} µs per request ({:+.1}%)",
            100.0 * rps / base_rps,
            100.0 * (rps - base_rps) / base_rps,
            p99 - base_p99,
            100.0 * (cpu - base_cpu) / base_cpu
        );
    }
    Ok(())
}

/// One configuration, in this child process: the server, the load, the result on one line.
fn child(mode: &str, concurrency: usize, secs: u64) -> anyhow::Result<()> {
    let (_, vars) = MODES.iter().find(|(name, _)| *name == mode).ok_or_else(|| anyhow::anyhow!("no mode {mode}"))?;
    let extra: Vec<(&'static str, String)> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let data = tempfile::tempdir()?;
    let (addr, key, state) = tenant::start(&server_rt, data.path(), secs, &extra)?;
    // The server's CPU in the measured window (`measure` warms up for 2 s first), per
    // request: every thread's but the main one's, where the load generator runs.
    let server_cpu = || cpu_secs() - main_thread_cpu_secs();
    let cpu_at_start = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        server_cpu()
    });
    let stats = client_rt.block_on(measure(addr, TEN_QUOTES, Some(key), concurrency, Duration::from_secs(secs)))?;
    let cpu = server_cpu() - cpu_at_start.join().unwrap_or(0.0);
    let s = stats;
    println!("RESULT {} {} {} {} {} {} {}", s.requests, s.errors, s.throughput, s.p50, s.p90, s.p99, s.max);
    println!("CPU {}", 1e6 * cpu / s.requests.max(1) as f64);
    println!("process RSS (server + load generator): {} KiB", rss_kib());
    if state.audit.enabled() {
        // What the writer took: everything up to now, once it has drained.
        let written = server_rt.block_on(async {
            use sea_orm::{EntityTrait, PaginatorTrait};
            state.audit.close().await;
            entity::audit_log::Entity::find().count(&state.db).await
        })?;
        println!("audit: {written} records written, {} dropped (buffer full)", state.audit.dropped_total());
    }
    server_rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// The child's `RESULT` line.
fn parse(stdout: &str) -> Option<LoadStats> {
    let line = stdout.lines().find_map(|line| line.strip_prefix("RESULT "))?;
    let values: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [requests, errors, throughput, p50, p90, p99, max] = values[..] else { return None };
    Some(LoadStats { requests: requests as u64, errors: errors as u64, throughput, p50, p90, p99, max })
}
