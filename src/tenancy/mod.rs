//! Tenancy: tenants on plans, their API keys and members, and who a request's credentials make
//! the caller (`identity::Principal`).
//!
//! Above `accounts` (a tenant admin's `createUser` makes an account; access tokens are
//! checked there) and below the HTTP edge, which resolves every request's credentials here
//! once, before any limit or resolver sees it. Lookups on that path are cached for a few
//! seconds (`service::CACHE_TTL`), so a request with a key or a token costs no database
//! round trip; writes on this replica drop what they change from its caches at once, other
//! replicas see them within the TTL.

/// What tenant admins manage: the tenant's keys and members, each read and write confined to
/// the tenant.
pub mod admin;
/// The tenant admin API: `tenant`, `createApiKey`, `revokeApiKey`, `createUser`,
/// `setMemberRole`.
pub mod graphql;
/// API key format (`fq_<prefix>_<secret>`), generation and hashing.
pub mod keys;
/// The plans' request rates and cost budgets, per tenant, key and anonymous address (GCRA).
pub mod limits;
/// Tenants, keys, members; resolving credentials to a `Principal`.
pub mod service;

pub use service::TenancyService;
