//! `reconciliation_runs`: one comparison of a day's daily bars and corporate actions across the
//! configured sources, with its counts per verdict.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// A market name, or `*`.
    pub market: String,
    /// `schedule:<day>:<market>` for a scheduled run (unique); `None` for an operator's.
    pub claim: Option<String>,
    /// The sources compared, comma-separated, in configured order.
    pub sources: String,
    pub tolerance_bps: i32,
    pub started_at: DateTimeUtc,
    /// `None` while it runs (or if it died).
    pub finished_at: Option<DateTimeUtc>,
    pub instruments: i32,
    pub matched: i32,
    pub different: i32,
    pub missing: i32,
    pub unavailable: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
