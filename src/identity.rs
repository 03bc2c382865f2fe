//! Who a request says it is: the credentials it presented, checked.
//!
//! A leaf, so that the account domain (which checks tokens and produces credentials) and the
//! GraphQL kit (which carries them with every request) share the type without the kit importing
//! a domain. The tenancy work adds tenant and API-key identity here.

use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Who a request says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header: public operations only.
    Anonymous,
    /// A valid access token for this user.
    User(Uuid),
    /// A header was sent but is unusable; the reason is safe to show the client.
    Invalid(&'static str),
}

impl Credentials {
    /// The authenticated user, or `UNAUTHENTICATED`.
    pub fn require_user(&self) -> AppResult<Uuid> {
        match self {
            Self::User(id) => Ok(*id),
            Self::Anonymous => Err(AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <accessToken>`".into(),
            )),
            Self::Invalid(reason) => Err(AppError::Unauthenticated((*reason).into())),
        }
    }
}
