//! The schema: every domain's roots merged into one `Query`, one `Mutation` and one
//! `Subscription`. At the top of the tree: it imports every domain's API, and nothing below
//! imports it.

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema, SchemaBuilder};

use crate::{
    accounts::graphql::{AccountsMutation, AccountsQuery},
    config::Limits,
    datasets::graphql::{DatasetsMutation, DatasetsQuery},
    ledger::graphql::{LedgerMutation, LedgerQuery},
    live::graphql::LiveSubscription,
    market::graphql::MarketQuery,
    node::NodeQuery,
    reconcile::graphql::ReconcileQuery,
    tenancy::graphql::{TenancyMutation, TenancyQuery},
};

/// What can be read: market data, the instrument catalog and proprietary datasets (public or
/// per plan), your ledger and analytics, your tenant, and any object by its global id
/// (`node`). Entry points that need credentials say so; without them they answer
/// `UNAUTHENTICATED`.
#[derive(MergedObject, Default)]
pub struct Query(AccountsQuery, DatasetsQuery, LedgerQuery, MarketQuery, NodeQuery, ReconcileQuery, TenancyQuery);

/// What can be changed: accounts and sessions, your ledger (each write can be made safe to
/// retry with an idempotency key), your tenant's keys and members, datasets your tenant loads.
#[derive(MergedObject, Default)]
pub struct Mutation(AccountsMutation, DatasetsMutation, LedgerMutation, TenancyMutation);

/// Live market data, over WebSocket only (`graphql-transport-ws`, or legacy `graphql-ws`):
/// quotes, klines, order books and trades as they change.
#[derive(MergedSubscription, Default)]
pub struct Subscription(LiveSubscription);

pub type FinqlSchema = Schema<Query, Mutation, Subscription>;
pub type FinqlSchemaBuilder = SchemaBuilder<Query, Mutation, Subscription>;

fn builder() -> FinqlSchemaBuilder {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
}

/// The schema with the request limits applied, for `app` to give the services its resolvers
/// reach (`.data(market)`, …) and `finish`. Services are schema data, not request data: they
/// live as long as the process, so attaching them once costs nothing per request (request
/// data holds only what differs per request: the `RequestContext` and the DataLoaders, see
/// `AppState::prepare`). The same schema value serves HTTP and WebSocket alike.
pub fn build_schema(limits: &Limits) -> FinqlSchemaBuilder {
    let mut builder = builder()
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // Directive spam is a cheap way to make parsing expensive.
        .limit_directives(10);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder
}

/// The SDL, sorted so that it is stable across builds: what `finql schema` prints and what
/// `schema.graphql` must equal. With `@specifiedBy`: introspection shows each scalar's
/// specification URL, and without `include_specified_by` the exported SDL silently dropped it,
/// so code generators reading the file never saw it.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new().sorted_fields().sorted_arguments().sorted_enum_items().include_specified_by(),
    )
}
