//! Tenants, API keys and members over the database, and resolving credentials to a
//! [`Principal`](crate::identity::Principal). Plain Rust: no GraphQL types in or out.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{api_key, tenant, user};
use moka::future::Cache;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::keys::{self, NewKey};
use crate::{
    config::{Plan, Plans, TenancySettings, tenancy::check_slug},
    error::{AppError, AppResult, is_unique_violation},
    identity::{Credentials, KeyGrant, Principal, Role, Scopes, TenantRef},
};

/// How long a replica trusts what it read about a user's tenant and role, a tenant's plan, or
/// a key: the longest a change made on another replica (a revoked key, a new plan) takes to
/// apply here. Short enough for revocation, long enough that a busy key costs one lookup per
/// TTL, not one per request.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Entries per cache: the working set of active users, tenants and keys, bounded.
const CACHE_CAPACITY: u64 = 100_000;
/// `lastUsedAt` is written at most this often per key and replica: it says "in use lately",
/// and writing it on every request would be one database write per request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

const INVALID_KEY: &str = "invalid API key";

/// A tenant as the rest of the application sees it.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// The plan's name (in the deployment's plans, checked when set).
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Self { id: m.id, slug: m.slug, name: m.name, plan: m.plan, created_at: m.created_at }
    }
}

/// An API key as its tenant's admins see it: never the secret or its hash.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub prefix: String,
    pub name: String,
    pub scopes: Scopes,
    pub rate: Option<(u32, u32)>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        let rate = match (m.rate_per_second, m.burst) {
            (Some(rate), Some(burst)) if rate > 0 && burst > 0 => Some((rate as u32, burst as u32)),
            _ => None,
        };
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            prefix: m.prefix,
            name: m.name,
            scopes: Scopes::parse(&m.scopes).unwrap_or_default(),
            rate,
            created_by: m.created_by,
            created_at: m.created_at,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// What a new key is made with.
pub struct KeySpec {
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
    /// Its own rate limit (requests per second, burst), when lower than the plan's.
    pub rate: Option<(u32, u32)>,
    pub created_by: Option<Uuid>,
}

/// A key just made: the whole secret, shown once, and the key.
pub struct CreatedKey {
    pub secret: String,
    pub key: ApiKey,
}

#[derive(Clone)]
pub struct TenancyService(Arc<Inner>);

struct Inner {
    db: DatabaseConnection,
    plans: Plans,
    anonymous_plan: Option<Arc<Plan>>,
    /// user id -> (tenant id, role); `None`: no such user.
    users: Cache<Uuid, Option<(Uuid, Role)>>,
    /// tenant id -> the tenant; `None`: no such tenant.
    tenants: Cache<Uuid, Option<Arc<(TenantRef, String)>>>,
    /// key prefix -> the key and its hash; `None`: no such key.
    keys: Cache<String, Option<Arc<(ApiKey, String)>>>,
    /// Keys whose `lastUsedAt` this replica wrote lately.
    touched: Cache<Uuid, ()>,
}

impl TenancyService {
    pub fn new(db: DatabaseConnection, settings: &TenancySettings) -> Self {
        fn cache<K, V>() -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(CACHE_TTL).build()
        }
        Self(Arc::new(Inner {
            db,
            plans: settings.plans.clone(),
            anonymous_plan: settings.anonymous_plan.clone(),
            users: cache(),
            tenants: cache(),
            keys: cache(),
            touched: Cache::builder().max_capacity(CACHE_CAPACITY).time_to_live(TOUCH_EVERY).build(),
        }))
    }

    pub fn plans(&self) -> &Plans {
        &self.0.plans
    }

    /// The connection, for this module's other `impl` blocks (`admin`).
    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }

    /// The plan called `name`, or `BAD_USER_INPUT` naming the plans there are.
    pub fn plan(&self, name: &str) -> AppResult<Arc<Plan>> {
        self.0.plans.get(name).cloned().ok_or_else(|| {
            AppError::bad_field("plan", format!("no plan `{name}`: the plans are {}", self.0.plans.names().join(", ")))
        })
    }

    /// Creates the default tenant unless it exists, and moves every user without a tenant into
    /// it (users created before tenancy). Run at start; safe on several replicas at once.
    pub async fn ensure_default_tenant(&self, slug: &str, plan: &str) -> AppResult<Uuid> {
        let tenant = match self.tenant_by_slug(slug).await? {
            Some(tenant) => tenant,
            None => match self.create_tenant(slug, "Default tenant", plan).await {
                Ok(tenant) => tenant,
                // Another replica created it first.
                Err(_) => self.tenant_by_slug(slug).await?.ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!("the default tenant `{slug}` can be neither created nor read"))
                })?,
            },
        };
        let moved = user::Entity::update_many()
            .col_expr(user::Column::TenantId, Expr::value(tenant.id))
            .filter(user::Column::TenantId.is_null())
            .exec(&self.0.db)
            .await?;
        if moved.rows_affected > 0 {
            tracing::info!(
                users = moved.rows_affected,
                tenant = slug,
                "users without a tenant moved to the default tenant"
            );
        }
        Ok(tenant.id)
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> AppResult<Option<Tenant>> {
        Ok(tenant::Entity::find().filter(tenant::Column::Slug.eq(slug)).one(&self.0.db).await?.map(Tenant::from))
    }

    pub async fn tenant(&self, id: Uuid) -> AppResult<Option<Tenant>> {
        Ok(tenant::Entity::find_by_id(id).one(&self.0.db).await?.map(Tenant::from))
    }

    /// A new tenant on `plan`.
    pub async fn create_tenant(&self, slug: &str, name: &str, plan: &str) -> AppResult<Tenant> {
        check_slug(slug).map_err(|why| AppError::bad_field("slug", why))?;
        self.plan(plan)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(AppError::bad_field("name", "a tenant name is 1 to 200 characters, no control characters"));
        }
        let now = Utc::now();
        let row = tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.to_owned()),
            name: Set(name.to_owned()),
            plan: Set(plan.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match row.insert(&self.0.db).await {
            Ok(model) => Ok(model.into()),
            Err(err) if is_unique_violation(&err) => {
                Err(AppError::bad_field("slug", format!("a tenant `{slug}` already exists")))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Moves the tenant `slug` to `plan` (effective on every replica within `CACHE_TTL`).
    pub async fn set_plan(&self, slug: &str, plan: &str) -> AppResult<Tenant> {
        self.plan(plan)?;
        let tenant =
            self.tenant_by_slug(slug).await?.ok_or_else(|| AppError::NotFound(format!("no tenant `{slug}`")))?;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Plan, Expr::value(plan))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant::Column::Id.eq(tenant.id))
            .exec(&self.0.db)
            .await?;
        self.0.tenants.invalidate(&tenant.id).await;
        Ok(Tenant { plan: plan.to_owned(), ..tenant })
    }

    /// A new key of `tenant`. The secret is in the result and nowhere else.
    pub async fn create_key(&self, tenant: Uuid, spec: KeySpec) -> AppResult<CreatedKey> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::bad_field("name", "a key name is 1 to 100 characters, no control characters"));
        }
        if spec.scopes.is_empty() {
            return Err(AppError::bad_field("scopes", "at least one scope is needed: market, live or admin"));
        }
        if spec.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(AppError::bad_field("expiresAt", "expiresAt must be in the future"));
        }
        let new = NewKey::generate();
        let row = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant),
            prefix: Set(new.prefix.clone()),
            secret_hash: Set(new.hash),
            name: Set(name.to_owned()),
            scopes: Set(spec.scopes.to_string()),
            rate_per_second: Set(spec.rate.map(|(rate, _)| rate.min(i32::MAX as u32) as i32)),
            burst: Set(spec.rate.map(|(_, burst)| burst.min(i32::MAX as u32) as i32)),
            created_by: Set(spec.created_by),
            created_at: Set(Utc::now()),
            expires_at: Set(spec.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        let key = ApiKey::from(row.insert(&self.0.db).await?);
        tracing::info!(tenant_id = %tenant, prefix = %key.prefix, "API key created");
        Ok(CreatedKey { secret: new.secret, key })
    }

    /// Revokes the key with `prefix` (of `tenant`, when given: a tenant admin reaches only its
    /// own keys). `NOT_FOUND` when there is none; revoking twice keeps the first time.
    pub async fn revoke_key(&self, tenant: Option<Uuid>, prefix: &str) -> AppResult<ApiKey> {
        let mut find = api_key::Entity::find().filter(api_key::Column::Prefix.eq(prefix));
        if let Some(tenant) = tenant {
            find = find.filter(api_key::Column::TenantId.eq(tenant));
        }
        let row = find.one(&self.0.db).await?.ok_or_else(|| AppError::NotFound(format!("no API key `{prefix}`")))?;
        if row.revoked_at.is_none() {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
                .filter(api_key::Column::Id.eq(row.id))
                .filter(api_key::Column::RevokedAt.is_null())
                .exec(&self.0.db)
                .await?;
            tracing::info!(prefix, "API key revoked");
        }
        self.0.keys.invalidate(prefix).await;
        let row = api_key::Entity::find_by_id(row.id).one(&self.0.db).await?.unwrap_or(row);
        Ok(row.into())
    }

    /// Drops what this replica cached about `user` (after a role change).
    pub async fn forget_user(&self, user: Uuid) {
        self.0.users.invalidate(&user).await;
    }

    /// Who the credentials make the caller: tenant, role and plan. `Credentials::ApiKey` is
    /// produced by [`TenancyService::authenticate_key`], which resolves the key's tenant itself.
    #[tracing::instrument(name = "tenancy.principal", skip_all)]
    pub async fn principal(&self, credentials: Credentials) -> AppResult<Principal> {
        let user_id = match &credentials {
            Credentials::User(id) => *id,
            Credentials::Anonymous | Credentials::Invalid(_) | Credentials::ApiKey(_) => {
                return Ok(Principal::without_tenant(credentials, self.0.anonymous_plan.clone()));
            }
        };
        let db = self.0.db.clone();
        let found = self
            .0
            .users
            .try_get_with(user_id, async move {
                let row = user::Entity::find_by_id(user_id).one(&db).await?;
                Ok::<_, sea_orm::DbErr>(
                    row.and_then(|u| Some((u.tenant_id?, Role::parse(&u.role).unwrap_or(Role::Member)))),
                )
            })
            .await
            .map_err(|err| AppError::internal(anyhow::anyhow!("looking up a user's tenant: {err}")))?;
        // A token of a deleted user is a token of nobody.
        let Some((tenant_id, role)) = found else {
            return Ok(Principal::without_tenant(Credentials::Invalid("invalid access token"), None));
        };
        let (tenant, plan) = self.tenant_and_plan(tenant_id).await?;
        Ok(Principal { credentials, tenant: Some(tenant), role: Some(role), plan })
    }

    /// Checks an API key (`fq_…`): well-formed, known, the right secret, not revoked, not
    /// expired. Refusals are `Credentials::Invalid` with a reason safe to show.
    #[tracing::instrument(name = "tenancy.authenticate_key", skip_all)]
    pub async fn authenticate_key(&self, raw: &str) -> AppResult<Principal> {
        let invalid = |reason| Ok(Principal::without_tenant(Credentials::Invalid(reason), None));
        let Some(prefix) = keys::prefix_of(raw) else { return invalid(INVALID_KEY) };
        let db = self.0.db.clone();
        let lookup = prefix.to_owned();
        let found = self
            .0
            .keys
            .try_get_with(prefix.to_owned(), async move {
                let row = api_key::Entity::find().filter(api_key::Column::Prefix.eq(lookup)).one(&db).await?;
                Ok::<_, sea_orm::DbErr>(row.map(|row| {
                    let hash = row.secret_hash.clone();
                    Arc::new((ApiKey::from(row), hash))
                }))
            })
            .await
            .map_err(|err| AppError::internal(anyhow::anyhow!("looking up an API key: {err}")))?;
        let Some(found) = found else { return invalid(INVALID_KEY) };
        let (key, hash) = &*found;
        if !keys::same_hash(&keys::hash_key(raw), hash) {
            return invalid(INVALID_KEY);
        }
        if key.revoked_at.is_some() {
            return invalid("API key revoked");
        }
        if key.expires_at.is_some_and(|at| at <= Utc::now()) {
            return invalid("API key expired");
        }
        self.touch(key.id).await;
        let (tenant, plan) = self.tenant_and_plan(key.tenant_id).await?;
        let grant = KeyGrant { id: key.id, prefix: key.prefix.clone(), scopes: key.scopes, rate: key.rate };
        Ok(Principal { credentials: Credentials::ApiKey(grant), tenant: Some(tenant), role: None, plan })
    }

    /// The tenant and its plan. A tenant whose plan the deployment no longer has gets no plan
    /// (its requests are refused) and an error in the log: an operator removed a plan in use.
    async fn tenant_and_plan(&self, tenant_id: Uuid) -> AppResult<(TenantRef, Option<Arc<Plan>>)> {
        let db = self.0.db.clone();
        let found = self
            .0
            .tenants
            .try_get_with(tenant_id, async move {
                let row = tenant::Entity::find_by_id(tenant_id).one(&db).await?;
                Ok::<_, sea_orm::DbErr>(
                    row.map(|t| Arc::new((TenantRef { id: t.id, slug: Arc::from(t.slug.as_str()) }, t.plan))),
                )
            })
            .await
            .map_err(|err| AppError::internal(anyhow::anyhow!("looking up a tenant: {err}")))?;
        let Some(found) = found else {
            return Err(AppError::internal(anyhow::anyhow!("tenant {tenant_id} is referenced but does not exist")));
        };
        let (tenant, plan_name) = &*found;
        let plan = self.0.plans.get(plan_name).cloned();
        if plan.is_none() {
            tracing::error!(tenant = %tenant.slug, plan = %plan_name, "the tenant's plan is not in the plan file");
        }
        Ok((tenant.clone(), plan))
    }

    /// Records that a key was used, at most once per `TOUCH_EVERY` per replica, off the
    /// request's path.
    async fn touch(&self, key: Uuid) {
        if self.0.touched.contains_key(&key) {
            return;
        }
        self.0.touched.insert(key, ()).await;
        let db = self.0.db.clone();
        tokio::spawn(async move {
            let write = api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(Utc::now()))
                .filter(api_key::Column::Id.eq(key))
                .exec(&db);
            match tokio::time::timeout(Duration::from_secs(5), write).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::warn!(%err, "recording an API key's last use"),
                Err(_) => tracing::warn!("recording an API key's last use timed out"),
            }
        });
    }
}
