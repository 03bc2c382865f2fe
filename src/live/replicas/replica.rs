//! One replica's loop: its demand, its pub/sub connection, and its bid for the lease.
//!
//! Everything that talks to Redis for this replica runs in this one task (plus a reader for
//! the pub/sub connection and, while holding the lease, the stream and its publisher), so its
//! state needs no locks. Each step waits at most the Redis response timeout, which is shorter
//! than a heartbeat, so a slow Redis delays the loop but rarely past the lease deadline; and if
//! it does, the holder's watchdog stops the stream on time anyway.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{Keys, demand, lease, upstream::Upstream, wire};
use crate::live::{LiveEvent, MarketStream, Topic};

/// What the hub asked for.
pub(super) enum Command {
    Want(Vec<Topic>),
    Release(Vec<Topic>),
}

/// The first wait before reconnecting pub/sub; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Long enough not to hammer a Redis that is down, short enough to resume soon after.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) struct Replica {
    pub(super) id: String,
    pub(super) keys: Keys,
    pub(super) ttl: Duration,
    pub(super) client: redis::Client,
    pub(super) conn: ConnectionManager,
    pub(super) response_timeout: Duration,
    pub(super) stream: Arc<dyn MarketStream>,
    /// The hub's event channel.
    pub(super) events: mpsc::Sender<LiveEvent>,
    /// Cancelled when this replica's tasks must stop (clean shutdown, or the feed dropped).
    pub(super) tasks: CancellationToken,
    /// What this replica's hub wants, by topic key.
    pub(super) wanted: HashMap<String, Topic>,
    /// The last demand write failed: rewrite it all at the next heartbeat.
    pub(super) demand_dirty: bool,
    pub(super) pubsub: Option<PubSubSink>,
    pub(super) reader: Option<JoinHandle<()>>,
    pub(super) next_pubsub_attempt: Instant,
    pub(super) pubsub_backoff: Duration,
    pub(super) demand_changed: Arc<Notify>,
    pub(super) upstream: Option<Upstream>,
    /// Whether the last Redis call failed (to log outages once, not every heartbeat).
    pub(super) redis_failing: bool,
}

impl Replica {
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, shutdown: CancellationToken) {
        let mut heartbeat = tokio::time::interval(self.ttl / 3);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    let mut batch = vec![command];
                    while let Ok(more) = commands.try_recv() {
                        batch.push(more);
                    }
                    self.apply(batch).await;
                }
                () = upstream_stopped(&self.upstream) => {
                    // The watchdog stopped it: bid again at the next heartbeat.
                    self.upstream = None;
                }
                () = reader_finished(&mut self.reader) => {
                    self.reader = None;
                    self.pubsub = None;
                    tracing::warn!(replica = %self.id, "Redis pub/sub connection lost; live events stop until it is back");
                    self.schedule_pubsub_retry();
                }
                () = self.demand_changed.notified() => self.reconcile().await,
                _ = heartbeat.tick() => self.heartbeat().await,
            }
        }
        self.leave().await;
    }

    async fn apply(&mut self, batch: Vec<Command>) {
        let mut added = HashMap::new();
        let mut removed = HashSet::new();
        for command in batch {
            match command {
                Command::Want(topics) => {
                    for topic in topics {
                        let key = wire::topic_key(&topic);
                        removed.remove(&key);
                        if !self.wanted.contains_key(&key) {
                            added.insert(key, topic);
                        }
                    }
                }
                Command::Release(topics) => {
                    for topic in topics {
                        let key = wire::topic_key(&topic);
                        added.remove(&key);
                        if self.wanted.contains_key(&key) {
                            removed.insert(key);
                        }
                    }
                }
            }
        }
        if !added.is_empty() {
            // Listen before asking: the first events for a topic must find us subscribed.
            let channels: Vec<String> = added.keys().map(|k| self.keys.events(k)).collect();
            self.pubsub_command(true, channels).await;
            let topics: Vec<Topic> = added.values().cloned().collect();
            self.wanted.extend(added);
            let result = demand::add(&mut self.conn, &self.keys, &self.id, self.ttl, &topics).await;
            self.demand_written(result);
        }
        if !removed.is_empty() {
            let removed: Vec<String> = removed.into_iter().collect();
            for key in &removed {
                self.wanted.remove(key);
            }
            let result = demand::remove(&mut self.conn, &self.keys, &self.id, &removed).await;
            self.demand_written(result);
            let channels: Vec<String> = removed.iter().map(|k| self.keys.events(k)).collect();
            self.pubsub_command(false, channels).await;
        }
    }

    fn demand_written(&mut self, result: redis::RedisResult<()>) {
        if let Err(err) = &result {
            self.demand_dirty = true;
            self.redis_error("writing this replica's demand", err);
        } else {
            self.redis_ok();
        }
    }

    async fn pubsub_command(&mut self, subscribe: bool, channels: Vec<String>) {
        let Some(sink) = &mut self.pubsub else { return }; // resubscribed on reconnect
        if channels.is_empty() {
            return;
        }
        let request =
            async { if subscribe { sink.subscribe(channels).await } else { sink.unsubscribe(channels).await } };
        let failed = match tokio::time::timeout(self.response_timeout, request).await {
            Ok(Ok(())) => false,
            Ok(Err(err)) => {
                tracing::warn!(replica = %self.id, error = %err, "Redis pub/sub (un)subscribe failed; reconnecting");
                true
            }
            Err(_) => {
                tracing::warn!(replica = %self.id, "Redis pub/sub did not answer; reconnecting");
                true
            }
        };
        if failed {
            self.drop_pubsub();
        }
    }

    fn drop_pubsub(&mut self) {
        self.pubsub = None;
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        self.schedule_pubsub_retry();
    }

    fn schedule_pubsub_retry(&mut self) {
        self.next_pubsub_attempt = Instant::now() + self.pubsub_backoff;
        self.pubsub_backoff = (self.pubsub_backoff * 2).min(MAX_BACKOFF);
    }

    /// Connects pub/sub and subscribes to the demand notifications and every wanted topic.
    async fn connect_pubsub(&mut self) {
        let connect = async {
            let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
            sink.subscribe(self.keys.demand_changed()).await?;
            let channels: Vec<String> = self.wanted.keys().map(|k| self.keys.events(k)).collect();
            if !channels.is_empty() {
                sink.subscribe(channels).await?;
            }
            redis::RedisResult::Ok((sink, stream))
        };
        match tokio::time::timeout(self.response_timeout.max(super::CONNECT_TIMEOUT), connect).await {
            Ok(Ok((sink, stream))) => {
                if self.pubsub_backoff > MIN_BACKOFF {
                    tracing::info!(replica = %self.id, "Redis pub/sub connected again; live events resume");
                }
                self.pubsub_backoff = MIN_BACKOFF;
                self.pubsub = Some(sink);
                self.reader = Some(tokio::spawn(read(
                    stream,
                    self.keys.demand_changed(),
                    self.demand_changed.clone(),
                    self.events.clone(),
                    self.tasks.clone(),
                )));
                // Demand may have changed while we were not listening.
                self.demand_changed.notify_one();
            }
            Ok(Err(err)) => {
                tracing::warn!(replica = %self.id, error = %err, retry_in = ?self.pubsub_backoff, "cannot connect Redis pub/sub");
                self.schedule_pubsub_retry();
            }
            Err(_) => {
                tracing::warn!(replica = %self.id, retry_in = ?self.pubsub_backoff, "Redis pub/sub connection timed out");
                self.schedule_pubsub_retry();
            }
        }
    }

    async fn heartbeat(&mut self) {
        // Pub/sub: (re)connect when due; otherwise check that the connection still answers
        // (a silent network failure would otherwise look like a quiet market).
        if self.pubsub.is_none() {
            if Instant::now() >= self.next_pubsub_attempt {
                self.connect_pubsub().await;
            }
        } else if let Some(sink) = &mut self.pubsub {
            let ping = tokio::time::timeout(self.response_timeout, sink.ping::<redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                tracing::warn!(replica = %self.id, "Redis pub/sub stopped answering; reconnecting");
                self.drop_pubsub();
            }
        }

        // Demand: keep it alive, rewrite it if Redis lost it.
        let refreshed = if self.wanted.is_empty() && !self.demand_dirty {
            Ok(true)
        } else if self.demand_dirty {
            Ok(false)
        } else {
            demand::refresh(&mut self.conn, &self.keys, &self.id, self.ttl).await
        };
        match refreshed {
            Ok(true) => self.redis_ok(),
            Ok(false) => {
                let topics: Vec<Topic> = self.wanted.values().cloned().collect();
                match demand::rewrite(&mut self.conn, &self.keys, &self.id, self.ttl, &topics).await {
                    Ok(()) => {
                        self.demand_dirty = false;
                        self.redis_ok();
                    }
                    Err(err) => {
                        self.demand_dirty = true;
                        self.redis_error("rewriting this replica's demand", &err);
                    }
                }
            }
            Err(err) => self.redis_error("refreshing this replica's demand", &err),
        }

        // Lease: renew it, or try to take it.
        if self.upstream.as_ref().is_some_and(Upstream::is_stopped) {
            self.upstream = None; // stopped by its watchdog while this heartbeat waited on Redis
        }
        let started = Instant::now();
        let lease_key = self.keys.lease();
        if self.upstream.is_some() {
            match lease::renew(&mut self.conn, &lease_key, &self.id, self.ttl).await {
                Ok(true) => {
                    if let Some(upstream) = &self.upstream {
                        upstream.renewed(started + self.ttl);
                    }
                }
                Ok(false) => {
                    tracing::warn!(replica = %self.id, "lost the upstream lease to another replica; stopping the stream");
                    self.stop_upstream();
                }
                // Keep streaming until the deadline: Redis may answer the next renewal.
                Err(err) => self.redis_error("renewing the upstream lease", &err),
            }
        } else {
            match lease::acquire(&mut self.conn, &lease_key, &self.id, self.ttl).await {
                Ok(true) => {
                    tracing::info!(replica = %self.id, stream = self.stream.name(), "took the upstream lease; running the stream");
                    self.upstream = Some(Upstream::start(
                        self.id.clone(),
                        self.stream.clone(),
                        self.conn.clone(),
                        self.keys.clone(),
                        self.tasks.child_token(),
                        started + self.ttl,
                    ));
                }
                Ok(false) => {}
                Err(err) => self.redis_error("bidding for the upstream lease", &err),
            }
        }
        // Also catches demand that expired (no notification announces that).
        self.reconcile().await;
    }

    /// Holder only: subscribes the stream to the union of every replica's demand.
    async fn reconcile(&mut self) {
        if self.upstream.is_none() {
            return;
        }
        match demand::union(&mut self.conn, &self.keys).await {
            Ok(union) => {
                if let Some(upstream) = &mut self.upstream {
                    upstream.follow(union);
                }
            }
            Err(err) => self.redis_error("reading the replicas' demand", &err),
        }
    }

    fn stop_upstream(&mut self) {
        if let Some(upstream) = self.upstream.take() {
            upstream.stop();
        }
    }

    /// Clean shutdown: stop the stream, hand the lease over, withdraw the demand.
    async fn leave(&mut self) {
        if self.upstream.is_some() {
            self.stop_upstream();
            if let Err(err) = lease::release(&mut self.conn, &self.keys.lease(), &self.id).await {
                tracing::warn!(replica = %self.id, error = %err, "could not release the upstream lease; it expires by itself");
            }
        }
        if let Err(err) = demand::withdraw(&mut self.conn, &self.keys, &self.id).await {
            tracing::warn!(replica = %self.id, error = %err, "could not withdraw this replica's demand; it expires by itself");
        }
        self.tasks.cancel();
        tracing::info!(replica = %self.id, "left the live feed");
    }

    fn redis_error(&mut self, doing: &str, err: &redis::RedisError) {
        if !self.redis_failing {
            self.redis_failing = true;
            tracing::warn!(replica = %self.id, error = %err, "Redis unavailable while {doing}; retrying every heartbeat");
        } else {
            tracing::debug!(replica = %self.id, error = %err, "Redis still unavailable while {doing}");
        }
    }

    fn redis_ok(&mut self) {
        if self.redis_failing {
            self.redis_failing = false;
            tracing::info!(replica = %self.id, "Redis answers again");
        }
    }
}

/// Resolves when the stream this replica runs has been stopped; never otherwise.
async fn upstream_stopped(upstream: &Option<Upstream>) {
    match upstream {
        Some(upstream) => upstream.stopped().await,
        None => std::future::pending().await,
    }
}

async fn reader_finished(reader: &mut Option<JoinHandle<()>>) {
    match reader {
        Some(handle) => {
            let _ = handle.await;
        }
        None => std::future::pending().await,
    }
}

/// Reads the pub/sub connection until it closes: demand notifications wake the loop, events go
/// to the hub.
async fn read(
    mut messages: PubSubStream,
    demand_channel: String,
    demand_changed: Arc<Notify>,
    events: mpsc::Sender<LiveEvent>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = messages.next() => message,
        };
        let Some(message) = message else { return };
        if message.get_channel_name() == demand_channel {
            demand_changed.notify_one();
            continue;
        }
        match wire::decode_event(message.get_payload_bytes()) {
            // A closed hub means the process is shutting down: nothing to do.
            Some(event) => {
                let _ = events.send(event).await;
            }
            None => tracing::warn!(channel = message.get_channel_name(), "dropping a live event that does not decode"),
        }
    }
}
