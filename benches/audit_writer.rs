//! Benchmark: what the audit writer costs per record, in CPU time (every thread of the
//! process, the database driver's included), away from the request path whose throughput
//! `observability` measures. The 10-quote operation's record, appended in the writer's batches.
//!
//! ```text
//! cargo bench --bench audit_writer
//! ```
//! Optional: `BENCH_RECORDS` (default 100000), `BENCH_DATABASE_URL` (PostgreSQL; default an
//! SQLite file in a temporary folder).

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Instant};

use finql::{
    audit::{AuditRecord, Event, Operation, Transport, store::AuditStore},
    config::{DatabaseConfig, Secret},
    identity::{Credentials, Principal, TenantRef},
};
use uuid::Uuid;

/// The writer's batch size (`audit::service::BATCH`).
const BATCH: usize = 500;

fn main() -> anyhow::Result<()> {
    let records: usize = std::env::var("BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let data = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/finql.db?mode=rwc", data.path().display()));
    runtime.block_on(async {
        let config = DatabaseConfig {
            url: Secret::new(url),
            schema: None,
            max_connections: 5,
            min_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
            migrate_on_start: true,
        };
        let db = finql::db::connect(&config).await?;
        finql::db::migrate(&db).await?;
        let store = AuditStore::new(db);
        let record = sample();
        for round in 1..=3 {
            let (cpu, wall) = (cpu_time(), Instant::now());
            let mut left = records;
            while left > 0 {
                let n = left.min(BATCH);
                let rows: Vec<(Uuid, AuditRecord)> = (0..n).map(|_| (Uuid::now_v7(), record.clone())).collect();
                store.append(&rows).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                left -= n;
            }
            let (cpu, wall) = (cpu_time() - cpu, wall.elapsed().as_secs_f64());
            println!(
                "round {round}: {records} records, {:.2} µs CPU per record ({:.0} records/s of wall time)",
                cpu * 1e6 / records as f64,
                records as f64 / wall
            );
        }
        anyhow::Ok(())
    })
}

/// The record of one 10-quote request through an API key.
fn sample() -> AuditRecord {
    let symbols = ["AAPL.US", "MSFT.US", "NVDA.US", "AMZN.US", "GOOGL.US", "META.US", "TSLA.US", "700.HK", "9988.HK"];
    let fields = ["change", "changePercent", "last", "symbol", "timestamp", "volume"];
    let operation = Operation {
        operation_type: Some(async_graphql::parser::types::OperationType::Query),
        operation_name: None,
        document_hash: Some("9f2c".repeat(16)),
        fields: fields.iter().map(|f| format!("quotes.{f}")).collect(),
        symbols: symbols.iter().map(|s| (*s).to_owned()).chain(["600519.SH".to_owned()]).collect(),
        truncated: false,
    };
    let mut principal = Principal::without_tenant(Credentials::Anonymous, None);
    principal.tenant = Some(TenantRef { id: Uuid::new_v4(), slug: Arc::from("bench") });
    let mut record = AuditRecord::new(
        &principal,
        Some(Uuid::new_v4().simple().to_string()),
        Event::Request,
        Transport::Http,
        Arc::new(operation),
    );
    record.principal = "key:fq_bench01".into();
    record.response_bytes = 1_400;
    record
}

/// CPU time of the whole process so far (user and system, every thread), in seconds, from
/// `/proc/self/stat` (clock ticks of 10 ms: a round takes seconds).
fn cpu_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap();
    // utime and stime: the 14th and 15th fields, the 12th and 13th after the name.
    (ticks(11) + ticks(12)) / 100.0
}
