//! Benchmark: the first 50 of one user's transactions (5 fields), from PostgreSQL holding
//! 100,000 transactions over 100 users, at a fixed concurrency, against its anchor: the same
//! page from a plain axum + tokio-postgres handler (`transactions/anchor.rs`), in the same run.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://finql:finql@127.0.0.1:5432/finql_test cargo bench --bench transactions
//! ```
//! (`TEST_DATABASE_URL` is used when `BENCH_DATABASE_URL` is unset.) Optional: `BENCH_SECS`
//! (default 10), `BENCH_CONCURRENCY` (default 64), `BENCH_ROUNDS` (default 3: finql and the
//! anchor alternate, medians reported), `BENCH_ROWS` (default 100000), `BENCH_USERS` (default
//! 100; 1 puts every row on the measured user, e.g. for `transactionAnalytics`),
//! `BENCH_SPACING_SECS` (default 420: the seconds between consecutive rows),
//! `FINQL_DB_MAX_CONNECTIONS` (default 16), and `BENCH_QUERY` to measure another query as the
//! same user (e.g. `{ __typename }` for the cost of HTTP, auth and GraphQL without the
//! database; the anchor then is not run).
//!
//! Both servers run in this process on one 2-thread runtime; the load generator runs on a
//! separate single-thread runtime, over keep-alive HTTP/1.1 connections on loopback. Data lives
//! in the schema `finql_bench`, rebuilt on each run so figures are reproducible. Each round
//! reports its errors (non-2xx answers and GraphQL errors) and its slowest request: a stall
//! shows there.

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "transactions/anchor.rs"]
mod anchor;
mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use common::{LoadStats, env_or, measure, rss_kib};
use entity::{transaction, user};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, EntityTrait};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEMA: &str = "finql_bench";
/// Rebuilds the daily rollups from the seeded rows, as migration `m20261205_000001` backfills
/// an existing ledger (the seed inserts rows directly, past the service that keeps them).
const ROLLUP_BACKFILL: &str = "DELETE FROM transaction_rollups; \
    INSERT INTO transaction_rollups (user_id, currency, day, kind, status, category, n, units, rem) \
    SELECT user_id, currency, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), kind, status, \
    COALESCE(category, ''), COUNT(*), CAST(SUM(amount_scaled / 10000) AS BIGINT), \
    CAST(SUM(amount_scaled % 10000) AS BIGINT) FROM transactions \
    GROUP BY user_id, currency, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), kind, status, \
    COALESCE(category, '')";
const QUERY: &str = "{ transactions(first: 50) { edges { node { id amount currency kind occurredAt } } } }";

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let Some(url) = std::env::var("BENCH_DATABASE_URL").or_else(|_| std::env::var("TEST_DATABASE_URL")).ok() else {
        eprintln!("skipped: set BENCH_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL database");
        return Ok(());
    };
    let rows: usize = env_or("BENCH_ROWS", 100_000);
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let users: usize = env_or("BENCH_USERS", 100).max(1);

    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (addr, anchor_addr, token) = server_rt.block_on(async {
        let admin = Database::connect(&url).await?;
        admin.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")).await?;
        admin.close().await?;
        let dir = tempfile::tempdir()?;
        let vars: HashMap<&str, String> = HashMap::from([
            ("FINQL_ADDR", "127.0.0.1:0".into()),
            ("DATABASE_URL", url.clone()),
            ("FINQL_DATABASE_SCHEMA", SCHEMA.into()),
            ("FINQL_DATA_DIR", dir.path().display().to_string()),
            ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
            ("FINQL_DB_MAX_CONNECTIONS", env_or("FINQL_DB_MAX_CONNECTIONS", 16u32).to_string()),
            // The load is far above any plan's rate: this measures the ledger (`benches/limits.rs`
            // measures the limits).
            ("FINQL_PLAN_LIMITS", "false".into()),
        ]);
        let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
        let app = finql::App::build(config).await?;
        let addr = app.local_addr();
        let db = app.state().db.clone();
        tokio::spawn(app.run_until(std::future::pending()));

        let token = sign_up(addr).await?;
        let seeded = Instant::now();
        seed(&db, &token.1, rows, users).await?;
        db.execute_unprepared(ROLLUP_BACKFILL).await?;
        // A long-lived table is vacuumed by autovacuum; a freshly bulk-loaded one is not yet.
        db.execute_unprepared("VACUUM ANALYZE").await?;
        eprintln!("seeded {rows} transactions over {users} users in {:.1?}", seeded.elapsed());
        let anchor_addr = anchor::start(&url, SCHEMA, user_uuid(&token.1)?).await?;
        anyhow::Ok((addr, anchor_addr, token.0))
    })?;

    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let query = std::env::var("BENCH_QUERY").unwrap_or_else(|_| QUERY.to_owned());
    if query == QUERY {
        client_rt.block_on(expect_full_page(addr, &token))?;
    }
    let duration = Duration::from_secs(secs);
    let with_anchor = query == QUERY;
    println!("query: {query}");
    println!(
        "{rows} rows over {users} users (PostgreSQL); concurrency {concurrency}, {secs} s after 2 s warm-up, {rounds} rounds"
    );
    let (mut finql, mut anchor) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let run = client_rt.block_on(measure(addr, &query, Some(token.clone()), concurrency, duration))?;
        println!("round {round} finql:  {}", one_line(&run));
        finql.push(run);
        if with_anchor {
            let run = client_rt.block_on(measure(anchor_addr, &query, None, concurrency, duration))?;
            println!("round {round} anchor: {}", one_line(&run));
            anchor.push(run);
        }
    }
    let finql = median(&finql);
    println!("finql (median):  {}", one_line(&finql));
    if with_anchor {
        let anchor = median(&anchor);
        println!("anchor (median): {}", one_line(&anchor));
        println!(
            "finql / anchor: throughput {:.2}x, p99 {:.2} ms vs {:.2} ms",
            finql.throughput / anchor.throughput,
            finql.p99,
            anchor.p99
        );
    }
    println!("process RSS (servers + load generator): {} KiB", rss_kib());
    drop(server_rt);
    Ok(())
}

fn one_line(run: &LoadStats) -> String {
    format!(
        "{:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, errors {}",
        run.throughput, run.p50, run.p99, run.max, run.errors
    )
}

/// The round with the median throughput (its latencies with it); errors and the worst
/// latency of every round, so that a stall or an error in any round shows.
fn median(runs: &[LoadStats]) -> LoadStats {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
    let mut median = sorted[sorted.len() / 2];
    median.errors = runs.iter().map(|run| run.errors).sum();
    median.max = runs.iter().map(|run| run.max).fold(0.0, f64::max);
    median
}

/// The UUID in a `User` global id (`base64("User:<uuid>")`).
fn user_uuid(global_id: &str) -> anyhow::Result<uuid::Uuid> {
    let decoded = finql::graphql::global_id::GlobalId::decode(global_id, "id")
        .map_err(|_| anyhow::anyhow!("not a global id: {global_id}"))?;
    Ok(decoded.key.parse()?)
}

/// Sanity check: the measured query really returns a full page.
async fn expect_full_page(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<()> {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": QUERY }))
        .send()
        .await?
        .json()
        .await?;
    let edges = body["data"]["transactions"]["edges"].as_array().map(Vec::len).unwrap_or(0);
    anyhow::ensure!(edges == 50, "expected 50 transactions, got: {body}");
    Ok(())
}

/// Signs up the measured user; returns (access token, user id).
async fn sign_up(addr: std::net::SocketAddr) -> anyhow::Result<(String, String)> {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": "mutation { signUp(input: {email: \"bench@example.com\", password: \"benchmark password\", fullName: \"Bench\"}) { accessToken user { id } } }" }))
        .send()
        .await?
        .json()
        .await?;
    let payload = &body["data"]["signUp"];
    Ok((
        payload["accessToken"].as_str().ok_or_else(|| anyhow::anyhow!("sign-up failed: {body}"))?.to_owned(),
        payload["user"]["id"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// `users - 1` more users, then `rows` transactions spread evenly over all of them.
async fn seed(db: &sea_orm::DatabaseConnection, bench_user: &str, rows: usize, users: usize) -> anyhow::Result<()> {
    // Seconds between consecutive rows (7 minutes by default: 100,000 rows span 486 days).
    let spacing: i64 = env_or("BENCH_SPACING_SECS", 420);
    let now = Utc::now();
    let mut ids = vec![user_uuid(bench_user)?];
    let others: Vec<user::ActiveModel> = (1..users)
        .map(|i| {
            let id = uuid::Uuid::now_v7();
            ids.push(id);
            user::ActiveModel {
                id: Set(id),
                email: Set(format!("user{i}@example.com")),
                full_name: Set(format!("User {i}")),
                password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$not-a-real-hash".into()),
                tenant_id: Set(None),
                role: Set("MEMBER".into()),
                created_at: Set(now),
                updated_at: Set(now),
            }
        })
        .collect();
    if !others.is_empty() {
        user::Entity::insert_many(others).exec(db).await?;
    }
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("valid date");
    // 1,000 rows per INSERT: 11 parameters each stays far below PostgreSQL's 65,535 limit.
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<transaction::ActiveModel> = chunk
            .iter()
            .map(|&i| {
                let at = start + chrono::Duration::seconds(i as i64 * spacing);
                transaction::ActiveModel {
                    id: Set(uuid::Uuid::now_v7()),
                    user_id: Set(ids[i % users]),
                    amount_scaled: Set(((i * 7919) % 500_000 + 100) as i64 * 100),
                    currency: Set(if i % 10 == 0 { "EUR" } else { "USD" }.into()),
                    kind: Set(if i % 3 == 0 { "CREDIT" } else { "DEBIT" }.into()),
                    status: Set("SUCCESS".into()),
                    description: Set(Some(format!("transaction {i}"))),
                    category: Set(Some(["groceries", "rent", "salary", "travel"][i % 4].into())),
                    occurred_at: Set(at),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
            })
            .collect();
        transaction::Entity::insert_many(batch).exec(db).await?;
    }
    Ok(())
}
