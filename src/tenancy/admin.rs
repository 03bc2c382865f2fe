//! What a tenant's admins manage, over the database: the tenant's API keys and its members.
//!
//! Every operation takes the tenant it acts in and filters every read and write by it, so a
//! row of another tenant is indistinguishable from a row that does not exist (`NOT_FOUND`
//! either way: no oracle for another tenant's ids). The callers (the admin API, the CLI)
//! decide who may act for which tenant; this module never widens that.

use chrono::Utc;
use entity::{api_key, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use super::service::{ApiKey, TenancyService};
use crate::{
    accounts::service::User,
    error::{AppError, AppResult},
    identity::Role,
};

/// The most rows one page of keys or members holds: a page is one query and one response, and
/// a tenant with more pages through them with `after`.
pub const MAX_PAGE: usize = 500;

/// One page of a tenant's rows, in creation order (ids are UUIDv7, so id order is creation
/// order), strictly after `after` when given.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub first: usize,
    pub after: Option<Uuid>,
}

impl TenancyService {
    /// The tenant's API keys, revoked and expired ones included (an admin audits them too).
    pub async fn api_keys(&self, tenant: Uuid, page: Page) -> AppResult<Vec<ApiKey>> {
        let mut find = api_key::Entity::find().filter(api_key::Column::TenantId.eq(tenant));
        if let Some(after) = page.after {
            find = find.filter(api_key::Column::Id.gt(after));
        }
        let rows = find.order_by_asc(api_key::Column::Id).limit(page.first.min(MAX_PAGE) as u64).all(self.db()).await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes the tenant's key `id`: `NOT_FOUND` when the tenant has no such key.
    pub async fn revoke_key_by_id(&self, tenant: Uuid, id: Uuid) -> AppResult<ApiKey> {
        let row = api_key::Entity::find_by_id(id)
            .filter(api_key::Column::TenantId.eq(tenant))
            .one(self.db())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no API key `{id}`")))?;
        self.revoke_key(Some(tenant), &row.prefix).await
    }

    /// The tenant's members (users), in creation order.
    pub async fn members(&self, tenant: Uuid, page: Page) -> AppResult<Vec<User>> {
        let mut find = user::Entity::find().filter(user::Column::TenantId.eq(tenant));
        if let Some(after) = page.after {
            find = find.filter(user::Column::Id.gt(after));
        }
        let rows = find.order_by_asc(user::Column::Id).limit(page.first.min(MAX_PAGE) as u64).all(self.db()).await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Gives the tenant's member `user` the role `role`, acting as `actor` (the admin user
    /// making the change, `None` for a key). An admin cannot change their own role: that is
    /// how a tenant would lose its last admin by a slip, and another admin (or an operator's
    /// key) can always do it. Applies on this replica at once, on the others within
    /// `service::CACHE_TTL`.
    pub async fn set_member_role(&self, tenant: Uuid, actor: Option<Uuid>, user: Uuid, role: Role) -> AppResult<User> {
        if actor == Some(user) {
            return Err(AppError::Forbidden("you cannot change your own role: ask another admin of the tenant".into()));
        }
        let updated = user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value(role.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(user))
            .filter(user::Column::TenantId.eq(tenant))
            .exec(self.db())
            .await?;
        if updated.rows_affected == 0 {
            return Err(AppError::NotFound(format!("no member `{user}` in this tenant")));
        }
        self.forget_user(user).await;
        tracing::info!(user_id = %user, tenant_id = %tenant, role = role.as_str(), "member role changed");
        let row = user::Entity::find_by_id(user)
            .one(self.db())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no member `{user}` in this tenant")))?;
        Ok(User::from(row))
    }
}
