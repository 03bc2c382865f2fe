//! The data freshness alarm: a live source that falls silent while its markets trade is noticed
//! within seconds, logged once, shown on `/ready`, and alerted once (and resolved once).
//!
//! # What "stale" means
//!
//! A quiet stream is not always a broken one: outside trading hours, or with nobody subscribed,
//! nothing is expected. So a source is *expected* to push while at least one instrument it is
//! streaming (a topic wanted upstream, `LiveHub::markets`) belongs to a market in its regular
//! session (`market::calendar`; pre- and post-market do not count: many instruments do not
//! trade then). While expected, a source from which no event has arrived for
//! `FINQL_SOURCE_STALE_SECS` (default 3) is stale. Silence is counted from the newest event or
//! from when the source became expected, whichever is later: a market that opens, or a first
//! subscriber, gives the source the full period to deliver rather than alarming at once on the
//! overnight gap.
//!
//! Measured at the hub, like the hub's own `stale` quotes, because every event of every feed
//! passes there: a dead socket, a silent upstream, a lost lease holder or a cut Redis all look
//! the same, and with replicas every replica measures the same pub/sub stream.
//!
//! # One alert, one resolve
//!
//! [`Watch`](crate::live::freshness::Watch) is the per-source state machine (pure: tested with
//! explicit instants): it reports the transition to stale once and the recovery once (an event
//! arrived, or nothing is expected any more: the session closed or the last subscriber left).
//! Each transition logs one event (ERROR `source_stale`, INFO `source_recovered`) and queues
//! one webhook call (`alert`); across replicas, Redis decides which replica sends it (see
//! `alert`).
//!
//! # What it reports
//!
//! [`Freshness::sources`](crate::live::Freshness::sources) is the newest report per source,
//! read by `/ready` (which stays 200 whatever it says: a stale source must not take a replica
//! out of rotation, the other replicas see the same silence). The gauges
//! `finql_source_last_event_age_seconds{source}` (now minus the arrival of the newest event;
//! from start while none has arrived) and `finql_source_lag_seconds{source}` (the newest
//! event's upstream time to its arrival) are set at every check, through the `metrics` facade,
//! off the event path, with `finql_source_in_session{source}` (1 while one of the source's
//! markets trades, when silence means trouble), so that Prometheus' backstop rule pages only
//! when finql's own alarm would.

/// The alert webhook: a bounded queue, retries, and deduplication across replicas.
pub mod alert;

#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use self::alert::{Alert, AlertStatus, Alerter, Incidents};
use super::LiveHub;
use crate::{
    config::Config,
    market::calendar::{self, MarketState, Region},
    resilience::redis::RedisGuard,
};

/// How a source stands, as `/ready` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// Delivering, or nothing is expected of it now.
    Ok,
    /// Expected to push and silent past the threshold.
    Stale,
    /// Refusing requests: its circuit breaker is open (decided by `/ready` from the market
    /// service's breakers, not here).
    Down,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Stale => "stale",
            Self::Down => "down",
        }
    }
}

/// One live source at the last check.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceReport {
    /// The stream's name (`itick`, `simulated`).
    pub source: &'static str,
    /// `Ok` or `Stale` (never `Down`: see [`SourceState::Down`]).
    pub state: SourceState,
    /// Now minus the arrival of the newest event (since start while none has arrived).
    pub last_event_age: Duration,
    /// The newest event's lag: its upstream time to its arrival.
    pub lag: Duration,
    /// The markets of the instruments streamed that are in session now.
    pub in_session: Vec<Region>,
}

/// What a [`Watch`] step reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The source just went stale, silent for `silent`.
    Stale { silent: Duration },
    /// The source is no longer stale, after `after` stale.
    Recovered { after: Duration, reason: Recovery },
}

/// Why a stale source stopped being stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Events arrive again.
    Events,
    /// Nothing is expected any more: no market streamed is in session, or nothing is streamed.
    NotExpected,
}

impl Recovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events resumed",
            Self::NotExpected => "no market streamed is in session",
        }
    }
}

/// The stale/recovered state machine of one source.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    /// Since when the source has been expected to push (`None`: not expected now).
    expecting_since: Option<Instant>,
    /// Since when it has been stale.
    stale_since: Option<Instant>,
}

impl Watch {
    /// One check at `now`: `last_event` is the arrival of the newest event, `expected` whether
    /// a market streamed is in session. Reports each change of state once.
    pub fn step(
        &mut self,
        now: Instant,
        last_event: Option<Instant>,
        expected: bool,
        stale_after: Duration,
    ) -> Option<Transition> {
        if !expected {
            self.expecting_since = None;
            return self
                .stale_since
                .take()
                .map(|since| Transition::Recovered { after: now - since, reason: Recovery::NotExpected });
        }
        let since = *self.expecting_since.get_or_insert(now);
        let heard = last_event.map_or(since, |at| at.max(since));
        let silent = now.saturating_duration_since(heard);
        match self.stale_since {
            None if silent >= stale_after => {
                self.stale_since = Some(now);
                Some(Transition::Stale { silent })
            }
            // Silence only shrinks when an event arrives.
            Some(stale) if silent < stale_after => {
                self.stale_since = None;
                Some(Transition::Recovered { after: now - stale, reason: Recovery::Events })
            }
            _ => None,
        }
    }

    pub fn is_stale(&self) -> bool {
        self.stale_since.is_some()
    }
}

/// The freshness alarm of this process. Cheap to clone.
#[derive(Clone)]
pub struct Freshness {
    inner: Arc<Inner>,
}

struct Inner {
    /// The newest report of each live source.
    reports: Mutex<Vec<SourceReport>>,
    /// The shared incident keys (with Redis): also how `/ready` sees Redis.
    incidents: Option<Incidents>,
}

/// How often sources are checked: four times per stale period, so one is reported at most a
/// quarter period late; at least every second (the gauges' resolution), at most every 50 ms
/// (a tight loop would cost more than it tells).
fn check_period(stale_after: Duration) -> Duration {
    (stale_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

impl Freshness {
    /// Watches `hub`'s stream until `shutdown`; alerts go to `FINQL_ALERT_WEBHOOK_URL`, shared
    /// through Redis when `REDIS_URL` is set.
    pub fn start(hub: &LiveHub, config: &Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let incidents = match &config.redis_url {
            Some(url) => {
                let guard = RedisGuard::new(config.resilience.redis_timeout, config.resilience.breaker());
                let connection = guard.connection(redis::Client::open(url.expose().as_str())?)?;
                Some(Incidents::new(connection, guard, &config.cache_namespace))
            }
            None => None,
        };
        let alerter = Alerter::start(
            &config.freshness,
            incidents.clone(),
            config.live_replicas.replica_id.clone(),
            shutdown.clone(),
        )?;
        let source = hub.lag().stream;
        let first = SourceReport {
            source,
            state: SourceState::Ok,
            last_event_age: Duration::ZERO,
            lag: Duration::ZERO,
            in_session: Vec::new(),
        };
        let freshness = Self { inner: Arc::new(Inner { reports: Mutex::new(vec![first]), incidents }) };
        tokio::spawn(freshness.clone().monitor(hub.clone(), config.freshness.stale_after, alerter, shutdown));
        Ok(freshness)
    }

    /// The newest report of each live source.
    pub fn sources(&self) -> Vec<SourceReport> {
        self.inner.reports.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Whether Redis answers a PING within its timeout; `None` without `REDIS_URL`.
    pub async fn redis_answers(&self) -> Option<bool> {
        match &self.inner.incidents {
            Some(incidents) => Some(incidents.ping().await),
            None => None,
        }
    }

    async fn monitor(self, hub: LiveHub, stale_after: Duration, alerter: Alerter, shutdown: CancellationToken) {
        let source = hub.lag().stream;
        let started = Instant::now();
        let mut watch = Watch::default();
        // The open incident's id, so the resolve names the alert it resolves.
        let mut incident = String::new();
        let mut checks = tokio::time::interval(check_period(stale_after));
        checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = checks.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let (now, wall) = (Instant::now(), Utc::now());
            let in_session: Vec<Region> = hub
                .markets()
                .into_iter()
                .filter(|market| calendar::status(*market, wall).state == MarketState::Open)
                .collect();
            let last_event = hub.last_event_at();
            let age = now.saturating_duration_since(last_event.unwrap_or(started));
            let lag = Duration::from_millis(hub.lag().last_ms);
            metrics::gauge!("finql_source_last_event_age_seconds", "source" => source).set(age.as_secs_f64());
            metrics::gauge!("finql_source_lag_seconds", "source" => source).set(lag.as_secs_f64());
            let expected = if in_session.is_empty() { 0.0 } else { 1.0 };
            metrics::gauge!("finql_source_in_session", "source" => source).set(expected);
            let markets: Vec<&'static str> = in_session.iter().map(|m| m.code()).collect();
            match watch.step(now, last_event, !in_session.is_empty(), stale_after) {
                Some(Transition::Stale { silent }) => {
                    tracing::error!(
                        source,
                        silent_secs = silent.as_secs_f64(),
                        stale_after_secs = stale_after.as_secs_f64(),
                        markets = ?markets,
                        "source_stale"
                    );
                    let alert = Alert::new(AlertStatus::Firing, source, silent, stale_after, &markets, None);
                    incident.clone_from(&alert.incident);
                    alerter.notify(alert);
                }
                Some(Transition::Recovered { after, reason }) => {
                    tracing::info!(
                        source,
                        stale_secs = after.as_secs_f64(),
                        reason = reason.as_str(),
                        "source_recovered"
                    );
                    let mut alert = Alert::new(AlertStatus::Resolved, source, age, stale_after, &markets, Some(reason));
                    alert.incident = std::mem::take(&mut incident);
                    alerter.notify(alert);
                }
                None => {}
            }
            let report = SourceReport {
                source,
                state: if watch.is_stale() { SourceState::Stale } else { SourceState::Ok },
                last_event_age: age,
                lag,
                in_session,
            };
            let mut reports = self.inner.reports.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match reports.iter_mut().find(|r| r.source == source) {
                Some(slot) => *slot = report,
                None => reports.push(report),
            }
        }
    }
}
