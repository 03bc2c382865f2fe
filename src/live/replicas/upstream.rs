//! The lease holder's side: the one upstream stream of the deployment, kept subscribed to the
//! union of every replica's demand, and its events published to Redis, fenced by the lease.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    Keys,
    connection::{Connection, Scripts},
    lease, wire,
};
use crate::live::{LiveEvent, MarketStream, StreamCommand, Topic};

/// Events between the stream and the Redis publisher. Small: a full buffer makes the stream
/// wait (as the `MarketStream` contract says) rather than memory grow while Redis is slow.
const EVENT_BUFFER: usize = 1024;
/// Events sent to Redis in one pipeline: one round trip for a burst, bounded in size.
const PUBLISH_BATCH: usize = 256;

/// A running stream, while this replica holds the lease.
pub(super) struct Upstream {
    commands: mpsc::UnboundedSender<StreamCommand>,
    stop: CancellationToken,
    /// What the stream has been told to subscribe to, by topic key.
    subscribed: HashMap<String, Topic>,
    /// When the lease may expire in Redis: the start of the last successful acquire or renewal
    /// plus the TTL (Redis starts counting later than that, so this is never late). A watchdog
    /// task stops the stream then, even while the replica's loop waits on a slow Redis.
    lease_deadline: watch::Sender<Instant>,
}

impl Upstream {
    /// Starts `stream` and its publisher, both stopped by `stop` (or by `Upstream::stop`), and
    /// by the publisher itself when Redis refuses an event because `term` no longer holds the
    /// lease.
    pub(super) fn start(
        replica: String,
        stream: Arc<dyn MarketStream>,
        publisher: Publisher,
        stop: CancellationToken,
        lease_deadline: Instant,
    ) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(stream.run(command_rx, events, stop.clone()));
        tokio::spawn(publisher.run(replica.clone(), event_rx, stop.clone()));
        let (lease_deadline, deadline_rx) = watch::channel(lease_deadline);
        tokio::spawn(watchdog(replica, deadline_rx, stop.clone()));
        Self { commands, stop, subscribed: HashMap::new(), lease_deadline }
    }

    /// The lease was renewed: it cannot expire before `deadline`.
    pub(super) fn renewed(&self, deadline: Instant) {
        self.lease_deadline.send_replace(deadline);
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when the stream has been stopped (by the watchdog, or by `stop`).
    pub(super) async fn stopped(&self) {
        self.stop.cancelled().await;
    }

    /// Makes the stream's subscriptions equal to `union`; with `keep`, only adds to them (the
    /// demand in Redis may still be incomplete, being rewritten after Redis lost it).
    pub(super) fn follow(&mut self, mut union: HashMap<String, Topic>, keep: bool) {
        let added: Vec<Topic> =
            union.iter().filter(|(key, _)| !self.subscribed.contains_key(*key)).map(|(_, t)| t.clone()).collect();
        let removed: Vec<Topic> = if keep {
            union.extend(self.subscribed.drain());
            Vec::new()
        } else {
            self.subscribed.iter().filter(|(key, _)| !union.contains_key(*key)).map(|(_, t)| t.clone()).collect()
        };
        if !removed.is_empty() {
            tracing::debug!(count = removed.len(), "unsubscribing upstream: no replica wants these topics");
            let _ = self.commands.send(StreamCommand::Unsubscribe(removed));
        }
        if !added.is_empty() {
            tracing::debug!(count = added.len(), "subscribing upstream");
            let _ = self.commands.send(StreamCommand::Subscribe(added));
        }
        self.subscribed = union;
    }

    /// Stops the stream and the publisher at once (they finish in the background).
    pub(super) fn stop(self) {
        self.stop.cancel();
    }
}

/// Stops the stream when the lease may have expired without a renewal.
async fn watchdog(replica: String, mut deadline: watch::Receiver<Instant>, stop: CancellationToken) {
    loop {
        let at = *deadline.borrow_and_update();
        tokio::select! {
            () = stop.cancelled() => return,
            changed = deadline.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(at) => {
                tracing::warn!(%replica, "could not renew the upstream lease in time; stopping the stream");
                stop.cancel();
                return;
            }
        }
    }
}

/// What the publisher needs to publish, fenced, for one term of the lease.
pub(super) struct Publisher {
    pub(super) conn: Connection,
    pub(super) scripts: Arc<Scripts>,
    pub(super) keys: Keys,
    /// The term token the lease must hold for an event to be published.
    pub(super) token: String,
    pub(super) ttl: Duration,
}

impl Publisher {
    /// Publishes every event of the stream to its topic's channel, in batches, each in one
    /// fenced script call. While Redis is unreachable events are dropped (live data is only
    /// worth anything now): logged once when it starts failing and once when it recovers. The
    /// moment Redis refuses a batch (another replica holds the lease), the stream is stopped:
    /// this replica goes back to bidding.
    async fn run(mut self, replica: String, mut events: mpsc::Receiver<LiveEvent>, stop: CancellationToken) {
        let lease_key = self.keys.lease();
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        let mut messages = Vec::with_capacity(PUBLISH_BATCH);
        let mut failing = false;
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = events.recv_many(&mut batch, PUBLISH_BATCH) => received,
            };
            if received == 0 {
                return; // the stream has finished
            }
            messages.clear();
            messages.extend(
                batch.drain(..).map(|event| (self.keys.events(&wire::event_key(&event)), wire::encode_event(&event))),
            );
            let published =
                lease::publish(&mut self.conn, &self.scripts, &lease_key, &self.token, self.ttl, &messages).await;
            match published {
                Ok(true) if failing => {
                    failing = false;
                    tracing::info!(%replica, "publishing live events to Redis again");
                }
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%replica, "another replica holds the upstream lease: Redis refused this stream's events; stopping it");
                    stop.cancel();
                    return;
                }
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(%replica, error = %err, "cannot publish live events to Redis; dropping them until it answers");
                }
                Err(_) => {}
            }
        }
    }
}
