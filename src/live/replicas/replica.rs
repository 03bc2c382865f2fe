//! One replica's loop: its demand, its pub/sub connection, and its bid for the lease.
//!
//! Everything that talks to Redis for this replica runs in this one task (plus a reader for
//! the pub/sub connection and, while holding the lease, the stream and its publisher), so its
//! state needs no locks. Each step waits at most the Redis response timeout, which is shorter
//! than a heartbeat, so a slow Redis delays the loop but rarely past the lease deadline; and if
//! it does, the holder's watchdog stops the stream on time anyway.
//!
//! The loop works in *rounds*: pub/sub, demand, lease, then the holder's subscriptions. A round
//! runs at every heartbeat (TTL/3) and, while anything failed, again after a short backoff
//! (100 ms doubling to 500 ms, jittered), so that when Redis returns everything is restored
//! within half a second instead of waiting for the next heartbeat.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use redis::aio::PubSubSink;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{
    Keys,
    connection::{Connection, Scripts, timed_out},
    demand,
    lease::{self, Hold},
    pubsub::read,
    upstream::{Publisher, Upstream},
    wire,
};
use crate::live::{LiveEvent, MarketStream, Topic};

/// What the hub asked for.
pub(super) enum Command {
    Want(Vec<Topic>),
    Release(Vec<Topic>),
}

/// The first wait before a round is retried after a failure; it doubles up to [`MAX_BACKOFF`].
/// A Redis restart is usually over within it.
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between retries while Redis is down. Live events must resume within 1.5 s
/// of Redis returning: a retry within 500 ms, plus the round itself (a handful of round trips,
/// and for a new holder the upstream connection), leaves room for that. Each retry costs a
/// refused connection or a PING: at most a few per second per replica, nothing to a Redis that
/// has just come back.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

pub(super) struct Replica {
    pub(super) id: String,
    pub(super) keys: Keys,
    pub(super) ttl: Duration,
    pub(super) client: redis::Client,
    /// Every call bounded by `response_timeout`.
    pub(super) conn: Connection,
    pub(super) scripts: Arc<Scripts>,
    /// This replica's term token (`lease`): what it bids with, and what the lease holds while
    /// it holds it. Drawn afresh when a term ends.
    pub(super) token: String,
    pub(super) response_timeout: Duration,
    pub(super) stream: Arc<dyn MarketStream>,
    /// The hub's event channel.
    pub(super) events: mpsc::Sender<LiveEvent>,
    /// Cancelled when this replica's tasks must stop (clean shutdown, or the feed dropped).
    pub(super) tasks: CancellationToken,
    /// What this replica's hub wants, by topic key.
    pub(super) wanted: HashMap<String, Topic>,
    /// A demand write or refresh failed: rewrite it all in the next round.
    pub(super) demand_dirty: bool,
    pub(super) pubsub: Option<PubSubSink>,
    pub(super) reader: Option<JoinHandle<()>>,
    pub(super) demand_changed: Arc<Notify>,
    pub(super) upstream: Option<Upstream>,
    /// When to run the next round early, because something failed.
    pub(super) retry_at: Option<Instant>,
    /// The wait before the next early round (jittered).
    pub(super) backoff: Duration,
    /// Whether the current round hit a Redis error.
    pub(super) round_failed: bool,
    /// Whether Redis is failing (to log outages once, not every round).
    pub(super) redis_failing: bool,
    /// Until then the holder only adds upstream subscriptions: Redis lost the demand (it
    /// restarted, or was unreachable), and the replicas are still rewriting it.
    pub(super) keep_subscriptions_until: Instant,
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
                    // The watchdog stopped it, or Redis refused its events: bid again at the
                    // next heartbeat.
                    self.end_term().await;
                }
                () = reader_finished(&mut self.reader) => {
                    self.reader = None;
                    self.pubsub = None;
                    tracing::warn!(replica = %self.id, "Redis pub/sub connection lost; live events stop until it is back");
                    self.schedule_retry();
                }
                () = self.demand_changed.notified() => self.reconcile().await,
                () = sleep_until(self.retry_at) => self.round().await,
                _ = heartbeat.tick() => self.round().await,
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
        self.schedule_retry();
    }

    /// Runs a round early, after the backoff (jittered, so that replicas cut off together do
    /// not come back in lockstep), unless one is already due.
    fn schedule_retry(&mut self) {
        if self.retry_at.is_some() {
            return;
        }
        let wait = self.backoff.mul_f64(rand::random_range(0.5..=1.0));
        self.retry_at = Some(Instant::now() + wait);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
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
                if self.backoff > MIN_BACKOFF {
                    tracing::info!(replica = %self.id, "Redis pub/sub connected again; live events resume");
                }
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
            Ok(Err(err)) => self.redis_error("connecting pub/sub", &err),
            Err(_) => self.redis_error("connecting pub/sub", &timed_out()),
        }
    }

    /// One round: pub/sub, demand, lease, subscriptions. See the module documentation.
    async fn round(&mut self) {
        self.retry_at = None;
        self.round_failed = false;
        if self.redis_failing {
            if !self.probe().await {
                self.schedule_retry(); // still down: nothing below would get through
                return;
            }
            // Back: whatever Redis lost meanwhile is being rewritten, by every replica.
            self.demand_lost();
        }

        // Pub/sub: (re)connect; otherwise check that the connection still answers (a silent
        // network failure would otherwise look like a quiet market).
        if self.pubsub.is_none() {
            self.connect_pubsub().await;
        } else if let Some(sink) = &mut self.pubsub {
            let ping = tokio::time::timeout(self.response_timeout, sink.ping::<redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                tracing::warn!(replica = %self.id, "Redis pub/sub stopped answering; reconnecting");
                self.drop_pubsub();
            }
        }

        self.keep_demand().await;
        self.keep_lease().await;
        // Also catches demand that expired (no notification announces that).
        self.reconcile().await;

        if self.round_failed || self.pubsub.is_none() || self.demand_dirty {
            self.schedule_retry();
        } else {
            self.backoff = MIN_BACKOFF;
            if self.redis_failing {
                self.redis_failing = false;
                tracing::info!(replica = %self.id, "Redis answers again");
            }
        }
    }

    /// After a failure: whether Redis answers. A `ConnectionManager` fails the first call after
    /// Redis returns (that call starts the reconnection), so a second PING is what tells.
    async fn probe(&mut self) -> bool {
        for _ in 0..2 {
            if redis::cmd("PING").query_async::<String>(&mut self.conn).await.is_ok() {
                return true;
            }
        }
        false
    }

    /// Keeps this replica's demand alive, or rewrites it if Redis lost it or a write failed.
    async fn keep_demand(&mut self) {
        let refreshed = if self.demand_dirty {
            Ok(false)
        } else if self.wanted.is_empty() {
            Ok(true)
        } else {
            demand::refresh(&mut self.conn, &self.keys, &self.id, self.ttl).await
        };
        match refreshed {
            Ok(true) => {}
            Ok(false) => {
                if !self.demand_dirty {
                    // Expired or gone with a restarted Redis: so is everyone else's.
                    self.demand_lost();
                }
                let topics: Vec<Topic> = self.wanted.values().cloned().collect();
                match demand::rewrite(&mut self.conn, &self.keys, &self.id, self.ttl, &topics).await {
                    Ok(()) => self.demand_dirty = false,
                    Err(err) => {
                        self.demand_dirty = true;
                        self.redis_error("rewriting this replica's demand", &err);
                    }
                }
            }
            Err(err) => {
                // Its fate is unknown: rewrite it as soon as Redis answers.
                self.demand_dirty = true;
                self.redis_error("refreshing this replica's demand", &err);
            }
        }
    }

    /// Renews the lease, or bids for it.
    async fn keep_lease(&mut self) {
        if self.upstream.as_ref().is_some_and(Upstream::is_stopped) {
            // Stopped (by its watchdog or a refused publish) while this round waited on Redis.
            self.end_term().await;
        }
        let started = Instant::now();
        let lease_key = self.keys.lease();
        let held = lease::hold(&mut self.conn, &self.scripts, &lease_key, &self.token, self.ttl).await;
        match (&self.upstream, held) {
            (Some(upstream), Ok(hold @ (Hold::Kept | Hold::Taken))) => {
                upstream.renewed(started + self.ttl);
                if hold == Hold::Taken {
                    tracing::warn!(replica = %self.id, "Redis had lost the upstream lease; took it back, keeping the stream");
                    self.demand_lost();
                }
            }
            (Some(_), Ok(Hold::Lost)) => {
                tracing::warn!(replica = %self.id, "another replica holds the upstream lease; stopping the stream");
                self.end_term().await;
            }
            (None, Ok(Hold::Kept | Hold::Taken)) => {
                tracing::info!(replica = %self.id, stream = self.stream.name(), "took the upstream lease; running the stream");
                let publisher = Publisher {
                    conn: self.conn.clone(),
                    scripts: self.scripts.clone(),
                    keys: self.keys.clone(),
                    token: self.token.clone(),
                    ttl: self.ttl,
                };
                self.upstream = Some(Upstream::start(
                    self.id.clone(),
                    self.stream.clone(),
                    publisher,
                    self.tasks.child_token(),
                    started + self.ttl,
                ));
            }
            (None, Ok(Hold::Lost)) => {}
            // Keep streaming until the deadline: Redis may answer the next renewal.
            (Some(_), Err(err)) => self.redis_error("renewing the upstream lease", &err),
            (None, Err(err)) => self.redis_error("bidding for the upstream lease", &err),
        }
    }

    /// Redis lost the demand: until every replica has rewritten its own (within a TTL: each
    /// retries within [`MAX_BACKOFF`] and at every heartbeat), the holder keeps what it streams.
    fn demand_lost(&mut self) {
        self.keep_subscriptions_until = Instant::now() + self.ttl;
    }

    /// Holder only: subscribes the stream to the union of every replica's demand.
    async fn reconcile(&mut self) {
        if self.upstream.is_none() {
            return;
        }
        match demand::union(&mut self.conn, &self.scripts, &self.keys).await {
            Ok(union) => {
                let keep = Instant::now() < self.keep_subscriptions_until;
                if let Some(upstream) = &mut self.upstream {
                    upstream.follow(union, keep);
                }
            }
            Err(err) => self.redis_error("reading the replicas' demand", &err),
        }
    }

    /// Ends this replica's term: stops the stream (if still running), gives the lease up if it
    /// is still ours (a watchdog stops the stream before the lease expires; whoever bids next
    /// need not wait for it), and draws a new token, so nothing of this term (a publish still
    /// in flight) can pass the fence of a later one.
    async fn end_term(&mut self) {
        let Some(upstream) = self.upstream.take() else { return };
        upstream.stop();
        if let Err(err) = lease::release(&mut self.conn, &self.scripts, &self.keys.lease(), &self.token).await {
            self.redis_error("releasing the upstream lease", &err);
        }
        self.token = lease::new_token(&self.id);
    }

    /// Clean shutdown: stop the stream, hand the lease over, withdraw the demand.
    async fn leave(&mut self) {
        if let Some(upstream) = self.upstream.take() {
            upstream.stop();
            if let Err(err) = lease::release(&mut self.conn, &self.scripts, &self.keys.lease(), &self.token).await {
                tracing::warn!(replica = %self.id, error = %err, "could not release the upstream lease; it expires by itself");
            }
        }
        if let Err(err) = demand::withdraw(&mut self.conn, &self.keys, &self.id).await {
            tracing::warn!(replica = %self.id, error = %err, "could not withdraw this replica's demand; it expires by itself");
        }
        self.tasks.cancel();
        tracing::info!(replica = %self.id, "left the live feed");
    }

    /// Notes a failed Redis call (logged once per outage) and runs a round again soon.
    fn redis_error(&mut self, doing: &str, err: &redis::RedisError) {
        self.round_failed = true;
        if !self.redis_failing {
            self.redis_failing = true;
            tracing::warn!(replica = %self.id, error = %err, "Redis unavailable while {doing}; retrying");
        } else {
            tracing::debug!(replica = %self.id, error = %err, "Redis still unavailable while {doing}");
        }
        self.schedule_retry();
    }
}

/// Resolves at `at`; never if there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
