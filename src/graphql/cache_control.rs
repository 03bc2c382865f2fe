//! How long an answer may be kept: the data tiers, and what a resolver does when its answer
//! is fresher than its field's tier says.
//!
//! Most of a field's freshness is static, so it is declared where the field is, with
//! async-graphql's cache hints: `#[graphql(cache_control(max_age = 2))]` on a field,
//! `#[Object(cache_control(...))]` on a type. async-graphql merges the hints of everything a
//! document selects, before it runs (the shortest `max_age`, `private` if any part is), into
//! `Response::cache_control`; the HTTP edge turns that into `Cache-Control`
//! (`http::caching`). The attributes take literals, so the tiers below are the one list of
//! those numbers; a test (`http::caching`) holds every root field to one of them.
//!
//! | tier | hint | what |
//! | --- | --- | --- |
//! | live | `max_age = 2` (`LIVE`) | quotes, order books, ticks, market status, the latest klines |
//! | reference | `max_age = 300` (`REFERENCE`) | securities, fundamentals, corporate actions |
//! | closed | `max_age = 3600` (`CLOSED`) | klines of a window entirely in the past |
//! | personal | `private, no_cache` | the user, their ledger, their tenant; proprietary datasets (per plan, changed by any load); reconciliation reports |
//!
//! Root-level merged objects (`MarketQuery`, `LedgerQuery`, …) carry no type-level hint:
//! `MergedObject` folds its parts' type hints into `Query`'s, which would make every document
//! as private as the most private part. Hints go on the root fields and on the types a field
//! returns.
//!
//! One answer is not static: klines whose window reaches the present change with every trade,
//! though closed windows never do. Their fields carry the closed tier, and the resolver lowers
//! the request's `Ceiling` to `LIVE` when the window is open (`at_most`).

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use async_graphql::Context;

/// Seconds a live answer may be reused: market data that moves with every trade. Two seconds
/// absorbs a burst of identical polls (a dashboard's many widgets, a page reloaded) while no
/// screen shows a price older than a refresh or two.
pub const LIVE: u32 = 2;
/// Seconds reference data may be reused: the catalog, fundamentals and corporate actions
/// change a few times a day at most; five minutes is how late a correction may show.
pub const REFERENCE: u32 = 300;
/// Seconds a closed window of klines may be reused: such bars never change, except for an
/// upstream correction, which an hour bounds.
pub const CLOSED: u32 = 3600;

/// The longest any part of the request's answer may be kept, as its resolvers found it (no
/// limit until one lowers it). Request data, attached by the HTTP edge; absent on WebSocket,
/// where nothing is cached.
#[derive(Clone, Debug)]
pub struct Ceiling(Arc<AtomicU32>);

impl Default for Ceiling {
    fn default() -> Self {
        Self(Arc::new(AtomicU32::new(u32::MAX)))
    }
}

impl Ceiling {
    /// The lowest limit a resolver set, if any did.
    pub fn seconds(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|seconds| *seconds != u32::MAX)
    }

    fn lower(&self, seconds: u32) {
        self.0.fetch_min(seconds, Ordering::Relaxed);
    }
}

/// Keeps the request's answer from being reused for longer than `seconds`, whatever its
/// fields' hints say.
pub fn at_most(ctx: &Context<'_>, seconds: u32) {
    if let Ok(ceiling) = ctx.data::<Ceiling>() {
        ceiling.lower(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_keeps_the_lowest_limit() {
        let ceiling = Ceiling::default();
        assert_eq!(ceiling.seconds(), None);
        ceiling.lower(CLOSED);
        ceiling.clone().lower(LIVE);
        ceiling.lower(REFERENCE);
        assert_eq!(ceiling.seconds(), Some(LIVE));
    }
}
