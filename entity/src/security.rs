//! `securities`: the reference catalog of instruments finql serves, keyed by canonical symbol.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "securities")]
pub struct Model {
    /// Canonical symbol (`AAPL.US`, `FX:EURUSD`, `FUT:CL.US`, …).
    #[sea_orm(primary_key, auto_increment = false)]
    pub symbol: String,
    /// `STOCK`, `FUND`, `FOREX`, `INDEX`, `CRYPTO` or `FUTURE`.
    pub asset_class: String,
    pub name: String,
    /// Home market: `US`, `HK`, `CN`, `JP`, `GB`, `DE`, or `GLOBAL`.
    pub region: String,
    /// ISO 10383 MIC of the primary listing, when there is one.
    pub exchange_mic: Option<String>,
    /// Currency prices are quoted in: ISO 4217, or a market code beside it (`CNH`, `USDT`).
    pub currency: String,
    /// Board lot (shares per lot; contracts for futures; a crypto pair's step size, `0.00001`),
    /// an exact decimal as text.
    pub lot_size: String,
    pub sector: Option<String>,
    pub industry: Option<String>,
    /// Upstream (iTick) region and code for this instrument.
    pub upstream_region: String,
    pub upstream_code: String,
    /// Lower-cased symbol and name, for case-insensitive search on every backend.
    pub search_text: String,
    /// First trading day, when known.
    pub listed_at: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
