//! What every resolver can reach: the application state and who is asking.

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
}

impl RequestContext {
    pub fn new(state: AppState, credentials: Credentials) -> Self {
        Self { state, credentials }
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
