//! `api_keys`: machine credentials of a tenant, `fq_<prefix>_<secret>`. Only the SHA-256 of the
//! whole key is stored (the secret is 256 random bits, so a fast hash is as safe as a slow one
//! and costs nothing per request); the prefix finds the row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(unique)]
    pub prefix: String,
    /// Hex SHA-256 of the whole key. Never leaves the tenancy service.
    pub secret_hash: String,
    pub name: String,
    /// `market,live,admin` or a subset (`identity::Scopes`).
    pub scopes: String,
    /// The key's own rate limit when lower than its tenant's plan.
    pub rate_per_second: Option<i32>,
    pub burst: Option<i32>,
    /// The user who created it (`None` when created with the CLI or by another key).
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
