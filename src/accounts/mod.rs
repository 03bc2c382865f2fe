//! Accounts: sign-up, login, access tokens and refresh-token rotation.
//!
//! `service` is plain Rust over the database; `graphql` is the thin resolver layer over it.

/// `Email::parse`: the only way to get an address into the system.
pub mod email;
/// `signUp`, `login`, `refreshToken`, `logout`, `me`, and the `User` type.
pub mod graphql;
/// Argon2id hashing, run off the async runtime and bounded in concurrency.
pub mod password;
/// Ended sessions (`sid`s) that access tokens are checked against, shared through Redis.
pub mod revocation;
/// Account operations; knows nothing of GraphQL.
pub mod service;
/// JWT access tokens, opaque refresh tokens, and what an `Authorization` value is worth.
pub mod tokens;

pub use revocation::Revocations;
pub use service::AccountsService;
pub use tokens::{AccessGrant, Authentication, Lapsed, TokenIssuer};
