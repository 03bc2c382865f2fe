//! `transactions`: a user's personal-finance ledger entries.
//!
//! `amount_scaled` is the amount times 10^4 as a 64-bit integer: fixed point with four decimal
//! places, the most any ISO 4217 currency uses (CLF, UYW). Integers are exact on every backend
//! (SQLite has no exact decimal type and would store NUMERIC as a float), they sum exactly in
//! SQL, and one scale for all currencies keeps range filters and ordering by amount correct.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// Amount × 10^4 (always positive; direction is `kind`).
    pub amount_scaled: i64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// `CREDIT` or `DEBIT`.
    pub kind: String,
    /// `PENDING`, `SUCCESS` or `FAILED`.
    pub status: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
