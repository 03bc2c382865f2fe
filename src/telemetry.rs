//! Logging. `RUST_LOG` picks levels (default `info`, without PostgreSQL's notices: every start
//! would log "relation seaql_migrations already exists, skipping"); `FINQL_LOG_FORMAT=json`
//! emits one JSON object per line for log shippers.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{Config, LogFormat};

const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber. Safe to call more than once (later calls are no-ops), which
/// lets tests start many servers in one process.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
