//! The `finql` binary: a thin shim over the library (`finql::App`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc malloc's arena locks showed up in profiles of this kind of server; mimalloc removes them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "finql", version, about = "A GraphQL server for financial data")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL), exactly as committed in schema.graphql.
    Schema,
    /// GET /health on FINQL_ADDR; exit 0 when the server answers (for container health checks).
    Healthcheck,
    /// Manage tenants: `create SLUG --plan PLAN [--name NAME]`, `set-plan SLUG PLAN`.
    #[command(subcommand)]
    Tenant(finql::cli::TenantCommand),
    /// Manage API keys: `create --tenant SLUG --name NAME [--scopes …] [--expires-in-days N]`,
    /// `revoke PREFIX`.
    #[command(subcommand)]
    Key(finql::cli::KeyCommand),
    /// Print a tenant's usage (per actor and UTC hour or day) from the configured database.
    /// Dates are UTC days, both inclusive; RFC 3339 times are taken as given (`--to` exclusive).
    Usage {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// First day (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD, included) or end time (RFC 3339, excluded).
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = UsageFormat::Csv)]
        format: UsageFormat,
        /// One row per actor and hour (at most 31 days) or per actor and day (at most 366).
        #[arg(long, value_enum, default_value_t = UsageGranularity::Hour)]
        granularity: UsageGranularity,
    },
    /// Proprietary datasets: `load NAME FILE [--format csv|jsonl] [--replace] [--max-rejects N]`.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Compare a day's daily bars and corporate actions across the configured sources (T+1),
    /// write the report to the database and print it.
    Reconcile {
        /// The day (YYYY-MM-DD, UTC), over.
        #[arg(long)]
        date: String,
        /// Only this market's instruments (US, HK, SH, SZ, FX, IDX, CRYPTO, FUT).
        #[arg(long)]
        market: Option<String>,
        /// `csv` (a line per difference, then a summary line) or `json` (the run, its items).
        #[arg(long, value_enum, default_value_t = UsageFormat::Csv)]
        format: UsageFormat,
    },
    /// Print a tenant's audit trail (one record per GraphQL operation), oldest first, from the
    /// configured database. Dates are UTC days, both inclusive; RFC 3339 times are taken as
    /// given (`--to` exclusive).
    Audit {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// First day (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD, included) or end time (RFC 3339, excluded).
        #[arg(long)]
        to: String,
        /// `csv` (a header, then a line per record) or `json` (JSON Lines).
        #[arg(long, value_enum, default_value_t = UsageFormat::Csv)]
        format: UsageFormat,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Load a CSV or JSON Lines file into a dataset (`FINQL_DATASETS_DIR`): rows checked one by
    /// one, then written in one transaction (upserted by key), or nothing written when more
    /// than `--max-rejects` rows were rejected. Prints the counts and each reject's line.
    Load {
        /// The dataset's name (its manifest's `name`).
        name: String,
        /// The file: `.csv` or `.jsonl` (or give `--format`).
        file: std::path::PathBuf,
        #[arg(long, value_enum)]
        format: Option<DatasetFormat>,
        /// Replace every row of the dataset (in the same transaction) instead of upserting.
        #[arg(long)]
        replace: bool,
        /// Write the accepted rows when at most this many were rejected.
        #[arg(long, default_value_t = 0)]
        max_rejects: u64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DatasetFormat {
    Csv,
    Jsonl,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum UsageFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum UsageGranularity {
    Hour,
    Day,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", finql::schema::sdl());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("finql: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("finql: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    // A missing .env is normal; any other problem with it is worth knowing about.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        anyhow::bail!("reading .env: {err}");
    }
    match command {
        Command::Healthcheck => finql::http::health::probe().await,
        Command::Schema => unreachable!("handled before the runtime starts"),
        Command::Migrate => {
            let config = finql::Config::from_env()?;
            finql::telemetry::init(&config);
            let db = finql::db::connect(&config.database).await?;
            finql::db::migrate(&db).await?;
            // The datasets' tables, from their manifests.
            let manifests =
                finql::datasets::manifest::configured(config.datasets_dir.as_deref(), &config.tenancy.plans)?;
            let reference = finql::reference::ReferenceService::new(db.clone());
            finql::datasets::DatasetService::open(db.clone(), manifests, reference, std::time::Duration::ZERO).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Tenant(command) => {
            let config = operator_config()?;
            println!("{}", finql::cli::tenant(&config, command).await?);
            Ok(())
        }
        Command::Key(command) => {
            let config = operator_config()?;
            println!("{}", finql::cli::key(&config, command).await?);
            Ok(())
        }
        Command::Usage { tenant, from, to, format, granularity } => {
            let config = operator_config()?;
            let db = finql::db::connect(&config.database).await?;
            let args = finql::cli::usage::UsageArgs {
                tenant,
                from,
                to,
                format: match format {
                    UsageFormat::Csv => finql::cli::usage::Format::Csv,
                    UsageFormat::Json => finql::cli::usage::Format::Json,
                },
                granularity: match granularity {
                    UsageGranularity::Hour => finql::usage::Granularity::Hour,
                    UsageGranularity::Day => finql::usage::Granularity::Day,
                },
            };
            let export = finql::cli::usage::export(&config, &db, &args).await;
            db.close().await.ok();
            print!("{}", export?);
            Ok(())
        }
        Command::Dataset(DatasetCommand::Load { name, file, format, replace, max_rejects }) => {
            let config = operator_config()?;
            let format = format.map(|format| match format {
                DatasetFormat::Csv => finql::datasets::load::Format::Csv,
                DatasetFormat::Jsonl => finql::datasets::load::Format::JsonLines,
            });
            let args = finql::cli::dataset::LoadArgs { name, file, format, replace, max_rejects };
            println!("{}", finql::cli::dataset::load(&config, args).await?);
            Ok(())
        }
        Command::Reconcile { date, market, format } => {
            let config = operator_config()?;
            let format = match format {
                UsageFormat::Csv => finql::cli::reconcile::Format::Csv,
                UsageFormat::Json => finql::cli::reconcile::Format::Json,
            };
            print!("{}", finql::cli::reconcile::reconcile(&config, &date, market.as_deref(), format).await?);
            Ok(())
        }
        Command::Audit { tenant, from, to, format } => {
            let config = operator_config()?;
            let db = finql::db::connect(&config.database).await?;
            let format = match format {
                UsageFormat::Csv => finql::cli::audit::Format::Csv,
                UsageFormat::Json => finql::cli::audit::Format::Json,
            };
            let args = finql::cli::audit::AuditArgs { tenant, from, to, format };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let export = finql::cli::audit::export(&config, &db, &args, &mut out).await;
            db.close().await.ok();
            export?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Serve => {
            let config = finql::Config::from_env()?;
            finql::telemetry::init(&config);
            let app = finql::App::build(config).await?;
            let served = app.run_until(finql::app::shutdown_signal()).await;
            // The last spans (the drain's), exported before the process exits.
            finql::telemetry::shutdown();
            served
        }
    }
}

/// The configuration for an operator's command, with its logs on stderr (`finql::cli`).
fn operator_config() -> anyhow::Result<finql::Config> {
    let config = finql::Config::from_env()?;
    finql::cli::init_logging();
    Ok(config)
}
