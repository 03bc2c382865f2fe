//! The in-memory counts, one entry per (tenant, UTC hour, actor), added to on the request path
//! and drained by each flush.
//!
//! Memory is bounded by entries rather than by time: a flood of distinct actors (thousands of
//! keys in one hour) must not grow the process without limit between two flushes. Past
//! [`Meter::capacity`](crate::usage::meter::Meter::capacity) entries, a new actor's counts go to its tenant's `overflow` actor for
//! that hour: the tenant's totals stay exact, only the split by actor coarsens (and the
//! service flushes early long before that, see `service::EARLY_FLUSH`). Overflow rows are at
//! most one per tenant and hour, so the bound is `capacity` plus the tenants active in the
//! interval.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Counts;

/// The actor a tenant's counts are filed under once the meter is full.
pub const OVERFLOW_ACTOR: &str = "overflow";

/// One row of usage: whose, which hour, which actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub tenant: Uuid,
    /// The start of the UTC hour.
    pub hour: DateTime<Utc>,
    /// `user:<id>`, `key:<prefix>` (`identity::Principal::actor`) or [`OVERFLOW_ACTOR`].
    pub actor: Arc<str>,
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    hour_of_second(at.timestamp())
}

/// The start of the UTC hour of a Unix time in seconds.
pub fn hour_of_second(second: i64) -> DateTime<Utc> {
    // The epoch is an hour boundary and UTC has no leap seconds in Unix time: flooring to a
    // multiple of 3600 is exactly the hour. `from_timestamp` fails only out of chrono's range
    // (years past 262,000), where the epoch is as good an answer as any.
    DateTime::from_timestamp(second.div_euclid(3600) * 3600, 0).unwrap_or_default()
}

/// Counts in memory, shared by every request of the process.
#[derive(Debug)]
pub struct Meter {
    rows: Mutex<HashMap<RowKey, Counts>>,
    capacity: usize,
}

impl Meter {
    pub fn new(capacity: usize) -> Self {
        Self { rows: Mutex::new(HashMap::new()), capacity }
    }

    /// Entries (actors) kept before new ones go to their tenant's overflow row.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds `counts` to `key`'s entry; returns the number of entries now held.
    pub fn add(&self, mut key: RowKey, counts: &Counts) -> usize {
        let mut rows = self.lock();
        if rows.len() >= self.capacity && !rows.contains_key(&key) {
            key.actor = Arc::from(OVERFLOW_ACTOR);
        }
        rows.entry(key).or_default().add(counts);
        rows.len()
    }

    /// Takes every entry out (for a flush), leaving the meter empty.
    pub fn take(&self) -> HashMap<RowKey, Counts> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back entries a flush could not write, adding them to whatever was counted since.
    pub fn restore(&self, taken: HashMap<RowKey, Counts>) {
        for (key, counts) in taken {
            self.add(key, &counts);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RowKey, Counts>> {
        // Every critical section is a few additions that cannot panic half-way; a poisoned lock
        // (a panic elsewhere while held) still guards consistent counts.
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: Uuid, actor: &str) -> RowKey {
        RowKey { tenant, hour: hour_of_second(7200), actor: Arc::from(actor) }
    }

    fn requests(n: u64) -> Counts {
        Counts { requests: n, ..Counts::default() }
    }

    #[test]
    fn hours_are_floored_in_utc() {
        assert_eq!(hour_of_second(3599).timestamp(), 0);
        assert_eq!(hour_of_second(3600).timestamp(), 3600);
        assert_eq!(hour_of_second(-1).timestamp(), -3600);
        let at = DateTime::parse_from_rfc3339("2026-12-01T05:59:59.999+02:00").unwrap().with_timezone(&Utc);
        assert_eq!(hour_of(at).to_rfc3339(), "2026-12-01T03:00:00+00:00");
    }

    #[test]
    fn counts_add_up_per_row() {
        let meter = Meter::new(10);
        let tenant = Uuid::new_v4();
        meter.add(key(tenant, "key:a"), &requests(2));
        meter.add(key(tenant, "key:a"), &requests(3));
        meter.add(key(tenant, "key:b"), &requests(1));
        let rows = meter.take();
        assert_eq!(rows[&key(tenant, "key:a")].requests, 5);
        assert_eq!(rows[&key(tenant, "key:b")].requests, 1);
        assert!(meter.is_empty());
    }

    #[test]
    fn a_full_meter_files_new_actors_under_overflow_and_keeps_every_count() {
        let meter = Meter::new(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        meter.add(key(a, "key:1"), &requests(1));
        meter.add(key(a, "key:2"), &requests(1));
        // Full: known rows still add; new actors go to their tenant's overflow row.
        meter.add(key(a, "key:1"), &requests(1));
        for actor in ["key:3", "key:4", "key:5"] {
            meter.add(key(a, actor), &requests(1));
            meter.add(key(b, actor), &requests(10));
        }
        assert_eq!(meter.len(), 4, "bounded: capacity plus one overflow row per tenant and hour");
        let rows = meter.take();
        assert_eq!(rows[&key(a, "key:1")].requests, 2);
        assert_eq!(rows[&key(a, OVERFLOW_ACTOR)].requests, 3);
        assert_eq!(rows[&key(b, OVERFLOW_ACTOR)].requests, 30);
        let total: u64 = rows.values().map(|c| c.requests).sum();
        assert_eq!(total, 2 + 1 + 3 + 30, "no count is lost");
    }

    #[test]
    fn restored_rows_add_to_what_was_counted_since() {
        let meter = Meter::new(10);
        let tenant = Uuid::new_v4();
        meter.add(key(tenant, "key:a"), &requests(4));
        let taken = meter.take();
        meter.add(key(tenant, "key:a"), &requests(1));
        meter.restore(taken);
        assert_eq!(meter.take()[&key(tenant, "key:a")].requests, 5);
    }
}
