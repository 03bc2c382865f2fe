//! The hub's reference counting, grace period, conflation and tick lag, against a fake feed that
//! records what it is asked (a seam, not the logic under test). Tests of the grace period and
//! of staleness run on tokio's paused clock, stepped with `advance` (nothing else in the hub
//! keeps time): they are exact to the millisecond and wait for nothing real.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    live::{Channel, Feed, LiveEvent, Topic},
    market::{Instrument, Quote, Tick, TradingStatus},
    reference::{Symbol, service::AssetClass},
};

/// Records every call, as `want AAPL.US` / `release AAPL.US`.
#[derive(Default)]
struct RecordingFeed(Mutex<Vec<String>>);

impl RecordingFeed {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn record(&self, what: &str, topics: Vec<Topic>) {
        let names: Vec<&str> = topics.iter().map(|t| t.instrument.symbol.as_str()).collect();
        self.0.lock().unwrap().push(format!("{what} {}", names.join(",")));
    }
}

impl Feed for RecordingFeed {
    fn want(&self, topics: Vec<Topic>) {
        self.record("want", topics);
    }
    fn release(&self, topics: Vec<Topic>) {
        self.record("release", topics);
    }
}

const GRACE: Duration = Duration::from_millis(200);

fn hub(tick_buffer: usize) -> (LiveHub, Arc<RecordingFeed>, mpsc::Sender<LiveEvent>) {
    let feed = Arc::new(RecordingFeed::default());
    let hub = LiveHub::new(
        "test",
        feed.clone(),
        HubConfig { grace: GRACE, tick_buffer, stale_after: Duration::from_secs(3600) },
    );
    let (events, receiver) = mpsc::channel(1024);
    hub.spawn(receiver, CancellationToken::new());
    (hub, feed, events)
}

fn topic(symbol: &str, channel: Channel) -> Topic {
    let symbol = Symbol::parse(symbol).unwrap();
    let code = symbol.as_str().split('.').next().unwrap().to_owned();
    Topic {
        instrument: Instrument {
            symbol,
            asset_class: AssetClass::Stock,
            region: "US".into(),
            code,
            currency: "USD".into(),
            market: crate::market::calendar::Region::Us,
            listed_at: None,
        },
        channel,
    }
}

fn quote(symbol: &str, last: i64) -> LiveEvent {
    LiveEvent::Quote(Quote {
        symbol: Symbol::parse(symbol).unwrap(),
        last: Decimal::from(last),
        open: Decimal::ONE,
        high: Decimal::from(last.max(1)),
        low: Decimal::ONE,
        prev_close: Decimal::ONE,
        volume: Some(Decimal::ZERO),
        turnover: Some(Decimal::ZERO),
        timestamp: Utc::now() - chrono::Duration::milliseconds(250),
        trading_status: TradingStatus::Normal,
        source: "test",
        stale: false,
    })
}

fn tick(symbol: &str, price: i64) -> LiveEvent {
    LiveEvent::Tick(Tick {
        symbol: Symbol::parse(symbol).unwrap(),
        price: Decimal::from(price),
        volume: Decimal::ONE,
        timestamp: Utc::now(),
        direction: None,
        source: "simulated",
    })
}

fn last_price(event: &LiveEvent) -> Decimal {
    match event {
        LiveEvent::Quote(q) => q.last,
        LiveEvent::Tick(t) => t.price,
        other => panic!("unexpected {other:?}"),
    }
}

/// Lets the dispatcher run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock on by `by`, and lets the tasks due by then run (the grace timer is
/// armed by a task of its own: `settle` first, so that it has started before time moves).
async fn advance(by: Duration) {
    settle().await;
    tokio::time::advance(by).await;
    settle().await;
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn first_subscriber_wants_and_last_one_releases_after_the_grace_period() {
    let (hub, feed, _events) = hub(16);
    let aapl = topic("AAPL.US", Channel::Quote);
    let first = hub.subscribe(vec![aapl.clone(), aapl.clone()]);
    let second = hub.subscribe(vec![aapl.clone(), topic("MSFT.US", Channel::Quote)]);
    assert_eq!(feed.calls(), ["want AAPL.US", "want MSFT.US"], "one want per new topic, duplicates ignored");
    assert_eq!(hub.stats().subscribers, 3);

    drop(first);
    advance(GRACE * 2).await;
    assert_eq!(feed.calls().len(), 2, "AAPL still has a subscriber: nothing released");

    drop(second);
    advance(GRACE - MS).await;
    assert_eq!(feed.calls().len(), 2, "nothing released before the grace period is over");
    advance(MS).await;
    let mut calls = feed.calls();
    assert_eq!(calls.len(), 3, "released as the grace period ends: {calls:?}");
    let release = calls.pop().unwrap();
    assert!(release == "release AAPL.US,MSFT.US" || release == "release MSFT.US,AAPL.US", "{release}");
    assert_eq!(hub.stats(), HubStats { topics: 0, subscribers: 0, releases: 2 });
}

#[tokio::test(start_paused = true)]
async fn subscribing_again_within_the_grace_period_keeps_the_topic() {
    let (hub, feed, _events) = hub(16);
    let aapl = topic("AAPL.US", Channel::Quote);
    drop(hub.subscribe(vec![aapl.clone()]));
    let again = hub.subscribe(vec![aapl.clone()]);
    advance(GRACE * 3).await;
    assert_eq!(feed.calls(), ["want AAPL.US"], "no release, and no second want");
    drop(again);
    advance(GRACE).await;
    assert_eq!(feed.calls(), ["want AAPL.US", "release AAPL.US"]);
    // After the release, a new subscriber wants it afresh.
    let _third = hub.subscribe(vec![aapl]);
    assert_eq!(feed.calls().last().unwrap(), "want AAPL.US");
}

#[tokio::test]
async fn a_slow_quote_subscriber_gets_the_newest_value_not_a_backlog() {
    let (hub, _feed, events) = hub(16);
    let aapl = topic("AAPL.US", Channel::Quote);
    let mut slow = hub.subscribe(vec![aapl.clone()]);
    let (_, mut receiver) = slow.take_receivers().pop().unwrap();
    for price in 1..=100 {
        events.send(quote("AAPL.US", price)).await.unwrap();
    }
    settle().await;
    let event = receiver.next(&aapl).await.unwrap().unwrap();
    assert_eq!(last_price(&event), Decimal::from(100), "conflated to the newest");
    // Nothing else is pending: the next value is the next change.
    events.send(quote("AAPL.US", 101)).await.unwrap();
    let event = receiver.next(&aapl).await.unwrap().unwrap();
    assert_eq!(last_price(&event), Decimal::from(101));

    // A later subscriber gets the current value at once.
    let mut late = hub.subscribe(vec![aapl.clone()]);
    let (_, mut receiver) = late.take_receivers().pop().unwrap();
    let event = receiver.next(&aapl).await.unwrap().unwrap();
    assert_eq!(last_price(&event), Decimal::from(101));
}

#[tokio::test]
async fn ticks_arrive_in_order_and_a_subscriber_behind_the_buffer_is_told() {
    let (hub, _feed, events) = hub(4);
    let aapl = topic("AAPL.US", Channel::Tick);
    let mut keeping_up = hub.subscribe(vec![aapl.clone()]);
    let (_, mut fast) = keeping_up.take_receivers().pop().unwrap();
    let mut falling_behind = hub.subscribe(vec![aapl.clone()]);
    let (_, mut slow) = falling_behind.take_receivers().pop().unwrap();
    for price in 1..=3 {
        events.send(tick("AAPL.US", price)).await.unwrap();
    }
    settle().await;
    for price in 1..=3 {
        assert_eq!(last_price(&fast.next(&aapl).await.unwrap().unwrap()), Decimal::from(price));
    }
    for price in 4..=10 {
        events.send(tick("AAPL.US", price)).await.unwrap();
    }
    settle().await;
    let lag = slow.next(&aapl).await.unwrap().unwrap_err();
    assert_eq!(lag, TickLag { symbol: Symbol::parse("AAPL.US").unwrap(), missed: 6 });
}

#[tokio::test]
async fn events_without_subscribers_are_dropped_and_lag_is_measured() {
    let (hub, _feed, events) = hub(4);
    let aapl = topic("AAPL.US", Channel::Quote);
    events.send(quote("MSFT.US", 1)).await.unwrap();
    let mut subscription = hub.subscribe(vec![aapl.clone()]);
    events.send(quote("AAPL.US", 7)).await.unwrap();
    let (_, mut receiver) = subscription.take_receivers().pop().unwrap();
    assert_eq!(last_price(&receiver.next(&aapl).await.unwrap().unwrap()), Decimal::from(7));
    let lag = hub.lag();
    assert_eq!((lag.stream, lag.events), ("test", 2));
    // The quotes above are 250 ms old when sent.
    assert!(lag.max_ms >= 250 && lag.last_ms >= 250, "{lag:?}");
    assert_eq!(hub.stats().topics, 1, "the MSFT event created no topic");
}

fn stale_of(event: &LiveEvent) -> (Decimal, bool) {
    match event {
        LiveEvent::Quote(q) => (q.last, q.stale),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_quiet_quote_topic_is_re_sent_stale_once_per_silence() {
    let feed = Arc::new(RecordingFeed::default());
    let config = HubConfig { grace: GRACE, tick_buffer: 16, stale_after: Duration::from_secs(10) };
    let hub = LiveHub::new("test", feed, config);
    let (events, receiver) = mpsc::channel(16);
    hub.spawn(receiver, CancellationToken::new());
    let aapl = topic("AAPL.US", Channel::Quote);
    let mut subscription = hub.subscribe(vec![aapl.clone()]);
    let (_, mut rx) = subscription.take_receivers().remove(0);

    events.send(quote("AAPL.US", 10)).await.unwrap();
    assert_eq!(stale_of(&rx.next(&aapl).await.unwrap().unwrap()), (Decimal::from(10), false));
    // Nothing more arrives: the last quote comes again, marked stale, once the silence is long
    // enough (checked every quarter period), and only once.
    let started = tokio::time::Instant::now();
    assert_eq!(stale_of(&rx.next(&aapl).await.unwrap().unwrap()), (Decimal::from(10), true));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(10) && waited <= Duration::from_millis(12_500), "{waited:?}");
    let again = tokio::time::timeout(Duration::from_secs(60), rx.next(&aapl)).await;
    assert!(again.is_err(), "marked once per silence");

    // Fresh data clears it; a new silence marks it again.
    events.send(quote("AAPL.US", 11)).await.unwrap();
    assert_eq!(stale_of(&rx.next(&aapl).await.unwrap().unwrap()), (Decimal::from(11), false));
    assert_eq!(stale_of(&rx.next(&aapl).await.unwrap().unwrap()), (Decimal::from(11), true));
}
