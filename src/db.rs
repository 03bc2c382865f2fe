//! Database connection and migrations.
//!
//! SQLite is the embedded default (a file under the data folder, created on first run);
//! PostgreSQL is for production. Both run the same migrations and the same queries.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use crate::config::DatabaseConfig;

pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<DatabaseConnection> {
    let url = config.url.expose();
    if let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder for the SQLite database {}", parent.display()))?;
    }
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(config.max_connections)
        .min_connections(1)
        // Fail fast when the database is down: readiness probes and requests should see an
        // error in seconds, not hang for sqlx's 30 s default.
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if let Some(schema) = &config.schema {
        options.set_schema_search_path(schema.clone());
    }
    let db = Database::connect(options).await.context("connecting to the database (check DATABASE_URL)")?;
    if sqlite_path(url).is_some() {
        // WAL lets readers proceed while a writer commits; the setting persists in the file.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await.context("enabling SQLite WAL mode")?;
    }
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("running database migrations")
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}
