//! The tenant admin API: `tenant` (the caller's own tenant and plan; for its admins, its keys
//! and members) and the admins' mutations (`createApiKey`, `revokeApiKey`, `createUser`,
//! `setMemberRole`). Thin resolvers over [`TenancyService`](crate::tenancy::TenancyService) and
//! [`AccountsService`](crate::accounts::AccountsService).
//!
//! Isolation is by construction: the tenant every resolver acts in is the caller's own, taken
//! from the request's `Principal`, never from an argument; ids of another tenant's keys or
//! users are `NOT_FOUND`, exactly like ids that do not exist. Who may administer: an `ADMIN`
//! user of the tenant, or a key of the tenant with the `admin` scope
//! (`Principal::require_admin`). Every change is logged with the acting `Principal::actor()`.

mod objects;

use async_graphql::{Context, ID, InputObject, Object, Result};
use uuid::Uuid;

pub use objects::{ApiKeyObject, ApiKeyScope, CreatedApiKeyObject, MarketAccess, PlanObject, TenantObject};

use super::{
    TenancyService,
    admin::{MAX_PAGE, Page},
    service::KeySpec,
};
use crate::{
    accounts::{
        AccountsService,
        graphql::{UserObject, UserRole},
        service::SignUp,
    },
    error::AppError,
    graphql::{RequestContext, bounded, global_id::uuid_of, scalars::Timestamp, service},
    identity::{Credentials, Scopes},
};

/// The highest per-key rate (requests per second) or burst accepted: far above any plan, so
/// it never limits a real key, while keeping the numbers well inside the limiter's arithmetic.
const MAX_KEY_RATE: i32 = 1_000_000;

/// A new API key of the caller's tenant.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// 1 to 100 characters: what the key is for (shown in `apiKeys`).
    name: String,
    /// What the key may reach; all three when omitted.
    scopes: Option<Vec<ApiKeyScope>>,
    /// When the key stops working (in the future); never when omitted.
    expires_at: Option<Timestamp>,
    /// The key's own request rate (requests per second), for a key that must stay below the
    /// tenant's plan. Given with `burst`, or not at all.
    rate_per_second: Option<i32>,
    /// Requests the key may send at once under its own rate.
    burst: Option<i32>,
}

/// A new member of the caller's tenant.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Their login: a bare address, at most 254 characters, stored lower-case; unique across
    /// the deployment (`BAD_USER_INPUT` when taken).
    email: String,
    /// 8 to 1024 characters. The user logs in with it (`login`).
    password: String,
    /// 1 to 200 characters after trimming, no control characters.
    full_name: String,
    /// Their role in the tenant (`MEMBER` when omitted).
    #[graphql(default_with = "UserRole::Member")]
    role: UserRole,
}

#[derive(Default)]
pub struct TenancyQuery;

#[Object]
impl TenancyQuery {
    /// The caller's tenant (a user's, or an API key's): its plan for everyone in it, its keys
    /// and members for its admins. `UNAUTHENTICATED` without credentials.
    #[graphql(cache_control(private, no_cache))]
    async fn tenant(&self, ctx: &Context<'_>) -> Result<TenantObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant_ref = principal.require_tenant()?;
        let tenant = tenancy(ctx)?.tenant(tenant_ref.id).await?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("tenant {} of a valid principal does not exist", tenant_ref.id))
        })?;
        Ok(TenantObject { tenant, plan: principal.plan.clone() })
    }
}

#[derive(Default)]
pub struct TenancyMutation;

#[Object]
impl TenancyMutation {
    /// Creates an API key of the caller's tenant. Tenant admins only. The secret is in the
    /// answer and nowhere else: store it now.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key's name, scopes, expiry and own rate.")] input: CreateApiKeyInput,
    ) -> Result<CreatedApiKeyObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant = principal.require_admin()?;
        let scopes = match &input.scopes {
            Some(list) => objects::scopes_of(list),
            None => Scopes::ALL,
        };
        let rate = match (input.rate_per_second, input.burst) {
            (None, None) => None,
            (Some(rate), Some(burst)) => Some((
                bounded(rate, 1, MAX_KEY_RATE, "ratePerSecond")? as u32,
                bounded(burst, 1, MAX_KEY_RATE, "burst")? as u32,
            )),
            _ => return Err(AppError::bad_field("burst", "give ratePerSecond and burst together, or neither").into()),
        };
        let created_by = match principal.credentials {
            Credentials::User(id) => Some(id),
            _ => None,
        };
        let spec = KeySpec { name: input.name, scopes, expires_at: input.expires_at.map(Into::into), rate, created_by };
        let created = tenancy(ctx)?.create_key(tenant.id, spec).await?;
        tracing::info!(tenant = %tenant.slug, actor = %principal.actor(), prefix = %created.key.prefix, "API key created through the admin API");
        Ok(created.into())
    }

    /// Revokes the caller's tenant's key `id` (effective on every replica within 5 seconds,
    /// at once on this one). Revoking a revoked key keeps its first `revokedAt`. Tenant admins
    /// only; `NOT_FOUND` for a key of another tenant.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key's `ApiKey.id` (not its prefix).")] id: ID,
    ) -> Result<ApiKeyObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant = principal.require_admin()?;
        let id = parse_id(&id, "id", "API key")?;
        let key = tenancy(ctx)?.revoke_key_by_id(tenant.id, id).await?;
        tracing::info!(tenant = %tenant.slug, actor = %principal.actor(), prefix = %key.prefix, "API key revoked through the admin API");
        Ok(ApiKeyObject(key))
    }

    /// Adds a user to the caller's tenant (how users join when self sign-up is off). Tenant
    /// admins only. The user then logs in with `login`.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new member's details and role.")] input: CreateUserInput,
    ) -> Result<UserObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant = principal.require_admin()?;
        let sign_up = SignUp { email: input.email, password: input.password, full_name: input.full_name };
        let user = service::<AccountsService>(ctx)?.create_user(tenant.id, input.role.into(), sign_up).await?;
        tracing::info!(tenant = %tenant.slug, actor = %principal.actor(), user_id = %user.id, role = user.role.as_str(), "user created through the admin API");
        Ok(UserObject(user))
    }

    /// Sets the role of a member of the caller's tenant (on every replica within 5 seconds).
    /// Tenant admins only; an admin cannot change their own role; `NOT_FOUND` for a user of
    /// another tenant.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member's `User.id`.")] user_id: ID,
        #[graphql(desc = "The role they get.")] role: UserRole,
    ) -> Result<UserObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant = principal.require_admin()?;
        let user_id = uuid_of::<UserObject>(&user_id, "userId")?;
        let actor = match principal.credentials {
            Credentials::User(id) => Some(id),
            _ => None,
        };
        let user = tenancy(ctx)?.set_member_role(tenant.id, actor, user_id, role.into()).await?;
        tracing::info!(tenant = %tenant.slug, actor = %principal.actor(), user_id = %user.id, role = user.role.as_str(), "member role set through the admin API");
        Ok(UserObject(user))
    }
}

/// The tenancy service, as the schema was given it.
fn tenancy<'a>(ctx: &Context<'a>) -> Result<&'a TenancyService, AppError> {
    service::<TenancyService>(ctx)
}

/// A page request from `first` and `after`, the last item's id (`BAD_USER_INPUT` naming the
/// argument).
fn page(first: i32, after: Option<Uuid>) -> Result<Page, AppError> {
    let first = bounded(first, 1, MAX_PAGE as i32, "first")?;
    Ok(Page { first, after })
}

fn parse_id(id: &ID, field: &'static str, what: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_field(field, format!("`{}` is not a valid {what} id", id.as_str())))
}
