//! What every resolver can reach about the request itself: who is asking and where from.
//!
//! Services are not here: each domain's resolvers reach their own service as schema data,
//! typed by the service ([`service`](crate::graphql::service)), and each domain attaches its own per-request
//! DataLoaders. That keeps this kit free of every domain and of the application state.

use std::{any::Any, net::IpAddr};

use async_graphql::Context;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    identity::{Credentials, Principal},
};

/// Attached to each GraphQL request (HTTP or WebSocket operation) as request data.
pub struct RequestContext {
    /// Who is asking: credentials, tenant, role, plan.
    pub principal: Principal,
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
    /// The W3C trace id (32 hex digits) of the HTTP request, or of the WebSocket operation:
    /// what `x-request-id`, `extensions.traceId` and the spans carry (`telemetry::trace`
    /// decides it). `None` only for in-process callers.
    pub trace_id: Option<String>,
}

impl RequestContext {
    pub fn new(principal: Principal, client: ClientInfo) -> Self {
        Self { principal, client }
    }

    /// The credentials the request presented, checked.
    pub fn credentials(&self) -> &Credentials {
        &self.principal.credentials
    }

    pub fn of<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestContext> {
        ctx.data::<RequestContext>().map_err(|_| AppError::internal(anyhow::anyhow!("request context missing")))
    }

    /// The authenticated user's id, or `UNAUTHENTICATED`.
    pub fn user_id(&self) -> AppResult<Uuid> {
        self.principal.credentials.require_user()
    }
}

/// The value of type `T` the schema (or the request) was given: a domain's service, its
/// settings, or a per-request DataLoader. Missing is a wiring bug, never the client's fault:
/// `INTERNAL_SERVER_ERROR`, naming the type in the log.
pub fn service<'a, T: Any + Send + Sync>(ctx: &Context<'a>) -> AppResult<&'a T> {
    ctx.data::<T>().map_err(|_| {
        AppError::internal(anyhow::anyhow!("{} missing from the schema's data", std::any::type_name::<T>()))
    })
}
