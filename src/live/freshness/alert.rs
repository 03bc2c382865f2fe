//! The alert webhook: one JSON POST when a source goes stale, one when it recovers.
//!
//! # Never in the way
//!
//! The monitor hands an [`Alert`](crate::live::freshness::alert::Alert) to a bounded queue
//! with `try_send` and goes on; one worker task sends them in order (a resolve never overtakes
//! its alert). A full queue drops the alert, counts it (`finql_alerts_dropped_total`) and logs
//! it: the ERROR `source_stale` log event and `/ready` say the same thing anyway.
//!
//! # Bounded and retried
//!
//! Each POST is cut off after `FINQL_ALERT_TIMEOUT_MS` (connection included). A failure that
//! may pass (no connection, a timeout, a 5xx, a 429) is retried, up to
//! [`ATTEMPTS`](crate::live::freshness::alert::ATTEMPTS) POSTs in all, waiting 250 ms, then
//! doubling up to 4 s; a 4xx is the receiver refusing the alert and is not retried. So one
//! alert holds the queue for at most about 5 timeouts plus 7.75 s. Outcomes are counted in
//! `finql_alert_deliveries_total{outcome}`.
//!
//! # One alert across replicas
//!
//! Every replica measures the same events (the lease holder publishes them to all), so every
//! replica sees the same source go stale at about the same time. Without Redis there is one
//! process and the [`Watch`](crate::live::freshness::Watch) state machine is the
//! deduplication. With Redis, an incident is a key, `{namespace}:freshness:{source}:incident`:
//!
//! - going stale, a replica `SET … NX` its new incident id: the one replica that creates the
//!   key sends the alert, the others see it exists and stay quiet;
//! - recovering, a replica takes and deletes the key in one script (GET + DEL): the one that
//!   gets the id sends the resolve (with the alert's incident id), the others find nothing.
//!
//! The key expires after a day, so an incident whose resolve was lost (every replica gone)
//! cannot silence the next one forever. When Redis does not answer, the replica sends anyway:
//! a duplicate alert is better than a missed one. Two replicas whose checks straddle a
//! recovery by a few milliseconds could still each see a separate incident; the check period
//! (a quarter of the stale threshold) bounds that window.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Recovery;
use crate::{config::FreshnessSettings, resilience::redis::RedisGuard};

/// Alerts waiting to be sent: a handful of sources each go stale and recover; more than this
/// queued means the webhook is far behind, and older news is in the logs.
const QUEUE: usize = 32;
/// POSTs per alert, the first included.
pub const ATTEMPTS: u32 = 5;
/// The first wait between attempts, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// How long an incident key outlives a lost resolve.
const INCIDENT_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// The webhook's JSON body.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Always `source_stale`.
    pub alert: &'static str,
    pub status: AlertStatus,
    /// The live source (`itick`).
    pub source: &'static str,
    /// Pairs a resolve with its alert.
    pub incident: String,
    /// The replica that sent it (`FINQL_REPLICA_ID`).
    pub replica: String,
    /// When the transition was seen.
    pub at: DateTime<Utc>,
    /// Seconds since the newest event when the transition was seen.
    pub silent_seconds: f64,
    /// `FINQL_SOURCE_STALE_SECS`.
    pub stale_after_seconds: f64,
    /// The markets streamed that were in session (region codes).
    pub markets: Vec<&'static str>,
    /// Why it resolved (resolves only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Alert {
    pub fn new(
        status: AlertStatus,
        source: &'static str,
        silent: Duration,
        stale_after: Duration,
        markets: &[&'static str],
        reason: Option<Recovery>,
    ) -> Self {
        Self {
            alert: "source_stale",
            status,
            source,
            incident: uuid::Uuid::new_v4().to_string(),
            replica: String::new(),
            at: Utc::now(),
            silent_seconds: silent.as_secs_f64(),
            stale_after_seconds: stale_after.as_secs_f64(),
            markets: markets.to_vec(),
            reason: reason.map(Recovery::as_str),
        }
    }
}

/// The monitor's side of the queue. Without a webhook it drops alerts (the log says it all).
pub struct Alerter {
    queue: Option<mpsc::Sender<Alert>>,
}

impl Alerter {
    /// Starts the sender when `FINQL_ALERT_WEBHOOK_URL` is set.
    pub fn start(
        settings: &FreshnessSettings,
        incidents: Option<Incidents>,
        replica: String,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let Some(url) = &settings.webhook else { return Ok(Self { queue: None }) };
        let client = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout)
            .build()?;
        let (queue, alerts) = mpsc::channel(QUEUE);
        let sender = Sender { client, url: url.expose().clone(), incidents, replica };
        tokio::spawn(sender.run(alerts, shutdown));
        Ok(Self { queue: Some(queue) })
    }

    /// Queues `alert` without waiting; a full queue drops it (counted and logged).
    pub fn notify(&self, alert: Alert) {
        let Some(queue) = &self.queue else { return };
        if let Err(err) = queue.try_send(alert) {
            metrics::counter!("finql_alerts_dropped_total").increment(1);
            let alert = match &err {
                mpsc::error::TrySendError::Full(alert) | mpsc::error::TrySendError::Closed(alert) => alert,
            };
            tracing::warn!(source = alert.source, status = ?alert.status, "alert queue full: alert dropped");
        }
    }
}

struct Sender {
    client: reqwest::Client,
    /// Never logged: it may hold a credential.
    url: String,
    incidents: Option<Incidents>,
    replica: String,
}

impl Sender {
    async fn run(self, mut alerts: mpsc::Receiver<Alert>, shutdown: CancellationToken) {
        loop {
            let mut alert = tokio::select! {
                alert = alerts.recv() => match alert {
                    Some(alert) => alert,
                    None => break,
                },
                () = shutdown.cancelled() => break,
            };
            alert.replica.clone_from(&self.replica);
            if !self.claim(&mut alert).await {
                tracing::debug!(source = alert.source, status = ?alert.status, "another replica sends this alert");
                continue;
            }
            tokio::select! {
                () = self.deliver(&alert) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    /// Whether this replica sends `alert` (see the module doc); a resolve takes the alert's
    /// incident id.
    async fn claim(&self, alert: &mut Alert) -> bool {
        let Some(incidents) = &self.incidents else { return true };
        match alert.status {
            AlertStatus::Firing => incidents.open(alert.source, &alert.incident).await,
            AlertStatus::Resolved => match incidents.close(alert.source).await {
                Closed::Ours(incident) => {
                    alert.incident = incident;
                    true
                }
                Closed::None => false,
                Closed::Unknown => true,
            },
        }
    }

    async fn deliver(&self, alert: &Alert) {
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let outcome = match self.client.post(&self.url).json(alert).send().await {
                Ok(response) if response.status().is_success() => {
                    metrics::counter!("finql_alert_deliveries_total", "outcome" => "sent").increment(1);
                    tracing::info!(source = alert.source, status = ?alert.status, attempt, "alert sent");
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                        metrics::counter!("finql_alert_deliveries_total", "outcome" => "refused").increment(1);
                        tracing::error!(source = alert.source, %status, "alert webhook refused the alert");
                        return;
                    }
                    format!("status {status}")
                }
                // Without the URL: it may hold a credential.
                Err(err) => err.without_url().to_string(),
            };
            tracing::warn!(source = alert.source, attempt, %outcome, "alert webhook failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
        metrics::counter!("finql_alert_deliveries_total", "outcome" => "failed").increment(1);
        tracing::error!(source = alert.source, status = ?alert.status, "alert not delivered after {ATTEMPTS} attempts");
    }
}

/// The shared incident keys in Redis (see the module doc).
#[derive(Clone)]
pub struct Incidents {
    connection: ConnectionManager,
    guard: RedisGuard,
    namespace: String,
}

/// What closing an incident found.
enum Closed {
    /// This replica took the incident: it sends the resolve.
    Ours(String),
    /// No open incident: another replica resolved it (or none alerted).
    None,
    /// Redis did not answer: send, a duplicate is better than silence.
    Unknown,
}

/// GET and DEL in one step (GETDEL needs Redis 6.2).
const TAKE: &str = "local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v";

impl Incidents {
    pub fn new(connection: ConnectionManager, guard: RedisGuard, namespace: &str) -> Self {
        Self { connection, guard, namespace: namespace.to_owned() }
    }

    fn key(&self, source: &str) -> String {
        format!("{}:freshness:{source}:incident", self.namespace)
    }

    /// Whether this replica opened the incident (or Redis did not answer).
    async fn open(&self, source: &str, incident: &str) -> bool {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("SET");
        command.arg(self.key(source)).arg(incident).arg("NX").arg("PX").arg(INCIDENT_TTL.as_millis() as u64);
        let set = command.query_async::<Option<String>>(&mut connection);
        match self.guard.run(set).await {
            Ok(created) => created.is_some(),
            Err(err) => {
                tracing::warn!(source, error = %err, "incident key not written: alerting anyway");
                true
            }
        }
    }

    async fn close(&self, source: &str) -> Closed {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("EVAL");
        command.arg(TAKE).arg(1).arg(self.key(source));
        let take = command.query_async::<Option<String>>(&mut connection);
        match self.guard.run(take).await {
            Ok(Some(incident)) => Closed::Ours(incident),
            Ok(None) => Closed::None,
            Err(err) => {
                tracing::warn!(source, error = %err, "incident key not read: resolving anyway");
                Closed::Unknown
            }
        }
    }

    /// Whether Redis answers a PING within the guard's timeout.
    pub async fn ping(&self) -> bool {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        self.guard.run(ping).await.is_ok()
    }
}
