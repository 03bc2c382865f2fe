//! The application: config -> database -> services -> state -> router, and serving with
//! graceful shutdown. The top of the tree: nothing imports it but `main`.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{AccountsService, Revocations, TokenIssuer, password::PasswordHasher},
    audit::AuditLog,
    config::Config,
    datasets::{self, DatasetService},
    db,
    graphql::{documents::DocumentCache, guard::demand::TypeIndex},
    http,
    ledger::LedgerService,
    live,
    market::{
        self, FundamentalsService, MarketConfig, MarketService, crosscheck::CrossCheck, shared_cache::SharedQuotes,
    },
    metrics::Metrics,
    persisted::{
        PersistedDocuments,
        store::{RedisDocuments, SharedDocuments},
    },
    reconcile::{self, Reconciler, ReconciliationStore},
    reference::ReferenceService,
    resilience::redis::RedisGuard,
    schema::build_schema,
    sources,
    state::{AppState, Services},
    tenancy::{TenancyService, limits::PlanLimiter},
    throttle::{self, AuthThrottle},
    usage::UsageService,
};

/// A built, bound, not yet running server.
pub struct App {
    listener: TcpListener,
    /// `FINQL_METRICS_ADDR`'s listener, when `/metrics` has a port of its own.
    metrics_listener: Option<TcpListener>,
    router: Router,
    state: AppState,
}

impl App {
    /// Connects to the database, migrates it (unless turned off), and binds the listener. Bind
    /// to port 0 and read [`App::local_addr`] to get a free port (as the tests do).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // One TLS crypto provider (ring) for every client in the process; must precede them.
        sources::http::install_crypto_provider();
        // Before anything emits: the facade drops what it gets without a recorder.
        let metrics = if config.metrics { Metrics::install() } else { Metrics::disabled() };
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        // Before anything is touched: a bad manifest stops start-up with the entry at fault.
        let persisted = PersistedDocuments::new(&config.persisted, persisted_store(&config)?)?;
        let db = db::connect(&config.database).await?;
        if config.database.migrate_on_start {
            db::migrate(&db).await?;
        }
        // One argon2 hash at a time per core: more would only queue inside the CPU.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let hasher = PasswordHasher::new(cores).await?;
        let revocations = Revocations::connect(
            config.redis_url.as_ref().map(|url| url.expose().as_str()),
            &config.cache_namespace,
            config.auth.access_token_ttl + config.auth.leeway,
        )
        .await?;
        let tokens = TokenIssuer::new(&config.auth, revocations.clone());
        let shared_quotes = match &config.redis_url {
            Some(url) => Some(
                SharedQuotes::connect(
                    url.expose(),
                    &config.cache_namespace,
                    config.market.quote_ttl,
                    config.market.max_stale,
                    RedisGuard::new(config.resilience.redis_timeout, config.resilience.breaker()),
                )
                .await?,
            ),
            None => None,
        };
        let sources::Built { source, health, by_name, ordered } =
            sources::build_source(&config.market, config.resilience.breaker())?;
        // One catalog service (and one cache of its pages) for the market and the API.
        let reference = ReferenceService::new(db.clone());
        let manifests = datasets::manifest::configured(config.datasets_dir.as_deref(), &config.tenancy.plans)?;
        let datasets = DatasetService::open(db.clone(), manifests, reference.clone(), config.dataset_cache_ttl).await?;
        let market_service = MarketService::new(
            source.clone(),
            shared_quotes,
            Some(market::history::KlineHistory::new(db.clone())),
            reference.clone(),
            MarketConfig {
                quote_ttl: config.market.quote_ttl,
                max_stale: config.market.max_stale,
                upstream_budget: config.resilience.upstream_budget,
            },
            health,
        )
        .with_pinnable(by_name)
        .with_cross_check(CrossCheck::new(
            ordered.clone(),
            config.reconcile.crosscheck_rate,
            config.reconcile.divergence_bps,
        ));
        let limiter =
            throttle::build_limiter(config.redis_url.as_ref().map(|u| u.expose().as_str()), &config.cache_namespace)
                .await?;
        // One limiter (one Redis connection and breaker) for both policies.
        let plan_limits = if config.tenancy.plan_limits {
            PlanLimiter::new(limiter.clone(), config.tenancy.redis_outage, config.auth.jwt_secret.expose())
        } else {
            PlanLimiter::off()
        };
        let throttle = AuthThrottle::new(limiter, config.throttle.clone(), config.auth.jwt_secret.expose());
        let shutdown = CancellationToken::new();
        metrics.spawn_upkeep(shutdown.clone());
        revocations.spawn_sync(shutdown.clone());
        let live = live::start(sources::build_stream(&config.market)?, &config, shutdown.clone()).await?;
        let live_quotas = live::LiveQuotas::start(&config, shutdown.clone()).await?;
        let freshness = live::Freshness::start(&live, &config, shutdown.clone())?;
        let tenancy = TenancyService::new(db.clone(), &config.tenancy);
        let default_tenant = tenancy
            .ensure_default_tenant(&config.tenancy.default_tenant, &config.tenancy.default_plan)
            .await
            .map_err(|err| anyhow::anyhow!("creating the default tenant: {err:?}"))?;
        let signup_tenant = config.tenancy.open_signup.then_some(default_tenant);
        let accounts = AccountsService::new(db.clone(), hasher, tokens, signup_tenant);
        let ledger = LedgerService::new(db.clone());
        let usage = UsageService::new(db.clone(), config.tenancy.usage_flush);
        usage.spawn_flusher(shutdown.clone());
        let audit = AuditLog::new(db.clone(), config.audit.clone());
        audit.spawn(shutdown.clone());
        let reconciliations = ReconciliationStore::new(db.clone());
        if let Some(at) = config.reconcile.at {
            let reconciler =
                Reconciler::new(ordered, reference.clone(), reconciliations.clone(), config.reconcile.divergence_bps);
            reconcile::schedule::spawn(reconciler, at, shutdown.clone());
        }
        // What the resolvers reach, each domain its own service by type.
        let schema = build_schema(&config.limits)
            .data(accounts.clone())
            .data(tenancy.clone())
            .data(usage.clone())
            .data(audit.clone())
            .data(throttle)
            .data(ledger.clone())
            .data(reference)
            .data(datasets)
            .data(reconciliations)
            .data(market_service.clone())
            .data(FundamentalsService::new(source, market_service.clone()))
            .data(live.clone())
            .data(live_quotas.clone())
            .data(config.live.clone())
            .finish();
        let demand = Arc::new(TypeIndex::from_sdl(&schema.sdl()));
        let state = AppState::new(Services {
            schema,
            documents: DocumentCache::new(),
            persisted,
            demand,
            plan_limits,
            accounts,
            tenancy,
            ledger,
            usage,
            audit,
            market: market_service,
            live,
            live_quotas,
            freshness,
            db,
            metrics,
            shutdown,
            config: Arc::new(config),
        });
        let listener = TcpListener::bind(state.config.addr)
            .await
            .with_context(|| format!("binding {} (FINQL_ADDR)", state.config.addr))?;
        let metrics_listener = match state.config.metrics_addr.filter(|_| state.config.metrics) {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.with_context(|| format!("binding {addr} (FINQL_METRICS_ADDR)"))?)
            }
            None => None,
        };
        let router = http::router(state.clone());
        Ok(Self { listener, metrics_listener, router, state })
    }

    /// Where `/metrics` is served when `FINQL_METRICS_ADDR` is set (bind it to port 0 and read
    /// the port here, as for [`App::local_addr`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    #[allow(clippy::expect_used, reason = "a bound TCP listener always has an address")]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` resolves, then stops accepting, closes WebSockets, and gives
    /// requests in flight up to `FINQL_SHUTDOWN_GRACE_SECS` to finish.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let shutdown = self.state.shutdown.clone();
        let config = &self.state.config;
        tracing::info!(%addr, "finql listening; GraphiQL at http://{addr}/graphiql");
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => {
                    tracing::info!("shutting down: finishing requests in flight");
                    trigger.cancel();
                }
                () = trigger.cancelled() => {}
            }
        });
        if let Some(listener) = self.metrics_listener {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics at /metrics");
            // A plain axum server: one scraper, a few requests a minute; it stops with the API.
            let router = http::metrics::router(self.state.clone());
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
                if let Err(err) = served {
                    tracing::error!(%err, "the metrics listener failed");
                }
            });
        }
        let server = http::server::Server::new(
            self.listener,
            self.router,
            config.connections.clone(),
            u64::from(config.database.max_connections),
        );
        let served = server.run(shutdown, config.shutdown_grace).await.context("serving HTTP");
        // Requests in flight have finished (or the grace ran out): what they used is counted;
        // write it before the database goes. Done even when serving failed: usage is billing.
        self.state.usage.close().await;
        // Likewise the audit records of those requests.
        self.state.audit.close().await;
        served?;
        self.state.db.clone().close().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}

/// The store persisted documents are shared through: Redis when it is configured (safelist
/// mode shares nothing: its documents are the manifest's, read by every replica).
fn persisted_store(config: &Config) -> anyhow::Result<Option<Arc<dyn SharedDocuments>>> {
    let Some(url) = config.redis_url.as_ref().filter(|_| !config.persisted.only) else { return Ok(None) };
    let guard = RedisGuard::new(config.resilience.redis_timeout, config.resilience.breaker());
    let settings = &config.persisted;
    Ok(Some(Arc::new(RedisDocuments::connect(
        url.expose(),
        &config.cache_namespace,
        guard,
        settings.ttl,
        settings.max_shared,
    )?)))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
