//! Live market data: quotes, ticks, order books and forming bars pushed to GraphQL subscribers.
//!
//! Three layers, each behind its own seam so they can be tested and replaced apart:
//!
//! - a `MarketStream` is one upstream that pushes data (a provider of `sources`: the
//!   iTick WebSocket, the simulated market). It owns its connection: auth, heartbeats,
//!   reconnects, and keeping the upstream subscriptions equal to the topics it was last asked
//!   for (re-subscribing after a reconnect). This module defines the seam and never names a
//!   provider.
//! - a `Feed` decides which process talks to the stream. In one process (no Redis) the hub's
//!   demand goes straight to the stream. With Redis, replicas publish their demand, exactly one
//!   replica (the lease holder) runs the stream for the union of all demand, and every event
//!   reaches every replica through pub/sub: the upstream sees one connection however many
//!   replicas there are.
//! - the hub fans events out to subscribers through per-topic broadcast channels, counts
//!   subscribers per topic, and tells the feed when a topic is first wanted and when (after a
//!   grace period) nobody wants it any more.
//!
//! Everything here is keyed by `Topic`: one instrument on one channel.

/// Delayed markets: events held until they are a plan's delay old, conflated, measured.
pub mod delay;
/// The data freshness alarm: a source silent in session is logged, shown on `/ready`, alerted.
pub mod freshness;
/// `quotes`, `klines`, `orderBook` and `ticks` subscriptions.
pub mod graphql;
/// The fan-out hub: reference-counted topics, conflation, bounded tick queues, data lag.
pub mod hub;
/// The feed of a single process: the stream runs here.
pub mod local;
/// Per-tenant live quotas (`max_connections`, `max_live_symbols`), shared through Redis.
pub mod quotas;
/// The feed of replicas sharing Redis: one lease holder streams for everyone.
pub mod replicas;
/// An event shared by a topic's subscribers, with its renderings.
pub mod shared;

pub use freshness::Freshness;
pub use hub::{HubConfig, LiveHub};
pub use local::LocalFeed;
pub use quotas::LiveQuotas;
pub use shared::SharedEvent;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Config, LiveSettings},
    market::{Instrument, Interval, Kline, OrderBook, Quote, Tick},
    reference::Symbol,
};

/// Events queued between the stream and the hub: a few steps' worth of pushes for thousands
/// of topics, so the stream rarely waits; bounded, so a stalled hub stalls the stream instead
/// of growing memory.
const EVENT_BUFFER: usize = 8192;

/// Starts `stream` behind a [`LocalFeed`] and a hub fed by it, until `shutdown`.
pub fn start_local(stream: Arc<dyn MarketStream>, settings: &LiveSettings, shutdown: CancellationToken) -> LiveHub {
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let name = stream.name();
    let feed = LocalFeed::start(stream, events, shutdown.clone());
    let hub = LiveHub::new(
        name,
        Arc::new(feed),
        HubConfig { grace: settings.grace, tick_buffer: settings.tick_buffer, stale_after: settings.stale_after },
    );
    hub.spawn(receiver, shutdown);
    hub
}

/// Starts the hub with the feed the deployment calls for: with Redis, the replicas share one
/// upstream stream (run by the lease holder); without it, the stream runs in this process.
pub async fn start(
    stream: Arc<dyn MarketStream>,
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<LiveHub> {
    let Some(redis_url) = &config.redis_url else { return Ok(start_local(stream, &config.live, shutdown)) };
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let name = stream.name();
    let feed = replicas::RedisFeed::start(
        redis_url.expose(),
        &config.cache_namespace,
        stream,
        events,
        shutdown.clone(),
        &config.live_replicas,
    )
    .await?;
    let settings = &config.live;
    let hub = LiveHub::new(
        name,
        Arc::new(feed),
        HubConfig { grace: settings.grace, tick_buffer: settings.tick_buffer, stale_after: settings.stale_after },
    );
    hub.spawn(receiver, shutdown);
    Ok(hub)
}

/// What a subscriber can follow for one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Quote,
    Tick,
    /// The order book (iTick calls it depth).
    Depth,
    /// The bar of this interval as it forms.
    Kline(Interval),
}

/// One instrument on one channel: the unit of upstream subscription and of fan-out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topic {
    pub instrument: Instrument,
    pub channel: Channel,
}

/// One update pushed by a stream.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    Quote(Quote),
    Tick(Tick),
    OrderBook(OrderBook),
    /// The bar of `interval` starting at `bar.time`, as it stands now (it may update again
    /// until the next bar starts).
    Kline {
        symbol: Symbol,
        interval: Interval,
        bar: Kline,
        at: DateTime<Utc>,
    },
}

impl LiveEvent {
    /// The instrument and channel this event belongs to.
    pub fn key(&self) -> (&Symbol, Channel) {
        match self {
            Self::Quote(q) => (&q.symbol, Channel::Quote),
            Self::Tick(t) => (&t.symbol, Channel::Tick),
            Self::OrderBook(b) => (&b.symbol, Channel::Depth),
            Self::Kline { symbol, interval, .. } => (symbol, Channel::Kline(*interval)),
        }
    }

    /// The event as served: quotes and bars of what nothing trades (an index) carry no volume
    /// or turnover, whatever the stream sent (`market::trades_volume`).
    pub fn without_untraded_volume(self) -> Self {
        match self {
            Self::Quote(quote) => Self::Quote(quote.without_untraded_volume()),
            Self::Kline { symbol, interval, mut bar, at } => {
                crate::market::types::strip_untraded_volume(&symbol, std::slice::from_mut(&mut bar));
                Self::Kline { symbol, interval, bar, at }
            }
            other => other,
        }
    }

    /// When the upstream says this happened: data lag is now minus this.
    pub fn upstream_time(&self) -> DateTime<Utc> {
        match self {
            Self::Quote(q) => q.timestamp,
            Self::Tick(t) => t.timestamp,
            Self::OrderBook(b) => b.timestamp,
            Self::Kline { at, .. } => *at,
        }
    }
}

/// A change of what a stream should be subscribed to upstream.
#[derive(Clone, Debug)]
pub enum StreamCommand {
    Subscribe(Vec<Topic>),
    Unsubscribe(Vec<Topic>),
}

/// An upstream that pushes market data.
pub trait MarketStream: Send + Sync + 'static {
    /// Short name, as in `Quote.source` (`simulated`, `itick`).
    fn name(&self) -> &'static str;

    /// Runs the upstream side until `shutdown` is cancelled: connects (and reconnects with
    /// backoff), keeps the upstream subscriptions equal to the union of the commands received
    /// so far (batched within the upstream's limits, all re-sent after a reconnect), and sends
    /// every push, validated, to `events`. `events` is bounded: a full channel means the hub is
    /// behind, and the stream waits (it never buffers without bound).
    fn run(
        self: Arc<Self>,
        commands: mpsc::UnboundedReceiver<StreamCommand>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()>;
}

/// Where the hub's demand goes; events come back on the channel the feed was started with.
/// Both calls return at once (they queue work) and are idempotent per topic.
pub trait Feed: Send + Sync + 'static {
    /// The hub now has subscribers for these topics.
    fn want(&self, topics: Vec<Topic>);
    /// The hub no longer has subscribers for these topics (its grace period is over).
    fn release(&self, topics: Vec<Topic>);
}
