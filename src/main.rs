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
        Command::Serve => {
            let config = finql::Config::from_env()?;
            finql::telemetry::init(&config);
            let app = finql::App::build(config).await?;
            app.run_until(finql::app::shutdown_signal()).await
        }
    }
}

/// The configuration for an operator's command, with its logs on stderr (`finql::cli`).
fn operator_config() -> anyhow::Result<finql::Config> {
    let config = finql::Config::from_env()?;
    finql::cli::init_logging();
    Ok(config)
}
