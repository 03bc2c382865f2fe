//! Database connection and migrations.
//!
//! SQLite is the embedded default (a file under the data folder, created on first run);
//! PostgreSQL is for production. Both run the same migrations and the same queries.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
    sqlx::{self, ConnectOptions as _, Connection as _},
};

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
        .min_connections(config.min_connections)
        // Fail fast when the database is down: readiness probes and requests should see an
        // error in seconds, not hang for sqlx's 30 s default.
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(config.acquire_timeout)
        // A ping before a checkout only for a connection idle 30 s or more (one a server,
        // proxy or firewall may have dropped): SeaORM's default pings before every checkout, a
        // round trip per query, and a busy pool's connections are never idle that long.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
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

/// Runs the pending migrations.
///
/// Replicas start together (a deployment rolls out, a node comes back): on PostgreSQL each one
/// first takes an advisory lock on a connection of its own, keyed by the schema, so they migrate
/// one at a time and the later ones find the work done, instead of racing to create the same
/// tables and failing to start. The lock goes with that connection, even if migrating fails.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.context("running database migrations");
    }
    let schema = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT current_schema() AS s"))
        .await
        .context("reading the current schema")?
        .and_then(|row| row.try_get::<String>("", "s").ok())
        .unwrap_or_default();
    let mut lock = db
        .get_postgres_connection_pool()
        .connect_options()
        .connect()
        .await
        .context("connecting to lock the migrations")?;
    sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind(MIGRATION_LOCK)
        .bind(&schema)
        .execute(&mut lock)
        .await
        .context("waiting for another replica's migrations")?;
    let migrated = Migrator::up(db, None).await.context("running database migrations");
    // Closing the connection releases the lock.
    let _ = lock.close().await;
    migrated
}

/// The first half of the advisory-lock key of migrations (the second is the schema's hash).
const MIGRATION_LOCK: i32 = 0x6669_6e71; // "finq" in ASCII

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}
