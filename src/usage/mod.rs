//! Usage metering: what each tenant's keys and users used, per UTC hour. The basis for billing
//! by actual use, so the counts must be exact, summed across replicas, and never lost on a
//! clean shutdown, while costing the request path nothing but a short in-memory update.
//!
//! How a count travels:
//! - the HTTP edge (`http::graphql`, once the answer is built) hands a
//!   [`UsageRecord`](crate::usage::UsageRecord) per request, and the WebSocket (`http::ws`) holds
//!   an [`OperationMeter`](crate::usage::OperationMeter) per operation, to the
//!   [`UsageService`](crate::usage::UsageService), which adds it to the caller's row in memory
//!   (`usage::meter`): one short lock, no I/O;
//! - a flusher task writes the rows every `FINQL_USAGE_FLUSH_SECS` (earlier when memory fills),
//!   in one transaction of upserts that ADD to what the table holds (`usage::store`), so
//!   replicas writing the same (tenant, hour, actor) row sum rather than overwrite; a failed or
//!   timed-out write puts its rows back in memory for the next flush;
//! - on a clean shutdown, once requests in flight have finished, open subscriptions are credited
//!   up to that instant and everything is written one last time (`UsageService::close`);
//! - reports read the table (`usage::report`): `tenant { usage }` for tenant admins
//!   (`usage::graphql`), `finql usage` for operators (`cli::usage`).
//!
//! Refused requests count too (as requests and errors, charged no cost): those the plan limits
//! refused (also as `rate_limited`), and malformed requests or documents the edge guards
//! refused, once the caller is known. What is not metered: requests without a tenant
//! (anonymous callers, refused credentials: there is nobody to bill). Counts not yet flushed
//! are visible in reports at most one flush interval late.

/// `tenant { usage(from, to, granularity) }`: the resolver logic and its output types.
pub mod graphql;
/// The in-memory counts: bounded, drained by each flush, restored when a flush fails.
pub mod meter;
/// Reading usage back: ranges, hours folded into days, the rows reports show.
pub mod report;
/// `UsageService`: recording, subscription time, the flusher, the shutdown flush, reports.
pub mod service;
/// The `usage_hourly` table: the additive upsert and the range read.
pub mod store;

pub use report::Granularity;
pub use service::{OperationMeter, SubscriptionMeter, UsageService};

/// What one HTTP request (or one WebSocket operation) used, as the edge saw it. Every field is
/// a count to add: a request that was refused counts as a request, and as rate-limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageRecord {
    /// GraphQL operations executed (a batch of N counts N).
    pub requests: u64,
    /// Cost units charged by the plan limiter (the document's estimated cost, as returned in
    /// `extensions.cost`); 0 when no cost was charged.
    pub cost: u64,
    /// Operations whose response carried at least one error.
    pub errors: u64,
    /// Operations refused with `RATE_LIMITED`.
    pub rate_limited: u64,
    /// Bytes of the response body sent to the client.
    pub response_bytes: u64,
}

impl UsageRecord {
    /// `operations` refused before any ran (by the plan limits, `rate_limited` when with
    /// `RATE_LIMITED`, or by the edge guards): requests and errors, charged nothing.
    pub fn refused(operations: u64, rate_limited: bool) -> Self {
        let rate_limited = if rate_limited { operations } else { 0 };
        Self { requests: operations, errors: operations, rate_limited, ..Self::default() }
    }
}

/// The counters of one (tenant, hour, actor) row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub cost: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub response_bytes: u64,
    pub subscription_seconds: u64,
}

impl Counts {
    /// Adds `other` (saturating: a counter stops at its maximum rather than wrapping to zero).
    pub fn add(&mut self, other: &Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.cost = self.cost.saturating_add(other.cost);
        self.errors = self.errors.saturating_add(other.errors);
        self.rate_limited = self.rate_limited.saturating_add(other.rate_limited);
        self.response_bytes = self.response_bytes.saturating_add(other.response_bytes);
        self.subscription_seconds = self.subscription_seconds.saturating_add(other.subscription_seconds);
    }
}

impl From<UsageRecord> for Counts {
    fn from(record: UsageRecord) -> Self {
        Self {
            requests: record.requests,
            cost: record.cost,
            errors: record.errors,
            rate_limited: record.rate_limited,
            response_bytes: record.response_bytes,
            subscription_seconds: 0,
        }
    }
}
