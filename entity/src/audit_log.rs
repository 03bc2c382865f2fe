//! `audit_log`: one row per GraphQL operation (a subscription's start and end each have one),
//! appended in batches by the server's audit writer, deleted by retention. Lists are
//! comma-separated text; `symbols` is wrapped in commas (`,AAPL.US,700.HK,`) so that one
//! symbol is found with a `LIKE` (see the migration).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    pub trace_id: Option<String>,
    pub tenant_id: Option<Uuid>,
    pub principal: String,
    pub event: String,
    pub transport: String,
    pub operation_type: Option<String>,
    pub operation_name: Option<String>,
    pub document_hash: Option<String>,
    pub fields: String,
    pub symbols: String,
    pub outcome: String,
    pub error_codes: String,
    pub duration_us: i64,
    pub response_bytes: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
