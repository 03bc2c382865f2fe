//! The operator's commands: tenants, their API keys and their usage, on the configured
//! database, without a running server (`finql tenant …`, `finql key …`, `finql usage …`,
//! `finql dataset load …`, `finql reconcile …`).
//!
//! Each command opens the database the server would (`DATABASE_URL`), applies pending
//! migrations when the server would (`FINQL_MIGRATE_ON_START`), acts through the same
//! `TenancyService` the admin API uses, and returns what to print: scripts read it, so stdout
//! carries only the result (the tenant id; a key's secret alone on the last line) and logs go
//! to stderr. A running server sees the changes within `tenancy::service::CACHE_TTL`.

/// `finql audit`: a tenant's audit trail as CSV or JSON Lines (compliance exports).
pub mod audit;
/// `finql dataset load`: a proprietary dataset from a CSV or JSON Lines file.
pub mod dataset;
/// `finql reconcile`: a T+1 reconciliation of a day across the configured sources.
pub mod reconcile;
/// `finql usage`: a tenant's usage as CSV or JSON (billing exports).
pub mod usage;

use chrono::{Duration, Utc};
use clap::Subcommand;

use crate::{
    config::Config,
    db,
    error::AppError,
    identity::Scopes,
    tenancy::{
        TenancyService, keys,
        service::{ApiKey, KeySpec},
    },
};

/// The longest `--expires-in-days`: ten years. A key meant to outlive that is a key that never
/// expires (omit the flag).
const MAX_EXPIRY_DAYS: u32 = 3650;

/// `finql tenant …`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant on a plan; prints its id.
    Create {
        /// Unique, URL-safe name: lower-case letters, digits and `-`.
        slug: String,
        /// A plan of the deployment (`FINQL_PLANS_FILE`, or the built-ins).
        #[arg(long)]
        plan: String,
        /// Display name (the slug when omitted).
        #[arg(long)]
        name: Option<String>,
    },
    /// Move a tenant to another plan (running servers apply it within seconds).
    SetPlan { slug: String, plan: String },
}

/// `finql key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key of a tenant; prints the secret alone on the last line (shown once).
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// Comma-separated: market, live, admin.
        #[arg(long, default_value = "market,live,admin")]
        scopes: String,
        /// The key stops working this many days from now (never when omitted).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke the key with this prefix (the `<prefix>` of `fq_<prefix>_…`; the whole key works
    /// too).
    Revoke { prefix: String },
}

/// Logs for a command: warnings and errors (`RUST_LOG` to change), on stderr, since stdout is
/// the command's result, which scripts read.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::postgres::notice=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs `finql tenant …`; returns what to print.
pub async fn tenant(config: &Config, command: TenantCommand) -> anyhow::Result<String> {
    let tenancy = open(config).await?;
    match command {
        TenantCommand::Create { slug, plan, name } => {
            let name = name.unwrap_or_else(|| slug.clone());
            let tenant = tenancy.create_tenant(&slug, &name, &plan).await.map_err(failure)?;
            Ok(tenant.id.to_string())
        }
        TenantCommand::SetPlan { slug, plan } => {
            let tenant = tenancy.set_plan(&slug, &plan).await.map_err(failure)?;
            Ok(format!("tenant {} is on plan {}", tenant.slug, tenant.plan))
        }
    }
}

/// Runs `finql key …`; returns what to print.
pub async fn key(config: &Config, command: KeyCommand) -> anyhow::Result<String> {
    let tenancy = open(config).await?;
    match command {
        KeyCommand::Create { tenant, name, scopes, expires_in_days } => {
            let scopes = Scopes::parse(&scopes).map_err(|why| anyhow::anyhow!("--scopes: {why}"))?;
            let expires_at = match expires_in_days {
                None => None,
                Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => Some(Utc::now() + Duration::days(days.into())),
                Some(_) => anyhow::bail!("--expires-in-days must be between 1 and {MAX_EXPIRY_DAYS}"),
            };
            let found = tenancy.tenant_by_slug(&tenant).await.map_err(failure)?;
            let found = found.ok_or_else(|| anyhow::anyhow!("no tenant `{tenant}`"))?;
            let spec = KeySpec { name, scopes, expires_at, rate: None, created_by: None };
            let created = tenancy.create_key(found.id, spec).await.map_err(failure)?;
            Ok(format!(
                "{}\nstore the key now: it is shown once, finql keeps only its hash\n{}",
                describe(&created.key, &found.slug),
                created.secret
            ))
        }
        KeyCommand::Revoke { prefix } => {
            // The whole key names its prefix too: an operator holding a leaked key pastes it.
            let prefix = keys::prefix_of(&prefix).map(str::to_owned).unwrap_or(prefix);
            let key = tenancy.revoke_key(None, &prefix).await.map_err(failure)?;
            let tenant = tenancy.tenant(key.tenant_id).await.map_err(failure)?;
            let slug = tenant.map(|t| t.slug).unwrap_or_default();
            let at = key.revoked_at.map(|at| at.to_rfc3339()).unwrap_or_default();
            Ok(format!("revoked {} (revoked at {at})", describe(&key, &slug)))
        }
    }
}

/// One line naming a key: prefix, tenant, name, scopes, expiry.
fn describe(key: &ApiKey, tenant: &str) -> String {
    let expires = key.expires_at.map(|at| at.to_rfc3339()).unwrap_or_else(|| "never".into());
    format!("API key {} of tenant {tenant}: name {:?}, scopes {}, expires {expires}", key.prefix, key.name, key.scopes)
}

/// The tenancy service on the configured database, migrated as the server would.
async fn open(config: &Config) -> anyhow::Result<TenancyService> {
    let db = db::connect(&config.database).await?;
    if config.database.migrate_on_start {
        db::migrate(&db).await?;
    }
    Ok(TenancyService::new(db, &config.tenancy))
}

/// An error for the operator: the client message and code, or an internal error's cause.
fn failure(err: AppError) -> anyhow::Error {
    match err {
        AppError::Internal(_) => anyhow::anyhow!("{err:?}"),
        other => anyhow::anyhow!("{} ({})", other.message(), other.code().as_str()),
    }
}
