//! `finql audit`: the built binary exports what an instance wrote (its last records drained at
//! shutdown), as CSV and JSON Lines, for the tenant asked for only.

use std::process::Output;

use chrono::Utc;
use serde_json::{Value, json};

use crate::helpers::{Backend, shared_db::SharedDatabase};

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "finql audit failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

mod the_cli_exports_a_tenants_records {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let Some(db) = SharedDatabase::new(backend).await else { return };
        let app = db.spawn(backend, &[]).await;
        let key = app.tenant_key("audit-cli", "pro", "market").await;
        let other = app.tenant_key("audit-cli-other", "pro", "market").await;
        let query = "query Export($s: String!) { quote(symbol: $s) { last } }";
        for symbol in ["AAPL.US", "700.HK"] {
            assert_eq!(app.gql_key(&key, query, json!({ "s": symbol })).await.0, 200);
        }
        assert_eq!(app.gql_key(&other, query, json!({ "s": "MSFT.US" })).await.0, 200);
        // Shut down at once: the records still in the writer's hands are drained.
        app.shutdown().await.unwrap();

        let today = Utc::now().date_naive().to_string();
        let range = ["--tenant", "audit-cli", "--from", today.as_str(), "--to", today.as_str()];
        let json_out = stdout(&db.finql("audit", &[&range[..], &["--format", "json"]].concat()).await);
        let lines: Vec<Value> = json_out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{json_out}");
        let symbols: Vec<&Value> = lines.iter().map(|l| &l["symbols"]).collect();
        assert_eq!(symbols, [&json!(["AAPL.US"]), &json!(["700.HK"])], "oldest first, this tenant's only");
        let principal = format!("key:{}", key.split('_').nth(1).unwrap());
        assert!(lines.iter().all(|l| l["principal"] == principal.as_str() && l["fields"] == json!(["quote.last"])));

        let csv = stdout(&db.finql("audit", &range).await);
        let mut rows = csv.lines();
        assert!(rows.next().unwrap().starts_with("at,id,trace_id,principal,event"), "{csv}");
        let rows: Vec<&str> = rows.collect();
        assert_eq!(rows.len(), 2, "{csv}");
        assert!(rows[0].contains(",AAPL.US,ok,"), "{csv}");

        // Yesterday holds nothing; an unknown tenant is an error.
        let yesterday = (Utc::now() - chrono::TimeDelta::days(1)).date_naive().to_string();
        let empty = stdout(
            &db.finql(
                "audit",
                &["--tenant", "audit-cli", "--from", &yesterday, "--to", &yesterday, "--format", "json"],
            )
            .await,
        );
        assert_eq!(empty, "");
        let unknown = db.finql("audit", &["--tenant", "nobody", "--from", &today, "--to", &today]).await;
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant `nobody`"));
    }
}
