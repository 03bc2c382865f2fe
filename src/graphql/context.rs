//! What every resolver can reach: the application state and who is asking.

use std::net::IpAddr;

use async_graphql::{
    Context,
    dataloader::{DataLoader, HashMapCache},
};
use uuid::Uuid;

use crate::{
    accounts::{Credentials, graphql::UserLoader},
    app::AppState,
    error::{AppError, AppResult},
    market::graphql::{MarketLoaders, QuoteLoader},
};

/// Attached to each GraphQL request (HTTP or WebSocket operation) as request data.
pub struct RequestContext {
    pub state: AppState,
    pub credentials: Credentials,
    /// Where the request came from, and what its transport said about it beside the document.
    pub client: ClientInfo,
}

/// What the transport knows about a request besides its credentials and document.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The client's address: the TCP peer (or, behind trusted proxies, the address they
    /// forwarded). `None` only where no socket exists (in-process callers).
    pub addr: Option<IpAddr>,
    /// The `Idempotency-Key` header of an HTTP request, when sent.
    pub idempotency_key: Option<String>,
}

impl RequestContext {
    pub fn new(state: AppState, credentials: Credentials, client: ClientInfo) -> Self {
        Self { state, credentials, client }
    }

    pub fn of<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestContext> {
        ctx.data::<RequestContext>().map_err(|_| AppError::internal(anyhow::anyhow!("request context missing")))
    }

    /// The authenticated user's id, or `UNAUTHENTICATED`.
    pub fn user_id(&self) -> AppResult<Uuid> {
        self.credentials.require_user()
    }

    /// Everything a request needs attached to it: the context, and fresh DataLoaders (their
    /// caches live for one request only, so one user's lookups never serve another's).
    pub fn into_request(self, request: async_graphql::Request) -> async_graphql::Request {
        let users = DataLoader::new(UserLoader(self.state.accounts.clone()), tokio::spawn);
        // Cached per request: a connection prefetches its nodes' quotes in one batch, and each
        // node's `quote` then reads them from here.
        let quotes =
            DataLoader::with_cache(QuoteLoader(self.state.market.clone()), tokio::spawn, HashMapCache::default());
        let market = MarketLoaders::new(self.state.market.clone());
        request.data(self).data(users).data(quotes).data(market)
    }
}
