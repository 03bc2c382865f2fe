//! [`RedisFeed`](crate::live::replicas::RedisFeed): the `Feed` for several replicas sharing one Redis (`REDIS_URL` set), so the
//! whole deployment holds ONE upstream connection however many replicas run (iTick plans allow
//! 1 to 12 WebSocket connections, and each counts against the plan's subscriptions).
//!
//! # How it works
//! - **Demand.** Each replica writes the topics its hub wants to its own Redis hash, which
//!   expires unless the replica's heartbeat (every TTL/3) refreshes it, and announces every
//!   change on a pub/sub channel. A crashed replica's demand is gone within one TTL
//!   (`demand`).
//! - **Leadership.** One replica holds a lease: a key holding its *term token*
//!   (`{replica}:{random}`, new for each term), taken when free and renewed every TTL/3 by a
//!   compare-and-set script, deleted on clean shutdown by compare-and-delete (`lease`). The
//!   holder runs the `MarketStream` and keeps its subscriptions equal to the union of every
//!   live replica's demand, re-reading it on each announcement and each heartbeat (`upstream`).
//!   A holder that cannot renew stops its stream at the moment its lease could expire in Redis,
//!   before anyone else can take it. Others bid at every heartbeat: after a crash, one takes
//!   over within a TTL plus a heartbeat.
//! - **Events, fenced.** The holder publishes each batch of events through a script that
//!   publishes only if the lease still holds its token, atomically in Redis. Every replica,
//!   the holder included (one code path), receives those of the topics it wants and hands them
//!   to its hub.
//!
//! # Two holders: when, and why it does no harm
//! Expiry alone cannot produce two holders (the watchdog stops a holder before its lease can
//! expire), but a Redis that restarts empty (no persistence, or a failover to a replica that
//! had not received the lease yet) forgets the lease while its holder streams, and another
//! replica can take it before the holder next speaks to Redis. Then two upstream connections
//! are open at once, and nothing bounds that by "the time a stream takes to close". What is
//! bounded instead:
//! - *Clients never see the deposed holder's events*: its publishes are refused by Redis (the
//!   lease holds another token), from the very first one after the new lease was taken.
//! - *The deposed holder closes its stream the moment Redis refuses it anything*: its first
//!   publish, or its next renewal, whichever comes first, so within one heartbeat (TTL/3) of
//!   reaching Redis again, and at once on a busy market. Until it can reach Redis, its
//!   watchdog bounds it by the TTL as before.
//! - A holder that finds the lease *free* (Redis lost it, nobody took it yet) takes it back for
//!   the same term, in the same atomic step: it keeps its upstream connection across a Redis
//!   restart instead of closing and reopening it.
//!
//! A fencing token from a counter (`INCR`) would not survive the same restart that loses the
//! lease (the counter goes too, and the next number repeats); a random token per term is unique
//! without Redis remembering anything, and "the lease holds exactly my token" is all the fence
//! needs. Cost: each batch of events is one `EVALSHA` (the script is compiled once and cached;
//! after a restart it is sent again once) instead of one pipeline of `PUBLISH`es, still one
//! round trip.
//!
//! # Channel layout: one channel per topic
//! Events go to `{ns}:live:ev:{topic}` (`AAPL.US/quote`, `700.HK/kline:1m`). Redis delivers a
//! message only to the connections subscribed to its channel, at a cost proportional to them,
//! so each replica receives exactly the topics it wants and no replica decodes traffic for
//! the rest. With one channel for everything, every replica would receive and decode every
//! event of the deployment (thousands of topics), most of it to throw away; per symbol would
//! still send quote subscribers every tick and book update. Channels are cheap in Redis (a
//! hash entry each), and the subscribers Redis sees are replicas (one pub/sub connection
//! each), not end users: tens of thousands of GraphQL subscribers are fanned out in-process by
//! each replica's hub. A replica subscribes to a topic's channel before it publishes its
//! demand for it, so the first events of a new topic find it listening.
//!
//! # When Redis goes away
//! Events stop; GraphQL subscribers stay connected and simply receive nothing new. The holder
//! keeps its stream until its lease could have expired (one TTL after its last successful
//! renewal) and then stops it. Every replica keeps retrying, not at its heartbeat but after a
//! backoff of 100 ms doubling to 500 ms (jittered): when Redis answers again, within half a
//! second each replica reconnects pub/sub and resubscribes, rewrites its demand (a refresh that
//! failed counts as lost), and renews or bids for the lease, so live events resume within
//! about a second of Redis returning (the requirement is 1.5 s). The holder meanwhile only adds
//! upstream subscriptions for one TTL, while the replicas rewrite the demand Redis lost, rather
//! than dropping topics whose demand is not back yet. Outages are logged once when they start
//! and once when they end. Every Redis call is bounded by the response timeout (at most a
//! quarter of the TTL), reconnection included (`connection`). Redis must be reachable at
//! start-up ([`RedisFeed::start`](crate::live::replicas::RedisFeed::start) fails fast, like the
//! shared quote cache).
//!
//! # Keys (under `FINQL_CACHE_NAMESPACE`)
//! `{ns}:live:lease` (the holder's term token, `{replica}:{16 hex digits}`),
//! `{ns}:live:replicas` (set of replica ids),
//! `{ns}:live:demand:{replica}` (hash topic -> instrument), channels
//! `{ns}:live:demand-changed` and `{ns}:live:ev:{topic}`. Event and topic encodings: `wire`.

mod connection;
mod demand;
mod lease;
mod pubsub;
mod replica;
mod upstream;
mod wire;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use redis::aio::ConnectionManagerConfig;
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use self::{
    connection::{Connection, Scripts},
    replica::{Command, Replica},
};
use super::{Feed, LiveEvent, MarketStream, Topic};
use crate::config::LiveReplicaSettings;

/// Connecting must not take longer than this, at start-up or on reconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis names of one deployment.
#[derive(Clone)]
struct Keys {
    namespace: String,
}

impl Keys {
    fn lease(&self) -> String {
        format!("{}:live:lease", self.namespace)
    }
    fn replicas(&self) -> String {
        format!("{}:live:replicas", self.namespace)
    }
    fn demand_prefix(&self) -> String {
        format!("{}:live:demand:", self.namespace)
    }
    fn demand(&self, replica: &str) -> String {
        format!("{}{replica}", self.demand_prefix())
    }
    fn demand_changed(&self) -> String {
        format!("{}:live:demand-changed", self.namespace)
    }
    fn events(&self, topic_key: &str) -> String {
        format!("{}:live:ev:{topic_key}", self.namespace)
    }
}

/// The [`Feed`] of a replica among several sharing Redis. See the module documentation.
///
/// Stops cleanly (stream stopped, lease released, demand withdrawn) when the `shutdown` token
/// given to [`RedisFeed::start`] is cancelled; [`RedisFeed::stopped`] resolves when that is
/// done. Dropping it without that stops its tasks as a crash would: the lease and the demand
/// stay in Redis until they expire.
pub struct RedisFeed {
    id: String,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    done: CancellationToken,
}

impl RedisFeed {
    /// Connects to Redis (failing fast if it does not answer) and starts this replica: it
    /// publishes its demand, bids for the lease, runs `stream` while it holds it, and sends
    /// the events of the topics it wants to `events` (the hub's channel).
    pub async fn start(
        redis_url: &str,
        namespace: &str,
        stream: Arc<dyn MarketStream>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
        settings: &LiveReplicaSettings,
    ) -> anyhow::Result<Self> {
        let ttl = settings.lease_ttl;
        anyhow::ensure!(ttl >= Duration::from_millis(30), "FINQL_LIVE_LEASE_MS must be at least 30");
        // Every Redis call must answer well within a heartbeat (TTL/3), or the loop could
        // overrun the lease deadline; 1 s is plenty for a healthy Redis.
        let response_timeout = (ttl / 4).min(Duration::from_secs(1));
        let client = redis::Client::open(redis_url).context("REDIS_URL is not a valid Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1);
        let manager = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
            .await
            .context("connecting to Redis (REDIS_URL) for live data timed out")?
            .context("connecting to Redis (REDIS_URL) for live data")?;
        let mut conn = Connection::new(manager, response_timeout);
        let _: String = redis::cmd("PING").query_async(&mut conn).await.context("Redis did not answer PING")?;
        let scripts = Scripts::load(&mut conn).await.context("loading the live lease scripts into Redis")?;

        let tasks = CancellationToken::new();
        let replica = Replica {
            id: settings.replica_id.clone(),
            keys: Keys { namespace: namespace.to_owned() },
            ttl,
            client,
            conn,
            scripts: Arc::new(scripts),
            token: lease::new_token(&settings.replica_id),
            response_timeout,
            stream,
            events,
            tasks: tasks.clone(),
            wanted: HashMap::new(),
            demand_dirty: false,
            pubsub: None,
            reader: None,
            demand_changed: Default::default(),
            upstream: None,
            retry_at: None,
            backoff: replica::MIN_BACKOFF,
            round_failed: false,
            redis_failing: false,
            keep_subscriptions_until: Instant::now(),
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let done = CancellationToken::new();
        let finished = done.clone();
        let task = tokio::spawn(async move {
            // Dropping the feed aborts this task: the guard then stops the stream, the
            // publisher and the pub/sub reader too.
            let _stop_children = tasks.drop_guard();
            replica.run(command_rx, shutdown).await;
            finished.cancel();
        });
        tracing::info!(replica = %settings.replica_id, ?ttl, "live feed shared through Redis");
        Ok(Self { id: settings.replica_id.clone(), commands, task, done })
    }

    /// This replica's id (in the lease and demand keys).
    pub fn replica_id(&self) -> &str {
        &self.id
    }

    /// Resolves once the feed has stopped cleanly after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.done.cancelled().await;
    }
}

impl Feed for RedisFeed {
    fn want(&self, topics: Vec<Topic>) {
        if !topics.is_empty() {
            let _ = self.commands.send(Command::Want(topics));
        }
    }

    fn release(&self, topics: Vec<Topic>) {
        if !topics.is_empty() {
            let _ = self.commands.send(Command::Release(topics));
        }
    }
}

impl Drop for RedisFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}
