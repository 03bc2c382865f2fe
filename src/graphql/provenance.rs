//! `extensions.sources`: the market-data sources whose values an operation's answer holds
//! (`["itick", "polygon"]`), so a client sees at a glance which providers answered (a route's
//! failover, a fallback list's second source) without selecting `source` on every value.
//!
//! One `SourcesUsed` per operation, attached as request data by the HTTP edge; the resolvers
//! that turn a source's values into GraphQL objects record their source names; the edge adds
//! the list to the answer. A handful of names behind a mutex taken once per batch of values,
//! and never over an await.

use std::sync::{Arc, Mutex};

use async_graphql::{Context, Response, Value};

/// The sources one operation's values came from.
#[derive(Clone, Default)]
pub struct SourcesUsed(Arc<Mutex<Vec<&'static str>>>);

impl SourcesUsed {
    /// Notes `names` in the operation of `ctx` (nothing when it has no collector: a WebSocket
    /// subscription, whose events each carry their source).
    pub fn record(ctx: &Context<'_>, names: impl IntoIterator<Item = &'static str>) {
        let Some(used) = ctx.data_opt::<SourcesUsed>() else { return };
        let mut seen = used.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
    }

    /// Sets `extensions.sources` on `response`, sorted, when any source was used.
    pub fn annotate(&self, response: &mut Response) {
        let mut names = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if names.is_empty() {
            return;
        }
        names.sort_unstable();
        response.extensions.insert("sources".into(), Value::List(names.into_iter().map(Value::from).collect()));
    }
}
