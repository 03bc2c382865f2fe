//! `usage_hourly`: what each actor (`user:<id>`, `key:<prefix>`) of a tenant used in one UTC
//! hour. Replicas count in memory and add their counts here in batches (an upsert that adds),
//! so the row is the sum over every replica.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_hourly")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: DateTimeUtc,
    #[sea_orm(primary_key, auto_increment = false)]
    pub actor: String,
    pub requests: i64,
    pub cost: i64,
    pub errors: i64,
    pub rate_limited: i64,
    pub response_bytes: i64,
    pub subscription_seconds: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
