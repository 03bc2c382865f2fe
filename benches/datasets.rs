//! Benchmark: a proprietary dataset query of 100 symbols × 250 days (25,000 points, two typed
//! fields each) through `datasetPoints`, from PostgreSQL, against its anchor: the same points
//! from a plain axum + tokio-postgres handler (`datasets/anchor.rs`), in the same run.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://finql:finql@127.0.0.1:5432/finql_test cargo bench --bench datasets
//! ```
//! (`TEST_DATABASE_URL` is used when `BENCH_DATABASE_URL` is unset.) Optional: `BENCH_SECS`
//! (default 10), `BENCH_CONCURRENCY` (default 4), `BENCH_ROUNDS` (default 3: the three
//! servers alternate, medians reported).
//!
//! Three servers on one database: finql as deployed (reads kept 30 s: after the first, every
//! request is served from memory), finql with `FINQL_DATASET_CACHE_SECS=0` (every request
//! reads PostgreSQL, as a range asked for the first time does), and the anchor. They run in
//! this process on one 2-thread runtime; the load generator on a separate single-thread
//! runtime, over keep-alive HTTP/1.1 on loopback. The load itself (25,000 rows checked and
//! written in one transaction, `DatasetService::load` as `finql dataset load` calls it) is
//! timed too. Data lives in the schema `finql_bench_datasets`, rebuilt on each run.

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets/anchor.rs"]
mod anchor;
mod common;

use std::{
    collections::HashMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use common::{LoadStats, env_or, measure, rss_kib};
use finql::{
    config::{DatabaseConfig, Secret},
    datasets::{DatasetService, Manifest, load::Format, service::LoadOptions},
    reference::ReferenceService,
};
use sea_orm::ConnectionTrait;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEMA: &str = "finql_bench_datasets";
const SYMBOLS: usize = 100;
const DAYS: usize = 250;
const MANIFEST: &str = r#"
name = "factors"
description = "Daily risk factors (benchmark)"
key = ["symbol", "time"]
[fields.value]
type = "decimal"
[fields.score]
type = "integer"
[fields.label]
type = "text"
"#;

fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .map_err(|_| anyhow::anyhow!("set BENCH_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL database"))?;
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 4);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let data = tempfile::tempdir()?;
    let manifests = tempfile::tempdir()?;
    std::fs::write(manifests.path().join("factors.toml"), MANIFEST)?;
    let days = trading_days();
    let range = (
        Utc.from_utc_datetime(&days[0].and_hms_opt(0, 0, 0).unwrap()),
        Utc.from_utc_datetime(&days[DAYS - 1].succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap()),
    );

    let (servers, symbols) = server_rt.block_on(async {
        reset_schema(&url).await?;
        let start = |cache_secs: &str| {
            let vars: HashMap<&str, String> = HashMap::from([
                ("FINQL_ADDR", "127.0.0.1:0".into()),
                ("FINQL_DATA_DIR", data.path().display().to_string()),
                ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
                ("DATABASE_URL", url.clone()),
                ("FINQL_DATABASE_SCHEMA", SCHEMA.into()),
                ("FINQL_DATASETS_DIR", manifests.path().display().to_string()),
                ("FINQL_DATASET_CACHE_SECS", cache_secs.into()),
                // Anonymous and far above any plan: this measures the data path.
                ("FINQL_ANONYMOUS_PLAN", "enterprise".into()),
                ("FINQL_PLAN_LIMITS", "false".into()),
            ]);
            async move {
                let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
                let app = finql::App::build(config).await?;
                let addr = app.local_addr();
                tokio::spawn(app.run_until(std::future::pending()));
                anyhow::Ok(addr)
            }
        };
        let cached = start("30").await?;
        let uncached = start("0").await?;
        let symbols = seed(&url, manifests.path(), &days).await?;
        let anchor = anchor::start(&url, SCHEMA, symbols.clone(), range, (SYMBOLS * DAYS) as i64 + 1).await?;
        anyhow::Ok((
            [("finql (reads kept)", cached), ("finql (every read from PostgreSQL)", uncached), ("anchor", anchor)],
            symbols,
        ))
    })?;

    let mut list = String::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let _ = write!(list, "{}\"{symbol}\"", if i > 0 { ", " } else { "" });
    }
    let query = format!(
        r#"{{ datasetPoints(name: "factors", symbols: [{list}], from: "{}", to: "{}", first: {}) {{ symbol time value: decimal(field: "value") score: integer(field: "score") }} }}"#,
        range.0.to_rfc3339(),
        range.1.to_rfc3339(),
        SYMBOLS * DAYS
    );
    let mut results: Vec<Vec<LoadStats>> = vec![Vec::new(); servers.len()];
    for round in 1..=rounds {
        for (i, (name, addr)) in servers.iter().enumerate() {
            let stats = client_rt.block_on(measure(*addr, &query, None, concurrency, Duration::from_secs(secs)))?;
            println!("round {round}, {name}: {stats}");
            results[i].push(stats);
        }
    }
    let median = |runs: &[LoadStats], f: fn(&LoadStats) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "\n{SYMBOLS} symbols × {DAYS} days ({} points, 2 fields) per request, concurrency {concurrency}, {secs} s per run, medians of {rounds}:",
        SYMBOLS * DAYS
    );
    let anchor_rps = median(&results[2], |s| s.throughput);
    for ((name, _), runs) in servers.iter().zip(&results) {
        let rps = median(runs, |s| s.throughput);
        println!(
            "  {name}: {rps:.1} req/s ({:.2}× the anchor), p50 {:.1} ms, p99 {:.1} ms",
            rps / anchor_rps,
            median(runs, |s| s.p50),
            median(runs, |s| s.p99),
        );
    }
    println!("process RSS (servers + load generator): {} KiB", rss_kib());
    drop(server_rt);
    Ok(())
}

/// The last `DAYS` weekdays up to 2026-11-27, oldest first.
fn trading_days() -> Vec<NaiveDate> {
    let mut day = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let mut days = Vec::with_capacity(DAYS);
    while days.len() < DAYS {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            days.push(day);
        }
        day = day.pred_opt().unwrap();
    }
    days.reverse();
    days
}

async fn reset_schema(url: &str) -> anyhow::Result<()> {
    let db = sea_orm::Database::connect(url).await?;
    db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")).await?;
    db.close().await?;
    Ok(())
}

/// Loads `SYMBOLS` × `DAYS` rows as `finql dataset load` would, timing it; returns the symbols.
async fn seed(url: &str, manifests: &std::path::Path, days: &[NaiveDate]) -> anyhow::Result<Vec<String>> {
    let config = DatabaseConfig {
        url: Secret::new(url.to_owned()),
        schema: Some(SCHEMA.into()),
        max_connections: 5,
        min_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        migrate_on_start: true,
    };
    let db = finql::db::connect(&config).await?;
    let reference = ReferenceService::new(db.clone());
    let mut symbols = reference.symbols().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    symbols.sort();
    symbols.truncate(SYMBOLS);
    anyhow::ensure!(symbols.len() == SYMBOLS, "the catalog holds fewer than {SYMBOLS} instruments");
    let manifest = finql::datasets::manifest::load_dir(manifests)?;
    let datasets = DatasetService::open(db.clone(), manifest, reference, Duration::ZERO).await?;
    let mut csv = String::from("symbol,time,value,score,label\n");
    for (s, symbol) in symbols.iter().enumerate() {
        for (d, day) in days.iter().enumerate() {
            let n = s * DAYS + d;
            let _ = writeln!(csv, "{symbol},{day},{}.{:04},{},q{}", 50 + n % 450, (n * 7919) % 10_000, n % 100, n % 5);
        }
    }
    let manifest: &Manifest = datasets.manifest("factors").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let started = Instant::now();
    let report = datasets
        .load(manifest, Format::Csv, csv.as_bytes(), LoadOptions::default(), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(report.written && report.accepted == (SYMBOLS * DAYS) as u64, "the load failed: {report:?}");
    let took = started.elapsed().as_secs_f64();
    println!(
        "load: {} rows checked and written in one transaction in {took:.2} s ({:.0} rows/s)",
        report.accepted,
        report.accepted as f64 / took
    );
    db.close().await?;
    Ok(symbols)
}
