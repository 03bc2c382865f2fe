//! `finql usage`: the built binary on the database an instance wrote at shutdown.

use std::process::Output;

use chrono::Utc;
use serde_json::{Value, json};

use super::{OK, post, prefix};
use crate::helpers::{Backend, shared_db::SharedDatabase};

/// Runs `finql usage <args>` on the shared database.
async fn finql_usage(db: &SharedDatabase, args: &[&str]) -> Output {
    db.finql("usage", args).await
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "finql usage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

mod shutdown_flushes_and_the_cli_reports {
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
        // The periodic flush never comes: only the shutdown's can write these counts.
        let app = db.spawn(backend, &[("FINQL_USAGE_FLUSH_SECS", "3600")]).await;
        let key = app.tenant_key("meter-cli", "pro", "market").await;
        let mut bytes = 0;
        for _ in 0..4 {
            bytes += post(&app, &key, json!({ "query": OK })).await.1;
        }
        assert!(app.state.usage.pending() > 0);
        app.shutdown().await.unwrap();

        let today = Utc::now().date_naive().to_string();
        let actor = format!("key:{}", prefix(&key));
        let json_out =
            finql_usage(&db, &["--tenant", "meter-cli", "--from", &today, "--to", &today, "--format", "json"]).await;
        let report: Value = serde_json::from_str(&stdout(&json_out)).unwrap();
        assert_eq!(report["tenant"], "meter-cli");
        assert_eq!(report["granularity"], "hour");
        let rows = report["rows"].as_array().unwrap();
        let of_key: Vec<&Value> = rows.iter().filter(|row| row["actor"] == actor).collect();
        let sum = |field: &str| of_key.iter().map(|row| row[field].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("requests"), sum("errors"), sum("response_bytes")), (4, 0, bytes), "{report}");

        let csv = stdout(
            &finql_usage(&db, &["--tenant", "meter-cli", "--from", &today, "--to", &today, "--granularity", "day"])
                .await,
        );
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("start,actor,requests,cost,errors,rate_limited,response_bytes,subscription_seconds")
        );
        assert_eq!(lines.collect::<Vec<_>>(), [format!("{today}T00:00:00Z,{actor},4,0,0,0,{bytes},0")]);

        // Operator mistakes: a clear message and a failing exit status.
        for (args, says) in [
            (vec!["--tenant", "nobody", "--from", &today, "--to", &today], "no tenant `nobody`"),
            (vec!["--tenant", "meter-cli", "--from", "yesterday", "--to", &today], "--from"),
            (vec!["--tenant", "meter-cli", "--from", &today, "--to", "2000-01-01"], "`to` must be after `from`"),
        ] {
            let output = finql_usage(&db, &args).await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        }
    }
}
