//! The GraphQL kit: what every domain's resolvers share, and nothing of any domain. The request
//! context (credentials and client, never the application state), scalars, paging, argument
//! checks, edge guards, the documents cache and error-code mapping. Domains import this module;
//! it imports only leaves (`error`, `config`, `identity`). The schema is assembled at the top of
//! the tree, by the top-level `schema` module.

/// The data tiers of async-graphql's cache hints, and the request's freshness ceiling for
/// answers fresher than their field's tier (klines of an open window).
pub mod cache_control;
/// `RequestContext`: the caller's credentials and client, attached to every request; and
/// `service`, how a resolver reaches the value its domain put into the schema.
pub mod context;
/// Parsed documents kept by query text, so repeated operations skip the parser.
pub mod documents;
/// Global object ids (`Node.id`): base64 of `<Type>:<key>`, decoded and checked once.
pub mod global_id;
/// Edge guards: token, field, depth, alias and auth-mutation limits measured as executed, the
/// request deadline, error codes for async-graphql's own errors, caught panics.
pub mod guard;
/// Null propagation as the spec says it, applied to executed answers at the edges (async-graphql
/// leaves a failed field out instead of nulling it and its non-null ancestors).
pub mod nulls;
/// `extensions.sources`: which market-data sources an answer's values came from.
pub mod provenance;
/// The `Decimal`, `Date` and `DateTime` scalars: money as exact strings, days as `YYYY-MM-DD`,
/// instants as UTC RFC 3339 with six fraction digits (`docs/scalars.md`).
pub mod scalars;

pub use context::{ClientInfo, RequestContext, service};

use crate::error::AppError;

/// Relay `PageInfo`, shared by every connection.
#[derive(async_graphql::SimpleObject)]
pub struct PageInfo {
    /// True when more items follow the page (ask again with `after: endCursor`).
    pub has_next_page: bool,
    /// True when items precede the page: paging forward, when it started `after` a cursor;
    /// paging backward (`last`, `before`), when more items precede it.
    pub has_previous_page: bool,
    /// The cursor of the page's first item; null when the page is empty.
    pub start_cursor: Option<String>,
    /// The cursor of the page's last item; null when the page is empty.
    pub end_cursor: Option<String>,
}

/// Checks a count argument against `min..=max`, naming it (`BAD_USER_INPUT` on the field). The
/// limits themselves belong to their domain (e.g. `market::limits`).
pub fn bounded(value: i32, min: i32, max: i32, name: &'static str) -> Result<usize, AppError> {
    if value < min || value > max {
        return Err(AppError::bad_field(name, format!("`{name}` must be between {min} and {max}")));
    }
    Ok(value as usize)
}
