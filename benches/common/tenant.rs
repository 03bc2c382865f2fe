//! A benchmark server as a paying tenant sees it: the 10-quote query through an API key of a
//! tenant whose plan no benchmark load reaches, the quote cache warm for the whole run.
//! Shared by the benchmarks that measure what sits on every request (`limits`,
//! `observability`); included with `#[path]`, so the others do not compile it.

use std::{collections::HashMap, net::SocketAddr, path::Path};

/// The workload: 10 quotes with 6 fields each.
pub const TEN_QUOTES: &str = r#"{ quotes(symbols: ["AAPL.US", "MSFT.US", "NVDA.US", "AMZN.US", "GOOGL.US", "META.US", "TSLA.US", "700.HK", "9988.HK", "600519.SH"]) { symbol last change changePercent volume timestamp } }"#;

/// A plan no benchmark load reaches, and the `developer` plan the development defaults name.
const PLANS: &str = r#"
[plans.bench]
rate_per_second = 1000000
burst = 1000000
cost_per_minute = 4000000000
max_connections = 1000
max_live_symbols = 10000
history_days = 36500
fundamentals = true
delay_minutes = 15
[plans.bench.markets]
"*" = "realtime"

[plans.developer]
rate_per_second = 1000
burst = 2000
cost_per_minute = 10000000
max_connections = 1000
max_live_symbols = 10000
history_days = 36500
fundamentals = true
delay_minutes = 15
[plans.developer.markets]
"*" = "realtime"
"#;

/// Starts finql on `server_rt` with its data in `data` (the plans file is written there), the
/// quote cache held for `secs` and more, and `extra` variables over those; creates the tenant
/// `bench` on the `bench` plan and a market key for it. Its address, the key and its state.
pub fn start(
    server_rt: &tokio::runtime::Runtime,
    data: &Path,
    secs: u64,
    extra: &[(&'static str, String)],
) -> anyhow::Result<(SocketAddr, String, finql::state::AppState)> {
    let plans = data.join("plans.toml");
    std::fs::write(&plans, PLANS)?;
    server_rt.block_on(async {
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("FINQL_ADDR", "127.0.0.1:0".into()),
            ("FINQL_DATA_DIR", data.display().to_string()),
            ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
            ("FINQL_QUOTE_TTL_MS", ((secs + 60) * 1000).to_string()),
            ("FINQL_PLANS_FILE", plans.display().to_string()),
            ("FINQL_CACHE_NAMESPACE", format!("bench-{}", uuid::Uuid::new_v4().simple())),
            // The load is the key's: no anonymous plan (the file has none to name).
            ("FINQL_ANONYMOUS_PLAN", "none".into()),
        ]);
        vars.extend(extra.iter().cloned());
        let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
        let app = finql::App::build(config).await?;
        let addr = app.local_addr();
        let tenancy = app.state().tenancy.clone();
        let tenant = tenancy.create_tenant("bench", "bench", "bench").await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let spec = finql::tenancy::service::KeySpec {
            name: "bench".into(),
            scopes: finql::identity::Scopes::parse("market").map_err(anyhow::Error::msg)?,
            expires_at: None,
            rate: None,
            created_by: None,
        };
        let key = tenancy.create_key(tenant.id, spec).await.map_err(|e| anyhow::anyhow!("{e:?}"))?.secret;
        let state = app.state().clone();
        tokio::spawn(app.run_until(std::future::pending()));
        anyhow::Ok((addr, key, state))
    })
}
