//! Who a connection speaks for, and for how long: credentials live as long as the access
//! token (or the API key), not as long as the socket.
//!
//! Presented at `connection_init`: the payload's `Authorization` (any case; `Bearer <access
//! token>` or `Bearer fq_…` for an API key). A payload without one falls back to the upgrade
//! request's own `Authorization` or `X-API-Key` header, which non-browser clients (Python's
//! gql `headers=`, websocat, curl) set on the handshake: such a connection used to be served
//! as anonymous, its public subscriptions outliving the token they were opened with. None of
//! either is an anonymous connection (market data is public), which never expires.
//!
//! **Lapsed credentials close the connection with 4403**, the reason naming why (`Forbidden:
//! access token expired`, `Forbidden: session revoked`, `Forbidden: API key revoked`,
//! `Forbidden: API key expired`), rather than `error`/`complete` per operation with
//! `UNAUTHENTICATED`: the credentials belong to the connection, not to an operation, so every
//! operation on it has lost them at the same instant and nothing else could run on it either;
//! graphql-ws (the reference client, under Apollo's `GraphQLWsLink` too) does not count 4403
//! among its fatal codes: it reconnects, calling `connectionParams` again when that is a
//! function (the client's current token) and re-subscribing, which a `complete` would not make
//! it do. Applied the same everywhere:
//! - on every `subscribe` (legacy `start`): an expired token or revoked session closes the
//!   connection before the operation runs; an API key is re-checked too;
//! - expiry while nothing is sent: one timer per connection, set to the token's `exp` +
//!   `FINQL_JWT_LEEWAY_SECS` (the same rule as HTTP, `TokenIssuer::check`), closes it at that
//!   instant; no polling;
//! - logout, refresh-token reuse (the session's family revoked): the connection watches the
//!   revocation set (`accounts::revocation`), which wakes it when the set grows. On the replica
//!   that took the logout that is at once; another replica learns of it from Redis within
//!   `revocation::POLL_INTERVAL` (250 ms) of it being written: a socket ends within a second
//!   of the logout, on any replica;
//! - a revoked or expired API key: every [`KEY_RECHECK`] the key is checked again through
//!   `TenancyService::authenticate_key` (its 5 s cache; the replica that revoked the key
//!   dropped it from its cache at once). Keys are rows in the database, not in the revocation
//!   set, so a revocation reaches a connection within `KEY_RECHECK` on the replica that
//!   revoked it and within `tenancy::service::CACHE_TTL` + `KEY_RECHECK` (6 s) on another. A
//!   failed lookup (the database) does not end the connection; the next check retries.
//!
//! Renewal without reconnecting (the alternative is to reconnect with the new token, which
//! every client can do):
//! - `graphql-transport-ws`: a `ping` whose payload carries `{"Authorization": "Bearer <new
//!   access token>"}`. The protocol lets a ping carry any payload and requires a `pong`, so
//!   the client needs nothing beyond the protocol; the `pong` says the renewal was taken. It
//!   replaces the connection's credentials and moves the expiry timer. (A second
//!   `connection_init` is still 4429, as the protocol says.)
//! - legacy `graphql-ws`: a repeated `connection_init` with the new token, answered by
//!   `connection_ack`.
//!
//! The new token must be valid and for the same user (the same key, for a key connection),
//! else 4403; an anonymous connection stays anonymous.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use chrono::Utc;
use tokio::time::Instant;

use super::{Close, Connection, Protocol};
use crate::{
    accounts::{AccessGrant, Authentication},
    identity::{Credentials, Principal},
    live::quotas::{ConnectionLease, Refusal},
    tenancy::keys,
};
use serde_json::json;

/// How often a connection opened with an API key checks it again. In-memory work (the
/// tenancy cache answers; the database once per key and `CACHE_TTL`), so a short period costs
/// little, and bounds how long a revoked key keeps streaming on the replica that revoked it.
pub(super) const KEY_RECHECK: Duration = Duration::from_secs(1);

/// The header a request carries an API key in (as over HTTP).
const API_KEY: &str = "x-api-key";

/// Who the connection speaks for, once `connection_init` was accepted, and who that makes it.
pub(super) enum Identity {
    Anonymous(Principal),
    User(AccessGrant, Principal),
    /// An API key, kept to check it again (see the module doc).
    Key(String),
}

impl Connection {
    /// The close owed when a key connection's key no longer holds (`None` while it does, or
    /// when it cannot be told: a database error is retried at the next check).
    pub(super) async fn key_lapsed(&self) -> Option<Close> {
        let Some(Identity::Key(key)) = &self.identity else { return None };
        match self.state.tenancy.authenticate_key(key).await {
            Ok(principal) => match principal.credentials {
                Credentials::Invalid(reason) => Some(Close::forbidden(reason)),
                _ => None,
            },
            Err(_) => {
                tracing::debug!("API key re-check failed; retrying at the next check");
                None
            }
        }
    }

    /// The close owed when the connection's token no longer holds.
    pub(super) fn lapsed(&self) -> Option<Close> {
        let Some(Identity::User(grant, _)) = &self.identity else { return None };
        self.state.accounts.tokens().check(grant).err().map(|lapsed| Close::forbidden(lapsed.reason()))
    }

    /// Points the expiry timer at the current token's end (leeway included).
    pub(super) fn arm_expiry(&mut self) {
        let deadline = match &self.identity {
            Some(Identity::User(grant, _)) => {
                let left = (grant.valid_until - Utc::now()).to_std().unwrap_or_default();
                Instant::now() + left
            }
            _ => far_future(),
        };
        self.expiry.as_mut().reset(deadline);
    }

    /// Checks a presented token, telling a legacy client why it is refused (its protocol has a
    /// message for that) before the 4403.
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Authentication, Close> {
        match self.state.accounts.tokens().authenticate(authorization) {
            Authentication::Invalid(reason) => Err(self.refuse(reason).await),
            accepted => Ok(accepted),
        }
    }

    /// The 4403 for refused credentials, told first to a legacy client (its protocol has a
    /// message for that).
    pub(super) async fn refuse(&self, reason: &str) -> Close {
        if self.protocol == Protocol::Legacy {
            self.send(json!({ "type": "connection_error", "payload": { "message": reason } })).await;
        }
        Close::forbidden(reason)
    }

    /// Checks an API key (again): its principal, or the 4403 owed.
    pub(super) async fn key_principal(&self, key: &str) -> Result<Principal, Close> {
        let principal = self.state.tenancy.authenticate_key(key).await.map_err(|_| internal_close())?;
        match principal.credentials {
            Credentials::Invalid(reason) => Err(self.refuse(reason).await),
            _ => Ok(principal),
        }
    }

    /// Who `credentials` make the caller (tenant, role, plan).
    async fn principal(&self, credentials: Credentials) -> Result<Principal, Close> {
        let principal = self.state.tenancy.principal(credentials).await.map_err(|_| internal_close())?;
        match principal.credentials {
            Credentials::Invalid(reason) => Err(self.refuse(reason).await),
            _ => Ok(principal),
        }
    }

    pub(super) async fn init(&mut self, authorization: Option<&str>) -> Result<(), Close> {
        let (identity, principal) = match api_key(authorization) {
            Some(key) => {
                let principal = self.key_principal(key).await?;
                (Identity::Key(key.to_owned()), principal)
            }
            None => match self.authenticate(authorization).await? {
                Authentication::User(grant) => {
                    let principal = self.principal(Credentials::User(grant.user_id)).await?;
                    (Identity::User(grant, principal.clone()), principal)
                }
                _ => {
                    let principal = self.principal(Credentials::Anonymous).await?;
                    (Identity::Anonymous(principal.clone()), principal)
                }
            },
        };
        self.quota = self.admit(&principal).await?;
        self.identity = Some(identity);
        self.arm_expiry();
        self.send(json!({ "type": "connection_ack" })).await;
        if self.protocol == Protocol::Legacy {
            self.send(json!({ "type": "ka" })).await;
        }
        Ok(())
    }

    /// Takes the connection's place in its tenant's `max_connections`, or the 4403 owed (the
    /// reason names the limit). Anonymous connections belong to no tenant and are not counted.
    async fn admit(&self, principal: &Principal) -> Result<Option<ConnectionLease>, Close> {
        let (Some(tenant), Some(plan)) = (&principal.tenant, &principal.plan) else { return Ok(None) };
        match self.state.live_quotas.connect(tenant, plan).await {
            Ok(lease) => Ok(Some(lease)),
            Err(Refusal::Exceeded { limit, max, .. }) => {
                let reason = format!("{} ({max}) reached for tenant {}", limit.as_str(), tenant.slug);
                Err(self.refuse(&reason).await.truncated())
            }
            Err(Refusal::Unavailable) => Err(Close(1011, "live quotas unavailable; try again shortly".into())),
        }
    }

    /// New credentials for the same identity: a later expiry (or another session of the user).
    pub(super) async fn renew(&mut self, authorization: Option<&str>) -> Result<(), Close> {
        if let Some(key) = api_key(authorization) {
            return match &self.identity {
                Some(Identity::Key(current)) if current == key => self.key_principal(key).await.map(drop),
                _ => Err(Close::forbidden("renewed credentials must be for the same user")),
            };
        }
        let renewed = self.authenticate(authorization).await?;
        match (self.identity.take(), renewed) {
            (Some(Identity::User(current, principal)), Authentication::User(grant))
                if grant.user_id == current.user_id =>
            {
                self.identity = Some(Identity::User(grant, principal));
                self.arm_expiry();
                Ok(())
            }
            (Some(identity @ Identity::Anonymous(_)), Authentication::Anonymous) => {
                self.identity = Some(identity);
                Ok(())
            }
            _ => Err(Close::forbidden("renewed credentials must be for the same user")),
        }
    }
}

/// The API key in an `Authorization: Bearer fq_…` value, if that is what it holds.
fn api_key(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && keys::is_api_key(token)).then_some(token)
}

/// The close when the server cannot tell who the client is (its database failed).
fn internal_close() -> Close {
    Close(1011, "internal error".into())
}

/// The `Authorization` field of a `connection_init` (or renewal `ping`) payload, in any case.
pub(super) fn authorization(payload: Option<&serde_json::Value>) -> Option<&str> {
    payload.and_then(|p| p.as_object()).and_then(|fields| {
        fields.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).and_then(|(_, v)| v.as_str())
    })
}

/// A deadline that never comes (a timer must exist to be reset; a year is never).
pub(super) fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(365 * 86_400)
}

/// The credentials the upgrade request itself carried: its `Authorization`, or its
/// `X-API-Key` as the bearer value a `connection_init` would carry.
pub(super) fn from_handshake(headers: &HeaderMap) -> Option<String> {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    value(header::AUTHORIZATION.as_str())
        .map(str::to_owned)
        .or_else(|| value(API_KEY).map(|key| format!("Bearer {key}")))
}
