//! The application state: the services built once at start, and how a GraphQL request is
//! prepared for execution. Below `http` (which serves it) and `app` (which builds it); above
//! every domain.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{self, AccountsService},
    audit::AuditLog,
    config::Config,
    error::AppResult,
    graphql::{ClientInfo, RequestContext, documents::DocumentCache, guard::demand::TypeIndex, nulls},
    identity::{Credentials, Principal},
    ledger::LedgerService,
    live::{Freshness, LiveHub, LiveQuotas},
    market::{self, MarketService},
    metrics::Metrics,
    persisted::PersistedDocuments,
    schema::FinqlSchema,
    tenancy::{TenancyService, keys, limits::PlanLimiter},
    usage::UsageService,
};

/// Everything a request handler can reach: one reference-counted [`Services`], so that cloning
/// it for every request is one atomic increment (it used to deep-copy the JWT keys and
/// validation sets, which showed in profiles). The only shared mutable state in the process
/// lives behind these fields.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Connection pool (SQLite or PostgreSQL).
    pub db: DatabaseConnection,
    /// The executable GraphQL schema, shared by HTTP and WebSocket. It holds the domain
    /// services below as schema data (see `schema::build_schema`).
    pub schema: FinqlSchema,
    /// Parsed documents by query text (skips the parser for repeated operations).
    pub documents: DocumentCache,
    /// Persisted documents by hash (APQ, `documentId`, the safelist's manifest): fills in a
    /// request's text before the edge reads it.
    pub persisted: PersistedDocuments,
    /// The schema's fields and their types, for estimating what a request costs
    /// (`extensions.cost`) and for null propagation (`propagate_nulls`).
    pub demand: Arc<TypeIndex>,
    /// The plans' request rates and cost budgets, applied to every request and operation.
    pub plan_limits: PlanLimiter,
    /// Users, passwords and tokens.
    pub accounts: AccountsService,
    /// Tenants, plans, API keys; who credentials make a caller.
    pub tenancy: TenancyService,
    /// Transactions and analytics.
    pub ledger: LedgerService,
    /// Usage metering: the HTTP edge and the WebSocket record here; flushed in batches.
    pub usage: UsageService,
    /// The audit trail: the HTTP edge and the WebSocket hand a record per operation here;
    /// written in batches, never waited for.
    pub audit: AuditLog,
    /// Quotes, klines, order books and ticks, cached in front of the market source.
    pub market: MarketService,
    /// Live market data: the upstream stream and the hub that fans it out to subscriptions.
    pub live: LiveHub,
    /// Per-tenant live quotas (WebSockets open, distinct symbols followed), across replicas.
    pub live_quotas: LiveQuotas,
    /// The data freshness alarm: each live source's state for `/ready`, alerts when one is
    /// silent in session.
    pub freshness: Freshness,
    /// The process's Prometheus recorder, rendered with this app's database pool (`/metrics`).
    pub metrics: Metrics,
    /// Cancelled when the server begins shutting down: WebSockets close, /ready turns 503.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }

    /// Who the presented credentials make the caller. An API key comes in `X-API-Key` or as
    /// `Authorization: Bearer fq_…`; anything else in `Authorization` is an access token.
    /// Sending both headers is refused: which one counts would be a guess.
    pub async fn principal(&self, authorization: Option<&str>, api_key: Option<&str>) -> AppResult<Principal> {
        let bearer = authorization
            .map(str::trim)
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| keys::is_api_key(token));
        match (api_key.map(str::trim), authorization.map(str::trim).filter(|v| !v.is_empty()), bearer) {
            (Some(_), Some(_), _) => Ok(Principal::without_tenant(
                Credentials::Invalid("send either `X-API-Key` or `Authorization`, not both"),
                None,
            )),
            (Some(key), None, _) | (None, _, Some(key)) => self.tenancy.authenticate_key(key).await,
            (None, _, None) => self.tenancy.principal(self.accounts.tokens().credentials(authorization)).await,
        }
    }

    /// Null propagation on an executed answer (`graphql::nulls`): the document is read again
    /// (from the documents cache, else parsed) only when the answer has field errors.
    pub fn propagate_nulls(&self, response: &mut async_graphql::Response, query: &str, operation_name: Option<&str>) {
        if !nulls::needed(response) {
            return;
        }
        let document = match self.documents.get(query) {
            Some((document, _)) => Some(document),
            None => async_graphql::parser::parse_query(query).ok(),
        };
        if let Some(document) = document {
            nulls::propagate(response, &self.demand, &document, operation_name);
        }
    }

    /// Everything one GraphQL request needs attached to it: who is asking, and fresh
    /// DataLoaders from each domain that batches (their caches live for one request only, so
    /// one user's lookups never serve another's).
    pub fn prepare(
        &self,
        request: async_graphql::Request,
        principal: Principal,
        client: ClientInfo,
    ) -> async_graphql::Request {
        let request = request.data(RequestContext::new(principal, client));
        let request = accounts::graphql::attach_loaders(request, &self.accounts);
        market::graphql::attach_loaders(request, &self.market)
    }
}
