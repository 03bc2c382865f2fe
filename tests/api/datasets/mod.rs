//! Proprietary datasets: manifests in `FINQL_DATASETS_DIR`, loads (the `loadDataset` mutation
//! here, `finql dataset load` in `cli`), typed reads through `Security.dataset` and
//! `datasetPoints`, entitlements and loaders, the audit; on SQLite and PostgreSQL.

mod api;
mod cli;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, plans_file, spawn_app};

/// The shipped example's manifest (`examples/datasets`).
pub const RATINGS_MANIFEST: &str = include_str!("../../../examples/datasets/analyst_ratings.toml");
/// The shipped example's rows: 10 instruments, a review on the 15th of each month.
pub const RATINGS_CSV: &str = include_str!("../../../examples/datasets/analyst_ratings.csv");

/// A dataset keyed by symbol alone, which only `research` may load.
pub const ESG_MANIFEST: &str = r#"
name = "esg"
description = "ESG scores"
key = ["symbol"]
loaders = ["research"]
[fields.score]
type = "decimal"
required = true
[fields.reviewed]
type = "date"
[fields.flagged_at]
type = "datetime"
"#;

/// A generous plan called `name`, with `extra` keys (`datasets = [...]`).
fn plan(name: &str, extra: &str) -> String {
    format!(
        "[plans.{name}]\nrate_per_second = 1000\nburst = 1000\ncost_per_minute = 100000000\nmax_connections = 50\n\
         max_live_symbols = 1000\nhistory_days = 3650\nfundamentals = true\ndelay_minutes = 15\n{extra}\n\
         [plans.{name}.markets]\n\"*\" = \"realtime\"\n"
    )
}

/// A manifests folder and a plan file, kept as long as the app that reads them.
pub struct Fixture {
    pub manifests: tempfile::TempDir,
    _plans: tempfile::TempDir,
    pub settings: Vec<(String, String)>,
}

impl Fixture {
    /// The example ratings and `esg`, under the plans above (anonymous callers get nothing),
    /// with request bodies up to 1 MiB.
    pub fn new() -> Self {
        let manifests = tempfile::tempdir().unwrap();
        std::fs::write(manifests.path().join("analyst_ratings.toml"), RATINGS_MANIFEST).unwrap();
        std::fs::write(manifests.path().join("esg.toml"), ESG_MANIFEST).unwrap();
        // `full` reads every dataset (no `datasets` key); `esg_only` reads `esg` alone.
        let (plans_dir, plans) = plans_file(&(plan("full", "") + &plan("esg_only", "datasets = [\"esg\"]")));
        let settings = [
            ("FINQL_DATASETS_DIR", manifests.path().display().to_string()),
            ("FINQL_PLANS_FILE", plans),
            ("FINQL_DEFAULT_PLAN", "full".into()),
            ("FINQL_ANONYMOUS_PLAN", "none".into()),
            // Room for uploads past `loadDataset`'s own row cap (the default is 100 KiB).
            ("FINQL_MAX_BODY_BYTES", "1048576".into()),
        ];
        Self { manifests, _plans: plans_dir, settings: settings.map(|(k, v)| (k.to_owned(), v)).into() }
    }

    pub fn vars(&self) -> Vec<(&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// A server on these settings; `None` for PostgreSQL without `TEST_DATABASE_URL`.
    pub async fn spawn(&self, backend: Backend) -> Option<TestApp> {
        spawn_app(backend, &self.vars()).await
    }
}

const LOAD: &str = "mutation($input: LoadDatasetInput!) { loadDataset(input: $input) { \
                    accepted rejected rejects { line message } written rowCount } }";

/// `loadDataset` with `key`; returns the whole body.
pub async fn load(app: &TestApp, key: &str, input: Value) -> Value {
    let (status, _, body) = app.gql_key(key, LOAD, json!({ "input": input })).await;
    assert_eq!(status, 200, "{body}");
    body
}
