//! `idempotency_keys`: one row per (user, key) a client sent with a write, kept 24 hours, so a
//! retried write is answered with the first one's result instead of being applied twice.
//!
//! The row is written in the same database transaction as the write it guards: both commit or
//! neither does. See `finql::ledger::idempotency` for the protocol.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Keys are per user: two users may send the same key and never meet.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// As the client sent it: 1 to 255 printable ASCII characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The mutation the key was first used with (`createTransaction`, …).
    pub operation: String,
    /// Hex SHA-256 of the write's canonical form (operation and parsed input).
    pub request_hash: String,
    /// The first result, as JSON. Null only inside the transaction that claims the key.
    pub response: Option<String>,
    pub created_at: DateTimeUtc,
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
