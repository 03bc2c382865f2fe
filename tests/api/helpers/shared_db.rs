//! A database that outlives an app instance: two instances on one database (replicas), or an
//! instance and then the `finql` binary reading what it wrote (the operator's commands).

use std::process::Output;

use super::{Backend, JWT_SECRET, TestApp, new_postgres_schema, spawn_app};

/// Settings pointing app instances and the binary at one database (a SQLite file or a fresh
/// PostgreSQL schema).
pub struct SharedDatabase {
    pub vars: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl SharedDatabase {
    /// `None` for PostgreSQL when `TEST_DATABASE_URL` is unset.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let vars = match backend {
            Backend::Sqlite => {
                vec![("DATABASE_URL".into(), format!("sqlite://{}/shared.db?mode=rwc", dir.path().display()))]
            }
            Backend::Postgres => {
                let Some(url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
                    eprintln!("skipped: TEST_DATABASE_URL is not set");
                    return None;
                };
                vec![("DATABASE_URL".into(), url), ("FINQL_DATABASE_SCHEMA".into(), new_postgres_schema().await)]
            }
        };
        Some(Self { vars, _dir: dir })
    }

    /// An app instance on this database, with `extra` settings.
    pub async fn spawn(&self, backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let mut vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.extend_from_slice(extra);
        spawn_app(backend, &vars).await.unwrap()
    }

    /// Runs the built `finql <command> <args>` on this database, with nothing else from the
    /// test's environment.
    pub async fn finql(&self, command: &str, args: &[&str]) -> Output {
        let data_dir = tempfile::tempdir().unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_finql"))
            .arg(command)
            .args(args)
            .env_clear()
            .current_dir(data_dir.path())
            .env("FINQL_DATA_DIR", data_dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap()
    }
}
