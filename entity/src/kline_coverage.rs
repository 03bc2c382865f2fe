//! `kline_coverage`: ranges `[from_time, to_time)` whose closed bars are all in `klines`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kline_coverage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub symbol: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub interval: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub from_time: DateTimeUtc,
    pub to_time: DateTimeUtc,
    /// The source has no bars before `from_time`: history starts here.
    pub history_start: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
