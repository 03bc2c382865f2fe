//! `UsageService`: the one handle the edge, the WebSocket, the reports and the app's shutdown
//! use. Cheap to clone (one `Arc`).
//!
//! Subscription time is accounted while it runs, not only when the subscription ends: each
//! flush credits every open subscription with the whole seconds elapsed since its last credit,
//! split at UTC hour boundaries, so a day-long subscription shows up hour by hour and a replica
//! that dies loses at most one flush interval of it. The [`SubscriptionMeter`] credits the rest
//! when the operation ends (completed, cancelled or its connection closed: it is dropped with
//! the operation's task). Seconds are counted on whole-second boundaries of the wall clock
//! (a subscription from 10:00:00.9 to 10:00:02.1 counts 2): the total is within a second of the
//! true duration, and never counts a second twice.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Counts, UsageRecord,
    meter::{Meter, RowKey, hour_of_second},
    report::{Aggregate, Granularity, Range, UsagePeriod},
    store::UsageStore,
};
use crate::{
    error::{AppError, AppResult},
    identity::Principal,
};

/// Entries (tenant, hour, actor) held in memory at most, before new actors are filed under
/// their tenant's overflow row (see `meter`). An entry is about 150 bytes with the map's
/// overhead: 100,000 is ~15 MB, far above what one flush interval of a busy replica holds
/// (an entry per active key or user per hour).
pub const CAPACITY: usize = 100_000;

/// Entries at which the flusher runs at once rather than at its next tick: half the capacity,
/// so that the overflow row is a last resort and not the normal path of a burst.
pub const EARLY_FLUSH: usize = CAPACITY / 2;

/// How long one flush may take before it is abandoned and its rows put back for the next: the
/// write runs off the request path, but it must not hold the flusher (and the rows) forever
/// when the database hangs. Well above a healthy batch (milliseconds), below any orchestrator's
/// patience for a shutdown.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts of the last flush at shutdown (a transient failure is worth a retry; there is no
/// later flush to leave the rows to), and the pause between them.
const CLOSE_ATTEMPTS: u32 = 3;
const CLOSE_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The wall clock (UTC). Injected so tests can move time (hours, subscription seconds).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct UsageService(Arc<Inner>);

struct Inner {
    meter: Meter,
    store: UsageStore,
    clock: Clock,
    /// `FINQL_USAGE_FLUSH_SECS`.
    interval: Duration,
    /// Open subscriptions by registration number.
    live: Mutex<HashMap<u64, LiveSubscription>>,
    next_live: AtomicU64,
    /// One flush at a time (the periodic one, an early one, the shutdown one).
    flushing: tokio::sync::Mutex<()>,
    /// Wakes the flusher before its tick when memory fills.
    early: Notify,
}

/// An open subscription's account: whose, and up to which second it has been credited.
struct LiveSubscription {
    tenant: Uuid,
    actor: Arc<str>,
    /// Unix second up to which its time is counted.
    credited_to: i64,
}

impl LiveSubscription {
    /// Credits the whole seconds up to `now` (Unix seconds), one part per UTC hour crossed.
    fn accrue(&mut self, now: i64, out: &mut Vec<(RowKey, Counts)>) {
        while self.credited_to < now {
            let hour = hour_of_second(self.credited_to);
            let upto = now.min(hour.timestamp() + 3600);
            let seconds = u64::try_from(upto - self.credited_to).unwrap_or(0);
            out.push((
                RowKey { tenant: self.tenant, hour, actor: self.actor.clone() },
                Counts { subscription_seconds: seconds, ..Counts::default() },
            ));
            self.credited_to = upto;
        }
    }
}

impl UsageService {
    /// A service writing to `db` every `interval`, on the real clock.
    pub fn new(db: DatabaseConnection, interval: Duration) -> Self {
        Self::with_clock(db, interval, CAPACITY, Arc::new(Utc::now))
    }

    /// Like [`UsageService::new`], with the memory bound and the clock given (tests).
    pub fn with_clock(db: DatabaseConnection, interval: Duration, capacity: usize, clock: Clock) -> Self {
        Self(Arc::new(Inner {
            meter: Meter::new(capacity),
            store: UsageStore::new(db),
            clock,
            interval,
            live: Mutex::new(HashMap::new()),
            next_live: AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
            early: Notify::new(),
        }))
    }

    /// Counts what a caller used. Callers without a tenant (anonymous, refused credentials)
    /// are not metered: there is nobody to bill.
    pub fn record(&self, principal: &Principal, record: UsageRecord) {
        if let Some(tenant) = &principal.tenant {
            self.add(tenant.id, Arc::from(principal.actor()), &record.into());
        }
    }

    /// Counts `counts` for `actor` of `tenant` in the current hour.
    pub fn record_for(&self, tenant: Uuid, actor: &str, counts: Counts) {
        self.add(tenant, Arc::from(actor), &counts);
    }

    fn add(&self, tenant: Uuid, actor: Arc<str>, counts: &Counts) {
        let hour = hour_of_second((self.0.clock)().timestamp());
        self.add_row(RowKey { tenant, hour, actor }, counts);
    }

    fn add_row(&self, key: RowKey, counts: &Counts) {
        if self.0.meter.add(key, counts) >= EARLY_FLUSH.min(self.0.meter.capacity() / 2).max(1) {
            // A stored permit: a flush already running is followed by another.
            self.0.early.notify_one();
        }
    }

    /// Starts accounting a subscription's time, until the returned meter is dropped. `None`
    /// for a caller without a tenant.
    pub fn subscription(&self, principal: &Principal) -> Option<SubscriptionMeter> {
        let tenant = principal.tenant.as_ref()?;
        let id = self.0.next_live.fetch_add(1, Ordering::Relaxed);
        let account = LiveSubscription {
            tenant: tenant.id,
            actor: Arc::from(principal.actor()),
            credited_to: (self.0.clock)().timestamp(),
        };
        self.live().insert(id, account);
        Some(SubscriptionMeter { usage: self.clone(), id })
    }

    /// Meters one WebSocket operation: a request, with the bytes and errors it sends, counted
    /// when it ends (however it ends: the meter is dropped with the operation); a subscription
    /// also accounts its time. `None` for a caller without a tenant.
    pub fn operation(&self, principal: &Principal, subscription: bool) -> Option<OperationMeter> {
        let tenant = principal.tenant.as_ref()?.id;
        let subscription = if subscription { self.subscription(principal) } else { None };
        Some(OperationMeter {
            usage: self.clone(),
            tenant,
            actor: Arc::from(principal.actor()),
            record: UsageRecord { requests: 1, ..UsageRecord::default() },
            _subscription: subscription,
        })
    }

    /// Subscriptions being accounted now.
    pub fn open_subscriptions(&self) -> usize {
        self.live().len()
    }

    fn end_subscription(&self, id: u64) {
        let now = (self.0.clock)().timestamp();
        let mut credits = Vec::new();
        if let Some(mut account) = self.live().remove(&id) {
            account.accrue(now, &mut credits);
        }
        for (key, counts) in credits {
            self.add_row(key, &counts);
        }
    }

    /// Credits every open subscription up to now.
    fn accrue_open(&self) {
        let now = (self.0.clock)().timestamp();
        let mut credits = Vec::new();
        for account in self.live().values_mut() {
            account.accrue(now, &mut credits);
        }
        for (key, counts) in credits {
            self.add_row(key, &counts);
        }
    }

    fn live(&self) -> MutexGuard<'_, HashMap<u64, LiveSubscription>> {
        // Critical sections are arithmetic that cannot panic half-way: a poisoned lock still
        // guards consistent accounts.
        self.0.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries counted in memory and not yet written.
    pub fn pending(&self) -> usize {
        self.0.meter.len()
    }

    /// Writes what was counted (open subscriptions credited up to now) in one transaction;
    /// the number of rows written. On failure, or past `WRITE_TIMEOUT`, the rows go back to
    /// memory for the next flush.
    pub async fn flush(&self) -> AppResult<usize> {
        let _one_at_a_time = self.0.flushing.lock().await;
        self.accrue_open();
        let rows = self.0.meter.take();
        if rows.is_empty() {
            return Ok(0);
        }
        let written = rows.len();
        let outcome = match tokio::time::timeout(WRITE_TIMEOUT, self.0.store.add(&rows)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AppError::internal(anyhow::anyhow!(
                "writing usage took longer than {WRITE_TIMEOUT:?}; the rows are kept for the next flush"
            ))),
        };
        match outcome {
            Ok(()) => Ok(written),
            Err(err) => {
                // Dropping the timed-out write dropped its transaction: nothing of it committed,
                // so putting the rows back counts nothing twice.
                self.0.meter.restore(rows);
                Err(err)
            }
        }
    }

    /// Runs the flusher until `shutdown`: every `FINQL_USAGE_FLUSH_SECS`, and at once when
    /// memory fills. The last flush is [`UsageService::close`]'s, after requests in flight
    /// have finished.
    pub fn spawn_flusher(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let usage = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(usage.0.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: nothing to write yet.
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = usage.0.early.notified() => {}
                    () = shutdown.cancelled() => break,
                }
                if let Err(err) = usage.flush().await {
                    let err = async_graphql::Error::from(err);
                    tracing::warn!(error = %err.message, pending = usage.pending(), "usage flush failed; retrying at the next");
                }
            }
        })
    }

    /// The shutdown flush: credits open subscriptions and writes everything, retrying a
    /// failure a few times (there is no later flush). Call after requests in flight finished.
    pub async fn close(&self) {
        for attempt in 1..=CLOSE_ATTEMPTS {
            match self.flush().await {
                Ok(rows) => {
                    tracing::info!(rows, "usage flushed");
                    return;
                }
                Err(err) if attempt < CLOSE_ATTEMPTS => {
                    let err = async_graphql::Error::from(err);
                    tracing::warn!(error = %err.message, attempt, "usage flush at shutdown failed; retrying");
                    tokio::time::sleep(CLOSE_RETRY_PAUSE).await;
                }
                Err(err) => {
                    let err = async_graphql::Error::from(err);
                    tracing::error!(error = %err.message, rows = self.pending(), "usage lost at shutdown: the database did not take it");
                }
            }
        }
    }

    /// `tenant`'s usage in `[from, to)` (widened to whole periods), per actor and period.
    pub async fn report(
        &self,
        tenant: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> AppResult<Vec<UsagePeriod>> {
        let range = Range::new(from, to, granularity)?;
        let mut aggregate = Aggregate::default();
        self.0.store.each_row(tenant, range.from, range.to, |row| aggregate.add(granularity, row)).await?;
        Ok(aggregate.rows())
    }
}

/// Accounts one subscription's time while it lives; dropping it (the operation ended, however)
/// credits the rest.
pub struct SubscriptionMeter {
    usage: UsageService,
    id: u64,
}

impl Drop for SubscriptionMeter {
    fn drop(&mut self) {
        self.usage.end_subscription(self.id);
    }
}

/// What one WebSocket operation used, recorded when it is dropped (the operation ended).
pub struct OperationMeter {
    usage: UsageService,
    tenant: Uuid,
    actor: Arc<str>,
    record: UsageRecord,
    _subscription: Option<SubscriptionMeter>,
}

impl OperationMeter {
    /// A message of `bytes` went to the client; `error`: it carried errors; `rate_limited`:
    /// one of them was `RATE_LIMITED`. The operation counts one error at most, however many
    /// of its messages carried some.
    pub fn sent(&mut self, bytes: usize, error: bool, rate_limited: bool) {
        let record = &mut self.record;
        record.response_bytes = record.response_bytes.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        record.errors = record.errors.max(u64::from(error));
        record.rate_limited = record.rate_limited.max(u64::from(rate_limited));
    }

    /// Cost units the plan limiter charged for the operation.
    pub fn charged(&mut self, cost: u64) {
        self.record.cost = self.record.cost.saturating_add(cost);
    }
}

impl Drop for OperationMeter {
    fn drop(&mut self) {
        self.usage.add(self.tenant, self.actor.clone(), &self.record.into());
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
