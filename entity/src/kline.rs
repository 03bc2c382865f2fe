//! `klines`: closed bars, one per (source, symbol, interval, start). Decimals are exact strings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "klines")]
pub struct Model {
    /// The market source that produced the bar (`itick`, `simulated`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub symbol: String,
    /// Interval code: `1m`, `5m`, `15m`, `30m`, `1h`, `2h`, `4h`, `1d`, `1w`, `1M`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub interval: String,
    /// Start of the bar.
    #[sea_orm(primary_key, auto_increment = false)]
    pub time: DateTimeUtc,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
    pub turnover: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
