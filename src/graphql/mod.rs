//! The GraphQL layer: schema assembly, per-request context, guards. No business logic lives
//! here; each domain owns its resolvers and this module merges them.

/// `RequestContext`: the app state and the caller's credentials, attached to every request.
pub mod context;
/// Parsed documents kept by query text, so repeated operations skip the parser.
pub mod documents;
/// Edge guards: token, field, depth, alias and auth-mutation limits measured as executed, the
/// request deadline, error codes for async-graphql's own errors, caught panics.
pub mod guard;
/// The `Decimal` scalar: money as exact strings.
pub mod scalars;
/// `Query`, `Mutation` and the schema builder.
pub mod schema;

pub use schema::{FinqlSchema, build_schema, sdl};

/// Relay `PageInfo`, shared by every connection.
#[derive(async_graphql::SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}
