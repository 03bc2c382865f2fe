//! The fan-out hub: one upstream event reaches every subscriber of its topic.
//!
//! # Reference counting and grace
//!
//! The hub counts subscribers per `Topic`. The first subscriber makes it call
//! [`Feed::want`]; when the last one leaves, the topic is kept for a grace period
//! (`FINQL_LIVE_GRACE_MS`) and released with [`Feed::release`] only if nobody subscribed again in
//! the meantime: a page reload or a client reconnect must not churn upstream subscriptions (iTick
//! counts them against a plan). Feed calls are made under the topic map's lock, so the feed sees
//! `want` and `release` of one topic in the order they happened.
//!
//! # Fan-out: why a `watch` slot for conflated channels and a `broadcast` ring for ticks
//!
//! Quotes, order books and forming bars are states: only the newest one matters, so a topic
//! keeps one `watch` slot holding an `Arc` of the newest event. Publishing replaces the slot and
//! wakes the waiting subscribers; a subscriber that is slow (or whose client is) reads the slot
//! when it gets round to it and sees the newest value, never a backlog. Memory per subscriber is
//! one receiver (a pointer and a version number), whatever its speed, and nothing is allocated
//! per subscriber per event: they all share the one `Arc`. A `broadcast` channel with skip-on-lag
//! would also conflate, but it makes a slow reader walk through (and count) stale values first
//! and keeps `capacity` events per topic alive; the slot keeps exactly one.
//!
//! Ticks are events, every one matters: a topic keeps a `broadcast` ring of `FINQL_LIVE_TICK_BUFFER`
//! shared `Arc`s. Each subscriber is a cursor into the ring (its bounded queue); one that falls
//! further behind than the ring is long gets `TickLag` and its subscription ends with an error
//! saying so, rather than silently missing trades or holding memory without bound.
//!
//! # The hot path
//!
//! One dispatcher task receives the feed's events and looks topics up in its own map (no lock);
//! it consults the shared topic map (a mutex touched otherwise only when subscriptions start and
//! end) only for a topic it has not seen yet. Data lag (now minus the upstream's timestamp) and
//! the arrival of the newest event are measured on every event into atomics, read with
//! [`LiveHub::lag`] and [`LiveHub::last_event_at`] (the freshness alarm's input).
//!
//! # When the upstream goes quiet: stale quotes
//!
//! A subscriber must not mistake a dead upstream for a quiet market. The dispatcher notes when
//! each topic last received an event; a quote topic that has received nothing for
//! `FINQL_LIVE_STALE_MS` has its last quote published again with `stale: true` (once per
//! silence: the next real event clears it). This is decided here, at the one place every
//! event passes, rather than by each stream or feed, so it covers every way the data can
//! stop: the iTick socket disconnected or silent past its silence timeout, the lease holder
//! gone or Redis cut (replicas), a stream that stopped pushing for any other reason. The price
//! is that a genuinely quiet instrument (a closed market) is marked stale too, which is true:
//! nothing newer is known. A `stale` quote is a state, not an error, so the subscription goes
//! on and resumes with fresh quotes when the upstream does; ending it with an error would make
//! every client reconnect into the same outage. Order-book and forming-bar subscriptions get
//! the same treatment per subscription (`live::graphql::marking_silence`: one topic each, so no
//! hub state is needed); trades have no last value to repeat.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use tokio::{
    sync::{broadcast, mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{Channel, Feed, LiveEvent, SharedEvent, Topic, delay::DelayMeter};
use crate::{market::calendar::Region, metrics::Held, reference::Symbol};

/// Settings of the hub.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// How long a topic without subscribers stays wanted upstream.
    pub grace: Duration,
    /// Length of each tick topic's ring: how far behind a ticks subscriber may fall.
    pub tick_buffer: usize,
    /// Silence after which a quote topic's last quote is re-sent marked `stale`.
    pub stale_after: Duration,
}

/// The live-data hub of one process. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    feed: Arc<dyn Feed>,
    config: HubConfig,
    /// Keyed as events are: an event names its symbol and channel, not the whole instrument.
    topics: Mutex<HashMap<TopicKey, TopicEntry>>,
    lag: LagMeter,
    /// Upstream releases made since start (for tests and observability).
    releases: AtomicU64,
    /// What delayed subscriptions hold (`live::delay`).
    delays: DelayMeter,
}

type TopicKey = (Symbol, Channel);

fn key_of(topic: &Topic) -> TopicKey {
    (topic.instrument.symbol.clone(), topic.channel)
}

struct TopicEntry {
    /// Shared with every subscription to it: a subscriber holds a pointer, not a copy.
    topic: Arc<Topic>,
    slot: Arc<TopicSlot>,
    subscribers: usize,
    /// Bumped whenever the subscriber count changes: a grace timer releases the topic only if
    /// nothing happened since it was started.
    generation: u64,
}

/// Where one topic's events go.
struct TopicSlot {
    fanout: Fanout,
    /// Set when the topic is released: the dispatcher then forgets it.
    closed: AtomicBool,
    /// When the dispatcher last published an event here (ms since it started).
    heard_ms: AtomicU64,
    /// Whether its last quote was re-sent as stale since then.
    marked_stale: AtomicBool,
    /// Values published to a `Latest` slot since it was made: a subscriber that reads value
    /// `n` after value `m` had `n - m - 1` overwritten unread (`finql_live_conflated_total`).
    published: Arc<AtomicU64>,
}

enum Fanout {
    Latest(watch::Sender<Option<Arc<SharedEvent>>>),
    Every(broadcast::Sender<Arc<SharedEvent>>),
}

impl TopicSlot {
    fn new(channel: Channel, tick_buffer: usize) -> Self {
        let fanout = match channel {
            Channel::Tick => Fanout::Every(broadcast::channel(tick_buffer).0),
            _ => Fanout::Latest(watch::channel(None).0),
        };
        Self {
            fanout,
            closed: AtomicBool::new(false),
            heard_ms: AtomicU64::new(0),
            marked_stale: AtomicBool::new(false),
            published: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The newest quote marked stale, if the topic holds a quote not yet marked.
    fn stale_quote(&self) -> Option<Arc<SharedEvent>> {
        let Fanout::Latest(tx) = &self.fanout else { return None };
        match tx.borrow().as_deref().map(|event| &**event) {
            Some(LiveEvent::Quote(quote)) if !quote.stale => {
                Some(SharedEvent::new(LiveEvent::Quote(crate::market::Quote { stale: true, ..quote.clone() })))
            }
            _ => None,
        }
    }

    fn publish(&self, event: Arc<SharedEvent>) {
        match &self.fanout {
            // `send_replace` stores the value even when no receiver is left.
            Fanout::Latest(tx) => {
                self.published.fetch_add(1, Ordering::Release);
                tx.send_replace(Some(event));
            }
            Fanout::Every(tx) => {
                let _ = tx.send(event);
            }
        }
    }
}

/// A ticks subscriber fell further behind than the topic's ring is long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickLag {
    pub symbol: Symbol,
    pub missed: u64,
}

/// One topic as a subscriber sees it.
pub enum TopicReceiver {
    /// The newest value (quotes, order books, forming bars); the slot's publication count, and
    /// where this subscriber is in it.
    Latest(watch::Receiver<Option<Arc<SharedEvent>>>, Arc<AtomicU64>, u64),
    /// Every event, from a bounded ring (ticks).
    Every(broadcast::Receiver<Arc<SharedEvent>>),
}

impl TopicReceiver {
    /// The next value: for `Latest`, the newest one not yet seen (at once, if the topic already
    /// had a value when the subscription started); `None` when the hub shut down.
    pub async fn next(&mut self, topic: &Topic) -> Option<Result<Arc<SharedEvent>, TickLag>> {
        match self {
            Self::Latest(rx, published, seen) => loop {
                rx.changed().await.ok()?;
                // Read before the value: a publication racing the read is then counted once,
                // as overwritten, at worst (the count is for dashboards, not for billing).
                let now = published.load(Ordering::Acquire);
                if let Some(event) = rx.borrow_and_update().clone() {
                    let overwritten = now.saturating_sub(*seen + 1);
                    if overwritten > 0 {
                        metrics::counter!("finql_live_conflated_total").increment(overwritten);
                    }
                    *seen = now;
                    return Some(Ok(event));
                }
            },
            Self::Every(rx) => match rx.recv().await {
                Ok(event) => Some(Ok(event)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some(Err(TickLag { symbol: topic.instrument.symbol.clone(), missed }))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}

/// A live subscription to some topics: dropping it gives them back to the hub.
pub struct Subscription {
    hub: LiveHub,
    held: Vec<Arc<Topic>>,
    /// One in `finql_subscriptions_active{kind}` while the subscription lives (its first
    /// topic's channel: a GraphQL subscription follows one channel).
    _active: Option<Held>,
    /// The topics and their receivers, in the order asked (duplicates removed).
    pub topics: Vec<(Arc<Topic>, TopicReceiver)>,
}

impl Subscription {
    /// Takes the receivers; the subscription still holds the topics until dropped.
    pub fn take_receivers(&mut self) -> Vec<(Arc<Topic>, TopicReceiver)> {
        std::mem::take(&mut self.topics)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let topics = std::mem::take(&mut self.held);
        self.hub.unsubscribe(topics);
    }
}

/// Data lag of one stream, as measured on arrival at the hub.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LagSnapshot {
    /// The stream's name (`simulated`, `itick`).
    pub stream: &'static str,
    /// Events received since start.
    pub events: u64,
    /// Lag of the latest event, in milliseconds.
    pub last_ms: u64,
    /// The largest lag seen since start, in milliseconds.
    pub max_ms: u64,
    /// Sum of all lags, in milliseconds (mean = sum / events).
    pub sum_ms: u64,
}

/// An event's `kind` label in `finql_live_events_total`.
fn event_kind(event: &LiveEvent) -> &'static str {
    match event {
        LiveEvent::Quote(_) => "quote",
        LiveEvent::Tick(_) => "tick",
        LiveEvent::OrderBook(_) => "order_book",
        LiveEvent::Kline { .. } => "kline",
    }
}

/// A channel's `kind` label in `finql_subscriptions_active`.
fn channel_kind(channel: Channel) -> &'static str {
    match channel {
        Channel::Quote => "quote",
        Channel::Tick => "tick",
        Channel::Depth => "order_book",
        Channel::Kline(_) => "kline",
    }
}

struct LagMeter {
    stream: &'static str,
    /// What `received_ms` counts from.
    epoch: Instant,
    /// When the newest event arrived: ms since `epoch`, plus one (0: none yet). Read by the
    /// freshness alarm (`live::freshness`).
    received_ms: AtomicU64,
    events: AtomicU64,
    last_ms: AtomicU64,
    max_ms: AtomicU64,
    sum_ms: AtomicU64,
}

impl LagMeter {
    fn record(&self, event: &LiveEvent) {
        // A clock ahead of ours is no lag (and must not wrap around).
        let lag = (Utc::now() - event.upstream_time()).num_milliseconds().max(0) as u64;
        self.events.fetch_add(1, Ordering::Relaxed);
        self.last_ms.store(lag, Ordering::Relaxed);
        self.max_ms.fetch_max(lag, Ordering::Relaxed);
        self.sum_ms.fetch_add(lag, Ordering::Relaxed);
        self.received_ms.store(self.epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }
}

/// Counts of the hub, for tests and observability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubStats {
    /// Topics currently wanted upstream (with subscribers, or within their grace period).
    pub topics: usize,
    /// Subscriptions summed over topics.
    pub subscribers: usize,
    /// Topics released upstream since start.
    pub releases: u64,
}

impl LiveHub {
    /// A hub whose demand goes to `feed`; [`LiveHub::run`] must then be given the events.
    pub fn new(stream: &'static str, feed: Arc<dyn Feed>, config: HubConfig) -> Self {
        let lag = LagMeter {
            stream,
            epoch: Instant::now(),
            received_ms: AtomicU64::new(0),
            events: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            max_ms: AtomicU64::new(0),
            sum_ms: AtomicU64::new(0),
        };
        Self {
            inner: Arc::new(Inner {
                feed,
                config,
                topics: Mutex::new(HashMap::new()),
                lag,
                releases: AtomicU64::new(0),
                delays: DelayMeter::default(),
            }),
        }
    }

    /// Spawns the dispatcher: events from `events` go to their topics until `shutdown`.
    pub fn spawn(&self, events: mpsc::Receiver<LiveEvent>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run(events, shutdown))
    }

    /// The dispatcher loop.
    pub async fn run(self, mut events: mpsc::Receiver<LiveEvent>, shutdown: CancellationToken) {
        // The dispatcher's own view of the topics: no lock per event.
        let mut known: HashMap<TopicKey, Arc<TopicSlot>> = HashMap::new();
        // Times of the last event per topic, in ms since this instant.
        let epoch = Instant::now();
        // Forget released topics now and then, so the map follows the live set.
        let mut prune = tokio::time::interval(Duration::from_secs(10));
        let stale_after = self.inner.config.stale_after;
        // Checked four times per period: a topic is marked at most a quarter period late.
        let mut stale_check = tokio::time::interval((stale_after / 4).max(Duration::from_millis(10)));
        stale_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                _ = prune.tick() => {
                    known.retain(|_, slot| !slot.closed.load(Ordering::Acquire));
                    continue;
                }
                _ = stale_check.tick() => {
                    let now = epoch.elapsed().as_millis() as u64;
                    let after = stale_after.as_millis() as u64;
                    for slot in known.values() {
                        // Only the dispatcher writes these two: relaxed is enough.
                        let quiet = now.saturating_sub(slot.heard_ms.load(Ordering::Relaxed)) >= after;
                        if quiet && !slot.closed.load(Ordering::Acquire) && !slot.marked_stale.swap(true, Ordering::Relaxed)
                            && let Some(stale) = slot.stale_quote()
                        {
                            slot.publish(stale);
                        }
                    }
                    continue;
                }
                () = shutdown.cancelled() => break,
            };
            self.inner.lag.record(&event);
            metrics::counter!("finql_live_events_total", "kind" => event_kind(&event)).increment(1);
            let (symbol, channel) = event.key();
            let key = (symbol.clone(), channel);
            let slot = match known.get(&key) {
                Some(slot) if !slot.closed.load(Ordering::Acquire) => Some(slot.clone()),
                _ => {
                    let found = self.lock().get(&key).map(|entry| entry.slot.clone());
                    match &found {
                        Some(slot) => known.insert(key, slot.clone()),
                        None => known.remove(&key),
                    };
                    found
                }
            };
            // An event for a topic nobody wants (released, or a stream's stray push) is dropped.
            if let Some(slot) = slot {
                if channel == Channel::Quote {
                    slot.heard_ms.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                    slot.marked_stale.store(false, Ordering::Relaxed);
                }
                slot.publish(SharedEvent::new(event.without_untraded_volume()));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicKey, TopicEntry>> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is
        // a single insert, remove or counter change), so a poisoned lock is still usable.
        self.inner.topics.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes to `topics` (duplicates are ignored). Topics new to the hub are wanted from
    /// the feed at once.
    pub fn subscribe(&self, topics: Vec<Topic>) -> Subscription {
        let mut unique: Vec<Topic> = Vec::with_capacity(topics.len());
        for topic in topics {
            if !unique.contains(&topic) {
                unique.push(topic);
            }
        }
        let mut receivers = Vec::with_capacity(unique.len());
        let mut held = Vec::with_capacity(unique.len());
        let mut wanted = Vec::new();
        let mut map = self.lock();
        for topic in unique {
            let entry = map.entry(key_of(&topic)).or_insert_with(|| {
                wanted.push(topic.clone());
                TopicEntry {
                    slot: Arc::new(TopicSlot::new(topic.channel, self.inner.config.tick_buffer)),
                    topic: Arc::new(topic),
                    subscribers: 0,
                    generation: 0,
                }
            });
            entry.subscribers += 1;
            entry.generation += 1;
            let receiver = match &entry.slot.fanout {
                Fanout::Latest(tx) => {
                    let mut rx = tx.subscribe();
                    let published = entry.slot.published.load(Ordering::Acquire);
                    // A subscriber to a topic that already has a value gets it at once.
                    let seen = if rx.borrow().is_some() {
                        rx.mark_changed();
                        published.saturating_sub(1)
                    } else {
                        published
                    };
                    TopicReceiver::Latest(rx, entry.slot.published.clone(), seen)
                }
                Fanout::Every(tx) => TopicReceiver::Every(tx.subscribe()),
            };
            receivers.push((entry.topic.clone(), receiver));
            held.push(entry.topic.clone());
        }
        if !wanted.is_empty() {
            self.inner.feed.want(wanted);
        }
        drop(map);
        let active = held.first().map(|topic| {
            Held::new(metrics::gauge!("finql_subscriptions_active", "kind" => channel_kind(topic.channel)))
        });
        Subscription { hub: self.clone(), held, topics: receivers, _active: active }
    }

    /// Gives topics back; those left without subscribers are released after the grace period.
    fn unsubscribe(&self, topics: Vec<Arc<Topic>>) {
        let mut idle = Vec::new();
        {
            let mut map = self.lock();
            for topic in topics {
                if let Some(entry) = map.get_mut(&key_of(&topic)) {
                    entry.subscribers = entry.subscribers.saturating_sub(1);
                    entry.generation += 1;
                    if entry.subscribers == 0 {
                        idle.push((topic, entry.generation));
                    }
                }
            }
        }
        if idle.is_empty() {
            return;
        }
        let hub = self.clone();
        let grace = self.inner.config.grace;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(grace).await;
                    hub.release_idle(idle);
                });
            }
            // No runtime (the process is ending): nothing will wait for the grace period.
            Err(_) => hub.release_idle(idle),
        }
    }

    /// Releases the topics still idle since the given generation.
    fn release_idle(&self, idle: Vec<(Arc<Topic>, u64)>) {
        let mut map = self.lock();
        let mut released = Vec::new();
        for (topic, generation) in idle {
            let key = key_of(&topic);
            let still_idle = map.get(&key).is_some_and(|e| e.subscribers == 0 && e.generation == generation);
            if still_idle && let Some(entry) = map.remove(&key) {
                entry.slot.closed.store(true, Ordering::Release);
                released.push(Arc::unwrap_or_clone(entry.topic));
            }
        }
        if !released.is_empty() {
            self.inner.releases.fetch_add(released.len() as u64, Ordering::Relaxed);
            self.inner.feed.release(released);
        }
    }

    /// Data lag of the stream feeding this hub.
    pub fn lag(&self) -> LagSnapshot {
        let lag = &self.inner.lag;
        LagSnapshot {
            stream: lag.stream,
            events: lag.events.load(Ordering::Relaxed),
            last_ms: lag.last_ms.load(Ordering::Relaxed),
            max_ms: lag.max_ms.load(Ordering::Relaxed),
            sum_ms: lag.sum_ms.load(Ordering::Relaxed),
        }
    }

    /// When the newest event of the stream reached this hub (`None`: none yet).
    pub fn last_event_at(&self) -> Option<Instant> {
        let lag = &self.inner.lag;
        match lag.received_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(lag.epoch + Duration::from_millis(ms - 1)),
        }
    }

    /// The markets of the instruments wanted upstream now (with subscribers, or within their
    /// grace period), each once: what the stream is expected to be pushing.
    pub fn markets(&self) -> Vec<Region> {
        let mut markets: Vec<Region> = Vec::new();
        for entry in self.lock().values() {
            if !markets.contains(&entry.topic.instrument.market) {
                markets.push(entry.topic.instrument.market);
            }
        }
        markets
    }

    /// The memory delayed subscriptions of this hub hold, measured.
    pub fn delays(&self) -> &DelayMeter {
        &self.inner.delays
    }

    pub fn stats(&self) -> HubStats {
        let map = self.lock();
        HubStats {
            topics: map.len(),
            subscribers: map.values().map(|e| e.subscribers).sum(),
            releases: self.inner.releases.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
