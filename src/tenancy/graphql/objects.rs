//! The admin API's output types: the tenant, its plan, its API keys (its usage's are
//! `usage::graphql`'s). Separate from the
//! database models and from the service's types (a key's hash never reaches them).

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use uuid::Uuid;

use super::{page, parse_id, tenancy};
use crate::{
    accounts::graphql::UserObject,
    audit::{
        self,
        graphql::{AuditLogFilter, AuditRecordConnection},
    },
    config::{Access, Plan},
    graphql::{
        RequestContext,
        global_id::{GlobalId, uuid_of},
        scalars::Timestamp,
    },
    identity::{Scope, Scopes},
    tenancy::service::{ApiKey, CreatedKey, Tenant},
    usage::{
        self,
        graphql::{Granularity, UsagePeriodObject},
    },
};

/// The caller's tenant. Built from the caller's own principal, never from an argument: there
/// is no way to name another tenant here.
pub struct TenantObject {
    pub(super) tenant: Tenant,
    pub(super) plan: Option<Arc<Plan>>,
}

/// A business line or customer of this finql deployment: its plan, and for its admins its API
/// keys and members.
#[Object(name = "Tenant", cache_control(private, no_cache))]
impl TenantObject {
    /// The tenant's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.tenant.id.to_string())
    }
    /// Unique, URL-safe name (`finql tenant create SLUG`).
    async fn slug(&self) -> &str {
        &self.tenant.slug
    }
    /// Its display name, as the operator set it.
    async fn name(&self) -> &str {
        &self.tenant.name
    }
    /// When the operator created it.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.tenant.created_at)
    }
    /// The plan whose limits and entitlements apply to every request of the tenant. `null`
    /// only when the deployment no longer has the tenant's plan (its requests are refused
    /// until an operator sets another).
    async fn plan(&self) -> Option<PlanObject> {
        self.plan.clone().map(PlanObject)
    }
    /// The tenant's API keys (revoked and expired ones too), oldest first; `after` is the
    /// last key of the previous page. Tenant admins only (an `ADMIN` user, or a key with the
    /// `admin` scope).
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Keys per page, 1 to 500.")] first: i32,
        #[graphql(desc = "The `id` of the last key of the previous page; from the first key when omitted.")]
        after: Option<ID>,
    ) -> Result<Vec<ApiKeyObject>> {
        RequestContext::of(ctx)?.principal.require_admin()?;
        let after = after.map(|id| parse_id(&id, "after", "cursor")).transpose()?;
        let keys = tenancy(ctx)?.api_keys(self.tenant.id, page(first, after)?).await?;
        Ok(keys.into_iter().map(ApiKeyObject).collect())
    }
    /// What the tenant used in `[from, to)` (UTC, widened to whole hours or days), one row per
    /// actor (API key or user) and period: requests, cost units, errors, rate-limited
    /// refusals, response bytes, subscription seconds. Tenant admins only. At most 31 days by
    /// hour and 366 by day; counts appear up to `FINQL_USAGE_FLUSH_SECS` late.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start (inclusive), widened down to the start of its hour or UTC day.")] from: Timestamp,
        #[graphql(desc = "End (exclusive), widened up to the end of its hour or UTC day; after `from`.")] to: Timestamp,
        #[graphql(default_with = "Granularity::Hour", desc = "One row per hour (`HOUR`) or per UTC day (`DAY`).")]
        granularity: Granularity,
    ) -> Result<Vec<UsagePeriodObject>> {
        usage::graphql::tenant_usage(ctx, self.tenant.id, from.0, to.0, granularity).await
    }
    /// The tenant's audit trail, newest first: one record per GraphQL operation of its keys
    /// and users (a subscription's start and end each have one), with the fields and symbols
    /// it asked for and what came of it. Tenant admins only. At most 500 per page.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "Records per page, 1 to 500.")] first: i32,
        #[graphql(desc = "The `cursor` of the last record of the previous page; the newest first when omitted.")]
        after: Option<String>,
        #[graphql(desc = "Which records; all of the tenant's when omitted.")] filter: Option<AuditLogFilter>,
    ) -> Result<AuditRecordConnection> {
        audit::graphql::tenant_audit_log(ctx, self.tenant.id, first, after, filter).await
    }
    /// The tenant's users, oldest first; `after` is the last user of the previous page.
    /// Tenant admins only. Shows who they are and their role, never their ledgers.
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Users per page, 1 to 500.")] first: i32,
        #[graphql(desc = "The `id` of the last user of the previous page; from the first user when omitted.")]
        after: Option<ID>,
    ) -> Result<Vec<UserObject>> {
        RequestContext::of(ctx)?.principal.require_admin()?;
        let after = after.map(|id| uuid_of::<UserObject>(&id, "after")).transpose()?;
        let users = tenancy(ctx)?.members(self.tenant.id, page(first, after)?).await?;
        Ok(users.into_iter().map(UserObject).collect())
    }
}

/// A plan's limits and entitlements (the plan file's `[plans.NAME]`).
pub struct PlanObject(Arc<Plan>);

/// A plan's limits and entitlements, shared by every key and user of the tenants on it.
#[Object(name = "Plan")]
impl PlanObject {
    /// The plan's name in the plan file (`basic`, `pro`, …).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Requests per second, per tenant (GCRA emission rate).
    async fn rate_per_second(&self) -> u32 {
        self.0.rate_per_second
    }
    /// Requests allowed at once.
    async fn burst(&self) -> u32 {
        self.0.burst
    }
    /// Query cost units per minute, per tenant.
    async fn cost_per_minute(&self) -> u32 {
        self.0.cost_per_minute
    }
    /// WebSocket connections open at once, per tenant.
    async fn max_connections(&self) -> u32 {
        self.0.max_connections
    }
    /// Distinct symbols subscribed at once, per tenant.
    async fn max_live_symbols(&self) -> u32 {
        self.0.max_live_symbols
    }
    /// How many days back klines, ticks, fundamentals and corporate actions reach.
    async fn history_days(&self) -> u32 {
        self.0.history_days
    }
    /// How old a price of a `DELAYED` market is at least.
    async fn delay_minutes(&self) -> u32 {
        self.0.delay_minutes
    }
    /// Whether fundamentals are included.
    async fn fundamentals(&self) -> bool {
        self.0.fundamentals
    }
    /// The access in every market finql knows, then in any other market the plan names.
    async fn markets(&self) -> Vec<MarketAccessObject> {
        let known = self.0.all_markets().map(|(market, access)| (market.to_owned(), access));
        let named =
            self.0.markets.iter().filter(|(market, _)| !crate::config::plans::MARKETS.contains(&market.as_str()));
        known
            .chain(named.map(|(market, access)| (market.clone(), *access)))
            .map(|(market, access)| MarketAccessObject { market, access: access.into() })
            .collect()
    }
}

/// What a plan grants in one market.
#[derive(SimpleObject)]
#[graphql(name = "PlanMarket")]
pub struct MarketAccessObject {
    /// A stock or fund region (`US`, `HK`, `SH`, `SZ`) or an asset prefix (`FX`, `IDX`,
    /// `CRYPTO`, `FUT`).
    market: String,
    /// What the plan allows there.
    access: MarketAccess,
}

/// A plan's access to a market.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketAccess {
    /// No data.
    None,
    /// Prices at least the plan's `delayMinutes` old; no order books.
    Delayed,
    /// Everything, as it happens.
    Realtime,
}

impl From<Access> for MarketAccess {
    fn from(access: Access) -> Self {
        match access {
            Access::None => Self::None,
            Access::Delayed => Self::Delayed,
            Access::Realtime => Self::Realtime,
        }
    }
}

/// What an API key may reach.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeyScope {
    /// Market and reference data.
    Market,
    /// Live data (subscriptions).
    Live,
    /// The tenant admin API.
    Admin,
}

impl From<ApiKeyScope> for Scope {
    fn from(scope: ApiKeyScope) -> Self {
        match scope {
            ApiKeyScope::Market => Self::Market,
            ApiKeyScope::Live => Self::Live,
            ApiKeyScope::Admin => Self::Admin,
        }
    }
}

impl From<Scope> for ApiKeyScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Market => Self::Market,
            Scope::Live => Self::Live,
            Scope::Admin => Self::Admin,
        }
    }
}

/// The scopes of a list (duplicates ignored).
pub(super) fn scopes_of(list: &[ApiKeyScope]) -> Scopes {
    list.iter().fold(Scopes::default(), |scopes, scope| scopes.with((*scope).into()))
}

/// A machine credential of the tenant, as its admins see it: never the secret.
pub struct ApiKeyObject(pub(super) ApiKey);

/// A machine credential of the tenant, as its admins see it: never the secret.
#[Object(name = "ApiKey")]
impl ApiKeyObject {
    /// The key's id (a UUID): what `revokeApiKey` takes.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The visible part of the key (`fq_<prefix>_…`): names it in logs, usage and
    /// `finql key revoke PREFIX`.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// What the key is for, as its creator named it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the key may reach; a request outside them is `FORBIDDEN`.
    async fn scopes(&self) -> Vec<ApiKeyScope> {
        self.0.scopes.iter().map(ApiKeyScope::from).collect()
    }
    /// The key's own request rate when lower than the plan's (requests per second), if set.
    async fn rate_per_second(&self) -> Option<u32> {
        self.0.rate.map(|(rate, _)| rate)
    }
    /// The key's own burst, when it has its own rate.
    async fn burst(&self) -> Option<u32> {
        self.0.rate.map(|(_, burst)| burst)
    }
    /// The global id (`User.id`) of the user who created it; `null` when an operator (CLI) or
    /// another key did.
    async fn created_by(&self) -> Option<ID> {
        self.0.created_by.map(|id: Uuid| GlobalId::of::<UserObject>(&id.to_string()))
    }
    /// When the key was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
    /// When the key last authenticated a request (recorded at most once a minute per
    /// replica).
    async fn last_used_at(&self) -> Option<Timestamp> {
        self.0.last_used_at.map(Timestamp)
    }
    /// After this the key is refused (`UNAUTHENTICATED`, "API key expired").
    async fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at.map(Timestamp)
    }
    /// When the key was revoked; from then on it is refused ("API key revoked").
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.0.revoked_at.map(Timestamp)
    }
}

/// A key just created: the only time its secret is shown.
#[derive(SimpleObject)]
#[graphql(complex, name = "CreatedApiKey")]
pub struct CreatedApiKeyObject {
    /// The whole key, `fq_<prefix>_<secret>`: send it as `X-API-Key` or
    /// `Authorization: Bearer`. Shown once; finql keeps only its hash.
    secret: String,
    #[graphql(skip)]
    key: ApiKey,
}

#[ComplexObject]
impl CreatedApiKeyObject {
    /// The key as `apiKeys` lists it.
    async fn api_key(&self) -> ApiKeyObject {
        ApiKeyObject(self.key.clone())
    }
}

impl From<CreatedKey> for CreatedApiKeyObject {
    fn from(created: CreatedKey) -> Self {
        Self { secret: created.secret, key: created.key }
    }
}
