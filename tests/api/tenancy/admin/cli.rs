//! The operator CLI, as operators run it: the built `finql` binary on a database (a temporary
//! SQLite file), and a server on the same database seeing what it did.

use std::process::Output;

use serde_json::json;
use tokio::process::Command;

use super::{TENANT, key_data};
use crate::helpers::{Backend, PATIENCE, TestApp, error_code, spawn_app, within};

/// Runs `finql ARGS` on the database `url`, with nothing else from the test's environment.
async fn finql(url: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finql"))
        .args(args)
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("FINQL_DATA_DIR", dir)
        .output()
        .await
        .expect("the finql binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let output = finql(url, dir, args).await;
    assert!(output.status.success(), "finql {args:?} failed:\n{}\n{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// Runs a command that must fail; returns its stderr.
async fn fails(url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let output = finql(url, dir, args).await;
    assert!(!output.status.success(), "finql {args:?} succeeded:\n{}", stdout(&output));
    assert!(stdout(&output).is_empty(), "a failure prints no result: {}", stdout(&output));
    stderr(&output)
}

/// The secret a `finql key create` printed: alone on the last line.
fn secret(out: &str) -> String {
    let last = out.trim_end_matches('\n').lines().last().unwrap_or_default();
    assert!(last.starts_with("fq_") && !last.contains(' '), "last line is not a key alone: {out:?}");
    last.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_up_two_tenants_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ops.db?mode=rwc", dir.path().display());
    let dir = dir.path();

    // Two tenants on different plans; each prints its id and nothing else.
    let retail = ok(&url, dir, &["tenant", "create", "retail", "--plan", "basic", "--name", "Retail Desk"]).await;
    let quant = ok(&url, dir, &["tenant", "create", "quant", "--plan", "pro"]).await;
    let retail_id = uuid::Uuid::parse_str(retail.trim()).expect("a tenant id");
    assert_eq!(retail.lines().count(), 1, "{retail:?}");
    uuid::Uuid::parse_str(quant.trim()).expect("a tenant id");
    // Mistakes are refused with a reason, and change nothing.
    let err = fails(&url, dir, &["tenant", "create", "retail", "--plan", "pro"]).await;
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&url, dir, &["tenant", "create", "other", "--plan", "platinum"]).await;
    assert!(err.contains("no plan `platinum`") && err.contains("basic"), "{err}");
    let err = fails(&url, dir, &["tenant", "create", "Bad Slug", "--plan", "pro"]).await;
    assert!(err.contains("BAD_USER_INPUT"), "{err}");
    let err = fails(&url, dir, &["tenant", "set-plan", "nobody", "pro"]).await;
    assert!(err.contains("no tenant `nobody`"), "{err}");
    let err = fails(&url, dir, &["key", "create", "--tenant", "nobody", "--name", "x"]).await;
    assert!(err.contains("no tenant `nobody`"), "{err}");
    let err =
        fails(&url, dir, &["key", "create", "--tenant", "retail", "--name", "x", "--scopes", "market,trade"]).await;
    assert!(err.contains("unknown scope `trade`"), "{err}");
    let err = fails(&url, dir, &["key", "create", "--tenant", "retail", "--name", "x", "--expires-in-days", "0"]).await;
    assert!(err.contains("--expires-in-days"), "{err}");
    let err = fails(&url, dir, &["key", "revoke", "zzzzzzzzzzzz"]).await;
    assert!(err.contains("no API key"), "{err}");

    // Keys: all three scopes by default; the secret alone on the last line.
    let retail_out = ok(&url, dir, &["key", "create", "--tenant", "retail", "--name", "web"]).await;
    let retail_key = secret(&retail_out);
    assert!(retail_out.contains("scopes market,live,admin") && retail_out.contains("expires never"), "{retail_out}");
    let quant_out = ok(
        &url,
        dir,
        &["key", "create", "--tenant", "quant", "--name", "bot", "--scopes", "market", "--expires-in-days", "30"],
    )
    .await;
    let quant_key = secret(&quant_out);
    assert!(quant_out.contains("scopes market, expires 20"), "{quant_out}");

    // A server on that database: each key sees its own tenant and plan.
    let app = spawn_app(Backend::Sqlite, &[("DATABASE_URL", &url)]).await.unwrap();
    let data = key_data(&app, &retail_key, TENANT, json!({})).await;
    assert_eq!(data["tenant"]["id"], retail_id.to_string());
    assert_eq!(data["tenant"]["name"], "Retail Desk");
    assert_eq!(data["tenant"]["plan"]["name"], "basic");
    let data = key_data(&app, &quant_key, TENANT, json!({})).await;
    assert_eq!(
        (data["tenant"]["slug"].clone(), data["tenant"]["plan"]["name"].clone()),
        (json!("quant"), json!("pro"))
    );
    let keys = key_data(&app, &retail_key, "{ tenant { apiKeys { name scopes expiresAt } } }", json!({})).await;
    assert_eq!(
        keys["tenant"]["apiKeys"],
        json!([{ "name": "web", "scopes": ["MARKET", "LIVE", "ADMIN"], "expiresAt": null }])
    );
    // The market-only key is no admin.
    let (_, _, body) = app.gql_key(&quant_key, "{ tenant { apiKeys { id } } }", json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Each key sees what its plan allows: basic has US in real time, HK delayed, no crypto;
    // pro has every market in real time.
    let quotes = r#"{ quotes(symbols: ["AAPL.US", "700.HK", "CRYPTO:BTCUSDT"]) { symbol delayed } }"#;
    let (_, _, body) = app.gql_key(&retail_key, quotes, json!({})).await;
    assert_eq!(body["data"]["quotes"][0], json!({ "symbol": "AAPL.US", "delayed": false }), "{body}");
    assert_eq!(body["data"]["quotes"][1], json!({ "symbol": "700.HK", "delayed": true }), "{body}");
    assert_eq!(body["data"]["quotes"][2], json!(null), "{body}");
    let refused = &body["errors"][0];
    assert_eq!(refused["path"], json!(["quotes", 2]), "{body}");
    assert_eq!(refused["extensions"]["reason"], "ENTITLEMENT_REQUIRED", "{body}");
    assert_eq!(refused["extensions"]["market"], "CRYPTO", "{body}");
    let (_, _, body) = app.gql_key(&quant_key, quotes, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let delayed: Vec<&serde_json::Value> =
        body["data"]["quotes"].as_array().unwrap().iter().map(|q| &q["delayed"]).collect();
    assert_eq!(delayed, [false, false, false], "{body}");

    // A new plan reaches the running server (within its cache's lifetime).
    let out = ok(&url, dir, &["tenant", "set-plan", "retail", "enterprise"]).await;
    assert_eq!(out.trim(), "tenant retail is on plan enterprise");
    plan_becomes(&app, &retail_key, "enterprise").await;

    // Revoking by prefix (or by the whole key) reaches it too.
    let prefix = retail_key.split('_').nth(1).unwrap();
    let out = ok(&url, dir, &["key", "revoke", prefix]).await;
    assert!(out.starts_with(&format!("revoked API key {prefix} of tenant retail")), "{out}");
    let out = ok(&url, dir, &["key", "revoke", &quant_key]).await;
    assert!(out.contains("of tenant quant"), "{out}");
    for key in [&retail_key, &quant_key] {
        within(PATIENCE, "the revoked key to be refused", async || {
            let (_, _, body) = app.gql_key(key, "{ tenant { slug } }", json!({})).await;
            body["errors"][0]["message"] == "API key revoked"
        })
        .await;
    }
    // The shutdown writes the usage it counted; `finql usage` reports it per key.
    app.shutdown().await.unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    let report = |tenant: &'static str| {
        let (url, today) = (url.clone(), today.clone());
        async move {
            let args = ["usage", "--tenant", tenant, "--from", &today, "--to", &today, "--format", "json"];
            serde_json::from_str::<serde_json::Value>(&ok(&url, dir, &args).await).expect("JSON")
        }
    };
    let (retail, quant) = (report("retail").await, report("quant").await);
    let actors = |report: &serde_json::Value| -> Vec<String> {
        report["rows"].as_array().unwrap().iter().map(|row| row["actor"].as_str().unwrap().to_owned()).collect()
    };
    let quant_prefix = quant_key.split('_').nth(1).unwrap();
    assert!(actors(&retail).iter().all(|actor| actor == &format!("key:{prefix}")), "{retail}");
    assert!(actors(&quant).iter().all(|actor| actor == &format!("key:{quant_prefix}")), "{quant}");
    let requests = |report: &serde_json::Value| -> u64 {
        report["rows"].as_array().unwrap().iter().map(|row| row["requests"].as_u64().unwrap()).sum()
    };
    // The quant key: the tenant query, the admin refusal, the quotes (once revoked, a key is
    // nobody, and nobody is not metered).
    assert!(requests(&quant) >= 3 && requests(&retail) >= 4, "{retail}\n{quant}");
}

async fn plan_becomes(app: &TestApp, key: &str, plan: &str) {
    within(PATIENCE, "the new plan to apply", async || {
        let (_, _, body) = app.gql_key(key, "{ tenant { plan { name } } }", json!({})).await;
        body["data"]["tenant"]["plan"]["name"] == plan
    })
    .await;
}
