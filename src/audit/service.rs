//! `AuditLog`: the one handle the edge, the WebSocket, the admin API, the CLI and the app's
//! shutdown use. Cheap to clone (one `Arc`).
//!
//! The same shape of problem as usage metering (record on the request path, write in batches
//! off it, flush at shutdown), with one difference: usage sums, so its memory is bounded by
//! merging counts; audit records are appended, one per operation, so memory is bounded by
//! refusing: a bounded channel, `try_send`, and a drop counted
//! (`finql_audit_dropped_total{reason}`) and logged at most once per
//! [`DROP_WARNING_EVERY`](crate::audit::service::DROP_WARNING_EVERY).
//! The request never waits for the audit.

use std::{
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_graphql::ServerError;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::DatabaseConnection;
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    AuditRecord, Event, Operation, Transport,
    shapes::ShapeCache,
    store::{AuditFilter, AuditStore, DELETE_BATCH, Position},
};
use crate::{
    config::AuditSettings,
    error::{AppError, AppResult},
    identity::Principal,
};

/// Records appended per batch at most. Rows are ~500 bytes: a batch is a few statements
/// (`append::ROWS_PER_STATEMENT`) and well under a megabyte.
const BATCH: usize = 500;

/// How long the writer waits for more records once one arrived, so that a steady trickle is
/// written in batches rather than a statement per request; the delay before a record is
/// visible to a tenant admin.
const LINGER: Duration = Duration::from_millis(100);

/// How long one batch may take before it is abandoned (and retried): the writer must not hang
/// on a database that does not answer while the channel fills.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per batch, and the pause between them: a transient failure (a failover, a locked
/// SQLite file) is worth a retry; past that the batch is dropped and counted, so that the
/// writer goes on with what arrives next.
const WRITE_ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// At most one warning per this interval about dropped records (with the running total): a
/// database outage under load would otherwise log a line per request.
pub const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// How often retention runs. Records are kept in days; an hour late is nothing.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How long the shutdown drain may take: what is in the channel is written, but a database
/// that does not answer must not hold the process forever.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AuditLog(Arc<Inner>);

struct Inner {
    sender: mpsc::Sender<AuditRecord>,
    /// Taken by the writer when it starts.
    receiver: Mutex<Option<mpsc::Receiver<AuditRecord>>>,
    store: AuditStore,
    shapes: ShapeCache,
    settings: AuditSettings,
    /// Records dropped since start (buffer full, or a batch the database did not take).
    dropped: AtomicU64,
    /// When the last warning about drops was logged.
    last_drop_warning: Mutex<Option<Instant>>,
    /// Cancelled by `close`: the writer drains the channel and stops.
    closing: CancellationToken,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    pub fn new(db: DatabaseConnection, settings: AuditSettings) -> Self {
        let (sender, receiver) = mpsc::channel(settings.buffer.max(1));
        Self(Arc::new(Inner {
            sender,
            receiver: Mutex::new(Some(receiver)),
            store: AuditStore::new(db),
            shapes: ShapeCache::new(),
            settings,
            dropped: AtomicU64::new(0),
            last_drop_warning: Mutex::new(None),
            closing: CancellationToken::new(),
            writer: tokio::sync::Mutex::new(None),
        }))
    }

    /// Hands a record to the writer without waiting: when the buffer is full the record is
    /// dropped and counted.
    pub fn record(&self, record: AuditRecord) {
        if !self.enabled() {
            return;
        }
        match self.0.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped(1, "buffer_full"),
            // After `close`: the process is stopping, nothing is written any more.
            Err(TrySendError::Closed(_)) => self.dropped(1, "closed"),
        }
    }

    /// Whether operations are audited (`FINQL_AUDIT`): when not, nothing is recorded and no
    /// operation's shape is read.
    pub fn enabled(&self) -> bool {
        self.0.settings.enabled
    }

    /// The shape of `request`'s operation (fields, symbols, hash), walked once per document
    /// without variables (`shapes`); the empty shape, nothing read, when auditing is off.
    pub fn shape(&self, request: &mut async_graphql::Request) -> Arc<Operation> {
        if !self.enabled() {
            return Arc::default();
        }
        self.0.shapes.shape(request)
    }

    /// Audits one WebSocket operation: a subscription's start is recorded now; the operation's
    /// end (its outcome, codes, bytes and duration) when the returned guard is dropped, however
    /// the operation ends.
    pub fn operation(
        &self,
        principal: &Principal,
        trace_id: Option<String>,
        operation: Arc<Operation>,
        subscription: bool,
    ) -> OperationAudit {
        let event = if subscription { Event::SubscriptionStart } else { Event::Request };
        let record = AuditRecord::new(principal, trace_id, event, Transport::WebSocket, operation);
        if subscription {
            self.record(record.clone());
        }
        OperationAudit { log: self.clone(), record, started: Instant::now() }
    }

    /// Records dropped since start.
    pub fn dropped_total(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    fn dropped(&self, count: u64, reason: &'static str) {
        let total = self.0.dropped.fetch_add(count, Ordering::Relaxed) + count;
        metrics::counter!("finql_audit_dropped_total", "reason" => reason).increment(count);
        let mut last = self.0.last_drop_warning.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= DROP_WARNING_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(reason, dropped_total = total, "audit records dropped: the audit writer is behind");
        }
    }

    /// Starts the writer and the retention task. Retention stops at `shutdown`; the writer at
    /// [`AuditLog::close`], after requests in flight have finished.
    pub fn spawn(&self, shutdown: CancellationToken) {
        if !self.enabled() {
            return;
        }
        if let Some(receiver) = self.receiver().take() {
            let audit = self.clone();
            let writer = tokio::spawn(async move { audit.run_writer(receiver).await });
            if let Ok(mut slot) = self.0.writer.try_lock() {
                *slot = Some(writer);
            }
        }
        let audit = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                match audit.purge(Utc::now()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "audit records past retention deleted"),
                    Err(err) => {
                        let err = async_graphql::Error::from(err);
                        tracing::warn!(error = %err.message, "audit retention failed; retrying at the next run");
                    }
                }
            }
        });
    }

    fn receiver(&self) -> MutexGuard<'_, Option<mpsc::Receiver<AuditRecord>>> {
        self.0.receiver.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn run_writer(&self, mut receiver: mpsc::Receiver<AuditRecord>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = receiver.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break;
                    }
                }
                () = self.0.closing.cancelled() => break,
            }
            if batch.len() < BATCH {
                // Linger for more, so that a trickle goes in batches: one timer, then what
                // arrived meanwhile, taken without waiting. (Waiting on the channel instead
                // woke this task once per record, thousands of times a second under load.)
                tokio::select! {
                    () = tokio::time::sleep(LINGER) => {}
                    () = self.0.closing.cancelled() => {}
                }
                while batch.len() < BATCH
                    && let Ok(record) = receiver.try_recv()
                {
                    batch.push(record);
                }
            }
            self.write(std::mem::take(&mut batch)).await;
        }
        // Closing: what the channel holds is written, then nothing more is accepted.
        receiver.close();
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    /// Writes one batch (and logs it as JSON when asked), retrying a few times; a batch the
    /// database would not take is dropped and counted.
    async fn write(&self, batch: Vec<AuditRecord>) {
        if batch.is_empty() {
            return;
        }
        // Ids here, once: a retried batch writes the same rows (the insert skips known ids).
        let rows: Vec<(Uuid, AuditRecord)> = batch.into_iter().map(|record| (Uuid::now_v7(), record)).collect();
        if self.0.settings.json_log {
            log_json(&rows);
        }
        for attempt in 1..=WRITE_ATTEMPTS {
            let failure = match tokio::time::timeout(WRITE_TIMEOUT, self.0.store.append(&rows)).await {
                Ok(Ok(())) => return,
                Ok(Err(err)) => async_graphql::Error::from(err).message,
                Err(_) => format!("no answer within {WRITE_TIMEOUT:?}"),
            };
            if attempt < WRITE_ATTEMPTS {
                tracing::warn!(error = %failure, attempt, records = rows.len(), "writing audit records failed; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            } else {
                tracing::error!(error = %failure, records = rows.len(), "audit records lost: the database did not take them");
            }
        }
        self.dropped(u64::try_from(rows.len()).unwrap_or(u64::MAX), "write_failed");
    }

    /// The shutdown drain: writes what the channel holds and stops the writer. Call after
    /// requests in flight have finished; records handed over later are dropped.
    pub async fn close(&self) {
        self.0.closing.cancel();
        let writer = self.0.writer.lock().await.take();
        if let Some(writer) = writer
            && tokio::time::timeout(CLOSE_TIMEOUT, writer).await.is_err()
        {
            tracing::error!("audit records lost at shutdown: the database did not take them in time");
        }
    }

    /// Deletes the records older than the retention (`FINQL_AUDIT_RETENTION_DAYS` before
    /// `now`), in batches; how many.
    pub async fn purge(&self, now: DateTime<Utc>) -> AppResult<u64> {
        let days = i64::from(self.0.settings.retention_days);
        let before = now - TimeDelta::days(days);
        let mut deleted = 0;
        loop {
            let batch =
                tokio::time::timeout(WRITE_TIMEOUT, self.0.store.delete_older_than(before)).await.map_err(|_| {
                    AppError::internal(anyhow::anyhow!("audit retention: no answer within {WRITE_TIMEOUT:?}"))
                })??;
            deleted += batch;
            if batch < DELETE_BATCH {
                return Ok(deleted);
            }
        }
    }

    /// A page of `tenant`'s records, newest first (one more than `limit` when there is more).
    pub async fn page(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        after: Option<Position>,
        limit: u64,
    ) -> AppResult<Vec<entity::audit_log::Model>> {
        self.0.store.page(tenant, filter, after, limit).await
    }

    /// Every record of `tenant` matching `filter`, oldest first, streamed to `each`.
    pub async fn each(
        &self,
        tenant: Uuid,
        filter: &AuditFilter,
        each: impl FnMut(entity::audit_log::Model) -> AppResult<()>,
    ) -> AppResult<()> {
        self.0.store.each(tenant, filter, each).await
    }
}

/// `FINQL_AUDIT_LOG=json`: each record as one JSON line on stdout, where the logs go, with the
/// fields of a JSON log line (`timestamp`, `level`, `target`: `finql::audit`) beside the
/// record's own at the top level, so a log pipeline routes it by target and indexes its fields
/// (the record is not a string inside a `message`). Written directly rather than through
/// `tracing`, whose events carry strings, not objects; one write per batch.
fn log_json(rows: &[(Uuid, AuditRecord)]) {
    use std::io::Write as _;
    let timestamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut lines = String::new();
    for (id, record) in rows {
        let mut line = record.to_json(*id);
        if let Some(fields) = line.as_object_mut() {
            fields.insert("timestamp".into(), timestamp.clone().into());
            fields.insert("level".into(), "INFO".into());
            fields.insert("target".into(), "finql::audit".into());
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    // A closed stdout loses the log lines, not the records (they go to the database).
    let _ = std::io::stdout().lock().write_all(lines.as_bytes());
}

/// One WebSocket operation's record, completed as its messages go out and handed over when it
/// is dropped (the operation ended: completed, stopped, its connection closed).
pub struct OperationAudit {
    log: AuditLog,
    record: AuditRecord,
    started: Instant,
}

impl OperationAudit {
    /// A message of `bytes` went to the client, carrying `errors` (codes assigned).
    pub fn sent(&mut self, bytes: usize, errors: &[ServerError]) {
        self.record.response_bytes =
            self.record.response_bytes.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.record.errors(errors);
    }
}

impl Drop for OperationAudit {
    fn drop(&mut self) {
        let mut record = self.record.clone();
        if record.event == Event::SubscriptionStart {
            record.event = Event::SubscriptionEnd;
        }
        record.duration = self.started.elapsed();
        self.log.record(record);
    }
}
