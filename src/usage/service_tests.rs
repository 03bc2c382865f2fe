//! `UsageService` against a real (SQLite) database, with the clock in the test's hands.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, TimeDelta, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{Database, DatabaseConnection};

use super::*;
use crate::identity::{Credentials, KeyGrant, Principal, Scopes, TenantRef};

/// A clock the test moves, in milliseconds since the epoch.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn at(time: &str) -> Self {
        Self(Arc::new(AtomicI64::new(at(time).timestamp_millis())))
    }
    fn advance(&self, by: TimeDelta) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
    fn clock(&self) -> Clock {
        let millis = self.0.clone();
        Arc::new(move || DateTime::from_timestamp_millis(millis.load(Ordering::SeqCst)).unwrap())
    }
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time).unwrap().with_timezone(&Utc)
}

async fn database(dir: &tempfile::TempDir, migrated: bool) -> DatabaseConnection {
    let db = Database::connect(format!("sqlite://{}/usage.db?mode=rwc", dir.path().display())).await.unwrap();
    if migrated {
        Migrator::up(&db, None).await.unwrap();
    }
    db
}

fn key_principal(tenant: Uuid, prefix: &str) -> Principal {
    Principal {
        credentials: Credentials::ApiKey(KeyGrant {
            id: Uuid::new_v4(),
            prefix: prefix.into(),
            scopes: Scopes::ALL,
            rate: None,
        }),
        tenant: Some(TenantRef { id: tenant, slug: Arc::from("t") }),
        role: None,
        plan: None,
    }
}

fn requests(n: u64) -> UsageRecord {
    UsageRecord { requests: n, response_bytes: 10 * n, ..UsageRecord::default() }
}

async fn hourly(usage: &UsageService, tenant: Uuid) -> Vec<(String, String, u64, u64, u64)> {
    usage
        .report(tenant, at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"), Granularity::Hour)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            let c = p.counts;
            (p.start.format("%H:%M").to_string(), p.actor, c.requests, c.response_bytes, c.subscription_seconds)
        })
        .collect()
}

#[tokio::test]
async fn subscription_time_is_credited_while_open_and_split_at_hours() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at("2026-12-01T10:59:30.400Z");
    let usage = UsageService::with_clock(database(&dir, true).await, Duration::from_secs(60), 100, clock.clock());
    let tenant = Uuid::new_v4();
    let subscription = usage.subscription(&key_principal(tenant, "live")).unwrap();
    assert_eq!(usage.open_subscriptions(), 1);
    clock.advance(TimeDelta::milliseconds(75_000));
    // A flush credits the open subscription up to now: 30 s before 11:00, 45 s after.
    usage.flush().await.unwrap();
    assert_eq!(
        hourly(&usage, tenant).await,
        [("10:00".into(), "key:live".into(), 0, 0, 30), ("11:00".into(), "key:live".into(), 0, 0, 45)]
    );
    clock.advance(TimeDelta::milliseconds(15_300));
    drop(subscription);
    assert_eq!(usage.open_subscriptions(), 0);
    usage.flush().await.unwrap();
    // 10:59:30 to 11:00:60 on whole seconds: 90 s in all, never a second twice.
    assert_eq!(
        hourly(&usage, tenant).await,
        [("10:00".into(), "key:live".into(), 0, 0, 30), ("11:00".into(), "key:live".into(), 0, 0, 60)]
    );
}

#[tokio::test]
async fn requests_are_filed_by_hour_and_actor_and_anonymous_is_not_metered() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at("2026-12-01T08:15:00Z");
    let usage = UsageService::with_clock(database(&dir, true).await, Duration::from_secs(60), 100, clock.clock());
    let tenant = Uuid::new_v4();
    usage.record(&key_principal(tenant, "a"), requests(2));
    usage.record(&key_principal(tenant, "b"), requests(1));
    usage.record(&Principal::without_tenant(Credentials::Anonymous, None), requests(100));
    clock.advance(TimeDelta::hours(1));
    usage.record(&key_principal(tenant, "a"), requests(3));
    // Another tenant's usage never shows in this one's report.
    usage.record(&key_principal(Uuid::new_v4(), "a"), requests(7));
    assert_eq!(usage.pending(), 4);
    usage.flush().await.unwrap();
    assert_eq!(usage.pending(), 0);
    assert_eq!(
        hourly(&usage, tenant).await,
        [
            ("08:00".into(), "key:a".into(), 2, 20, 0),
            ("08:00".into(), "key:b".into(), 1, 10, 0),
            ("09:00".into(), "key:a".into(), 3, 30, 0)
        ]
    );
}

#[tokio::test]
async fn flushes_add_so_replicas_sum() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at("2026-12-01T08:15:00Z");
    let db = database(&dir, true).await;
    let replicas: Vec<UsageService> =
        (0..3).map(|_| UsageService::with_clock(db.clone(), Duration::from_secs(60), 100, clock.clock())).collect();
    let tenant = Uuid::new_v4();
    for round in 0..4u64 {
        for (n, replica) in replicas.iter().enumerate() {
            replica.record(&key_principal(tenant, "a"), requests(n as u64 + round));
        }
        // Concurrent writes of the same row: each adds its share.
        let flushed = futures::future::join_all(replicas.iter().map(UsageService::flush)).await;
        assert!(flushed.iter().all(Result::is_ok), "{flushed:?}");
    }
    // Rounds 0..4, replicas 0..3: sum of (n + round) = 4 * (0+1+2) + 3 * (0+1+2+3) = 30.
    assert_eq!(hourly(&usage_of(&replicas), tenant).await, [("08:00".into(), "key:a".into(), 30, 300, 0)]);
}

fn usage_of(replicas: &[UsageService]) -> UsageService {
    replicas[0].clone()
}

#[tokio::test]
async fn a_failed_flush_keeps_its_rows_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at("2026-12-01T08:15:00Z");
    // No table yet: the write fails.
    let db = database(&dir, false).await;
    let usage = UsageService::with_clock(db.clone(), Duration::from_secs(60), 100, clock.clock());
    let tenant = Uuid::new_v4();
    usage.record(&key_principal(tenant, "a"), requests(2));
    assert!(usage.flush().await.is_err());
    assert_eq!(usage.pending(), 1, "the rows are back in memory");
    usage.record(&key_principal(tenant, "a"), requests(1));
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(usage.flush().await.unwrap(), 1);
    assert_eq!(hourly(&usage, tenant).await, [("08:00".into(), "key:a".into(), 3, 30, 0)]);
}

#[tokio::test]
async fn filling_memory_flushes_before_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let usage = UsageService::with_clock(
        database(&dir, true).await,
        // A tick that never comes within the test.
        Duration::from_secs(3600),
        4,
        Arc::new(Utc::now),
    );
    let shutdown = CancellationToken::new();
    let flusher = usage.spawn_flusher(shutdown.clone());
    let tenant = Uuid::new_v4();
    usage.record(&key_principal(tenant, "a"), requests(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(usage.pending(), 1, "below half the capacity: no early flush");
    usage.record(&key_principal(tenant, "b"), requests(1));
    let flushed = tokio::time::timeout(Duration::from_secs(10), async {
        while usage.pending() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(flushed.is_ok(), "half the capacity reached: the flusher runs at once");
    shutdown.cancel();
    flusher.await.unwrap();
}

#[tokio::test]
async fn an_operation_counts_once_however_many_messages_it_sends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at("2026-12-01T08:15:00Z");
    let usage = UsageService::with_clock(database(&dir, true).await, Duration::from_secs(60), 100, clock.clock());
    let tenant = Uuid::new_v4();
    let principal = key_principal(tenant, "ws");
    let mut operation = usage.operation(&principal, true).unwrap();
    operation.sent(100, false, false);
    operation.sent(50, true, false);
    operation.sent(25, true, true);
    clock.advance(TimeDelta::seconds(3));
    drop(operation);
    assert!(usage.operation(&Principal::without_tenant(Credentials::Anonymous, None), true).is_none());
    usage.flush().await.unwrap();
    let rows = usage.report(tenant, at("2026-12-01T08:00:00Z"), at("2026-12-01T09:00:00Z"), Granularity::Hour).await;
    let counts = rows.unwrap()[0].counts;
    assert_eq!(
        counts,
        Counts { requests: 1, cost: 0, errors: 1, rate_limited: 1, response_bytes: 175, subscription_seconds: 3 }
    );
}
