//! The schema: every domain's roots merged into one `Query`, one `Mutation` and one
//! `Subscription`.

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema, SchemaBuilder};

use crate::{
    accounts::graphql::{AccountsMutation, AccountsQuery},
    config::Limits,
    ledger::graphql::{LedgerMutation, LedgerQuery},
    live::graphql::LiveSubscription,
    market::{graphql::MarketQuery, status_graphql::MarketStatusQuery},
    reference::graphql::ReferenceQuery,
};

#[derive(MergedObject, Default)]
pub struct Query(AccountsQuery, LedgerQuery, ReferenceQuery, MarketQuery, MarketStatusQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(AccountsMutation, LedgerMutation);

#[derive(MergedSubscription, Default)]
pub struct Subscription(LiveSubscription);

pub type FinqlSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
}

/// The executable schema. Application state is not baked in: it travels with each request
/// (see `RequestContext`), so the same schema value serves HTTP and WebSocket alike.
pub fn build_schema(limits: &Limits) -> FinqlSchema {
    let mut builder = builder()
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // Directive spam is a cheap way to make parsing expensive.
        .limit_directives(10);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL, sorted so that it is stable across builds: what `finql schema` prints and what
/// `schema.graphql` must equal.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_arguments().sorted_enum_items())
}
