//! Reference data: the instruments finql knows (the catalog), and their symbols.
//!
//! Market data (quotes, klines, order books) and fundamentals hang off a `Security`; they
//! arrive with the market-data sources.

/// `security`, `securities`, and the `Security` type.
pub mod graphql;
/// Catalog look-ups and search; knows nothing of GraphQL.
pub mod service;
/// `Symbol::parse`: one unambiguous text form per instrument.
pub mod symbol;

pub use service::ReferenceService;
pub use symbol::Symbol;
