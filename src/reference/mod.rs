//! Reference data: the instruments finql knows (the catalog), their symbols, and currencies.
//!
//! Plain Rust, no GraphQL: the `Security` type and the `security`/`securities` queries live in
//! the market API (`market::graphql::securities`), which composes the catalog with market data.
//! So the dependency runs one way: `market` uses `reference`, never the reverse.

/// `Currency::parse`: ISO 4217 codes and their minor-unit digits.
pub mod currency;
/// Catalog look-ups and search; knows nothing of GraphQL.
pub mod service;
/// `Symbol::parse`: one unambiguous text form per instrument.
pub mod symbol;

pub use currency::Currency;
pub use service::ReferenceService;
pub use symbol::Symbol;
