//! Replicas sharing one upstream stream through Redis (`live::replicas::RedisFeed`). Runs when
//! `TEST_REDIS_URL` is set (CI sets it); passes trivially, saying so, otherwise.
//!
//! Each test starts two or three `RedisFeed`s in this process, as separate replicas would, each
//! with its own hub channel and its own fake upstream: a `MarketStream` that records what it
//! is subscribed to and pushes the events a test hands it. Every fake of a test shares one
//! counter of running streams, so any moment with two upstream connections is caught.

use std::{
    collections::HashSet,
    str::FromStr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use chrono::{DateTime, Utc};
use finql::{
    config::LiveReplicaSettings,
    live::{Channel, Feed, LiveEvent, Topic, replicas::RedisFeed},
    market::{BookLevel, Instrument, Interval, Kline, OrderBook, Quote, Tick, TickDirection, TradingStatus},
    reference::{Symbol, service::AssetClass},
};
use rust_decimal::Decimal;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::helpers::JWT_SECRET;

use self::fakes::{FakeUpstream, RedisProxy, Running, label};

/// Also used by `abuse::credential_stuffing` (a Redis that goes away).
pub(crate) mod fakes;
mod restart;

/// Short, so that expiry and takeover happen within a test; long enough for a loaded machine.
const TTL: Duration = Duration::from_millis(400);

fn namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// One replica: its feed, its hub's event channel, its upstream, its shutdown signal.
struct TestReplica {
    feed: RedisFeed,
    events: mpsc::Receiver<LiveEvent>,
    upstream: Arc<FakeUpstream>,
    shutdown: CancellationToken,
}

async fn replica(redis: &str, namespace: &str, running: &Arc<Running>, ttl: Duration) -> TestReplica {
    if std::env::var("TEST_LOG").is_ok() {
        let config = finql::Config::from_lookup(|k| (k == "JWT_SECRET").then(|| JWT_SECRET.to_owned()));
        finql::telemetry::init(&config.expect("config"));
    }
    let upstream = FakeUpstream::new(running);
    let (sender, events) = mpsc::channel(1024);
    let shutdown = CancellationToken::new();
    let feed =
        RedisFeed::start(redis, namespace, upstream.clone(), sender, shutdown.clone(), &LiveReplicaSettings::new(ttl))
            .await
            .expect("RedisFeed starts");
    TestReplica { feed, events, upstream, shutdown }
}

fn topic(symbol: &str, channel: Channel) -> Topic {
    let symbol = Symbol::parse(symbol).unwrap();
    let text = symbol.to_string();
    let (code, region) = text.split_once('.').unwrap_or((&text, "US"));
    Topic {
        instrument: Instrument {
            symbol: symbol.clone(),
            asset_class: AssetClass::Stock,
            region: region.into(),
            code: code.into(),
            currency: "USD".into(),
            market: finql::market::calendar::Region::Us,
            listed_at: None,
        },
        channel,
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn quote(symbol: &str, last: &str) -> Quote {
    Quote {
        symbol: Symbol::parse(symbol).unwrap(),
        last: dec(last),
        open: dec("0.1"),
        high: dec("190.0100"),
        low: dec("0.2"),
        prev_close: dec("188.00"),
        volume: Some(dec("1234567")),
        turnover: Some(dec("234567890.12")),
        timestamp: DateTime::parse_from_rfc3339("2026-11-24T15:30:01.123456789Z").unwrap().with_timezone(&Utc),
        trading_status: TradingStatus::Normal,
        source: "itick",
        stale: false,
    }
}

/// Polls `condition` every 10 ms for up to `within`; true as soon as it holds.
async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    crate::helpers::poll(within, async || condition()).await.is_some()
}

/// The index of the one replica running its stream, once one does.
async fn holder(replicas: &[&TestReplica]) -> usize {
    assert!(
        eventually(Duration::from_secs(5), || replicas.iter().any(|r| r.upstream.is_running())).await,
        "no replica took the lease"
    );
    let running: Vec<usize> = (0..replicas.len()).filter(|&i| replicas[i].upstream.is_running()).collect();
    assert_eq!(running.len(), 1, "exactly one replica runs the upstream");
    running[0]
}

async fn next_event(replica: &mut TestReplica) -> LiveEvent {
    tokio::time::timeout(Duration::from_secs(5), replica.events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the feed is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_runs_the_upstream() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let a = replica(&redis, &ns, &running, TTL).await;
    let b = replica(&redis, &ns, &running, TTL).await;
    let c = replica(&redis, &ns, &running, TTL).await;
    let first = holder(&[&a, &b, &c]).await;
    // Several renewals later, still the same single holder, never restarted (real time: the
    // lease lives in Redis, on Redis's clock, and stability over it is the behaviour).
    tokio::time::sleep(TTL * 3).await;
    assert_eq!(holder(&[&a, &b, &c]).await, first);
    assert_eq!(a.upstream.starts() + b.upstream.starts() + c.upstream.starts(), 1);
    assert_eq!(running.max.load(Ordering::SeqCst), 1, "never two upstream connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_wanted_by_another_replica_is_streamed_by_the_holder_and_reaches_it() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let a = replica(&redis, &ns, &running, TTL).await;
    let b = replica(&redis, &ns, &running, TTL).await;
    let (mut holding, mut other) = if holder(&[&a, &b]).await == 0 { (a, b) } else { (b, a) };

    let wanted = topic("AAPL.US", Channel::Quote);
    other.feed.want(vec![wanted.clone()]);
    assert!(
        eventually(Duration::from_secs(3), || holding.upstream.subscribed().contains(&label(&wanted))).await,
        "the holder subscribes upstream to what the other replica wants"
    );
    let sent = quote("AAPL.US", "189.9800");
    assert!(holding.upstream.emit(LiveEvent::Quote(sent.clone())).await);
    match next_event(&mut other).await {
        LiveEvent::Quote(received) => assert_eq!(received, sent, "decimals, time and source survive the trip"),
        event => panic!("expected a quote, got {event:?}"),
    }

    // The holder's own hub does not want the topic: it gets nothing (an absence: real time).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(holding.events.try_recv().is_err(), "events go only to replicas that want them");

    // Once the holder wants it too, both receive it through the same path.
    holding.feed.want(vec![wanted.clone()]);
    // A fixed wait: nothing shows that the holder's hub now listens on the topic's channel.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = quote("AAPL.US", "190.01");
    assert!(holding.upstream.emit(LiveEvent::Quote(again.clone())).await);
    for replica in [&mut holding, &mut other] {
        match next_event(replica).await {
            LiveEvent::Quote(received) => assert_eq!(received.last.to_string(), "190.01"),
            event => panic!("expected a quote, got {event:?}"),
        }
    }
    assert_eq!(running.max.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_crosses_redis_exactly() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let mut only = replica(&redis, &ns, &running, TTL).await;
    holder(&[&only]).await;
    let at = DateTime::parse_from_rfc3339("2026-11-24T15:30:01.987654321Z").unwrap().with_timezone(&Utc);
    let symbol = Symbol::parse("700.HK").unwrap();
    let events = vec![
        LiveEvent::Quote(quote("700.HK", "0.30000000000000000001")),
        LiveEvent::Tick(Tick {
            symbol: symbol.clone(),
            price: dec("412.600"),
            volume: dec("0.0001"),
            timestamp: at,
            direction: Some(TickDirection::Buy),
            source: "simulated",
        }),
        LiveEvent::OrderBook(OrderBook {
            symbol: symbol.clone(),
            bids: vec![BookLevel { price: dec("412.4"), volume: dec("1200"), orders: Some(7) }],
            asks: vec![BookLevel { price: dec("412.80"), volume: dec("300"), orders: None }],
            timestamp: at,
        }),
        LiveEvent::Kline {
            symbol: symbol.clone(),
            interval: Interval::OneMinute,
            bar: Kline {
                time: at,
                open: dec("412.0"),
                high: dec("413.25"),
                low: dec("411.995"),
                close: dec("412.6"),
                volume: Some(dec("10500")),
                turnover: Some(dec("4332000.50")),
                source: "simulated",
            },
            at,
        },
    ];
    only.feed.want(vec![
        topic("700.HK", Channel::Quote),
        topic("700.HK", Channel::Tick),
        topic("700.HK", Channel::Depth),
        topic("700.HK", Channel::Kline(Interval::OneMinute)),
    ]);
    assert!(eventually(Duration::from_secs(3), || only.upstream.subscribed().len() == 4).await);
    for event in events {
        assert!(only.upstream.emit(event.clone()).await);
        let received = next_event(&mut only).await;
        // Debug shows every field, decimals with their scale: equal text is an exact trip.
        assert_eq!(format!("{received:?}"), format!("{event:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_by_every_replica_unsubscribes_upstream() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let a = replica(&redis, &ns, &running, TTL).await;
    let b = replica(&redis, &ns, &running, TTL).await;
    let holding = if holder(&[&a, &b]).await == 0 { &a } else { &b };
    let shared = topic("MSFT.US", Channel::Tick);
    let key = label(&shared);
    a.feed.want(vec![shared.clone()]);
    b.feed.want(vec![shared.clone()]);
    assert!(eventually(Duration::from_secs(3), || holding.upstream.subscribed().contains(&key)).await);

    a.feed.release(vec![shared.clone()]);
    // Several heartbeats later it is still subscribed: B still wants it (stability over Redis's
    // TTL: real time).
    tokio::time::sleep(TTL).await;
    assert!(holding.upstream.subscribed().contains(&key), "still wanted by one replica");

    b.feed.release(vec![shared.clone()]);
    assert!(
        eventually(Duration::from_secs(3), || !holding.upstream.subscribed().contains(&key)).await,
        "unsubscribed upstream once nobody wants it"
    );
    assert!(holding.upstream.is_running(), "the stream itself keeps running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holder_is_replaced_and_the_union_of_demand_resubscribed() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let mut replicas = vec![
        replica(&redis, &ns, &running, TTL).await,
        replica(&redis, &ns, &running, TTL).await,
        replica(&redis, &ns, &running, TTL).await,
    ];
    let first = holder(&replicas.iter().collect::<Vec<_>>()).await;
    let crashed = replicas.remove(first);
    let (b, c) = (&replicas[0], &replicas[1]);
    let (only_crashed, only_b, only_c) =
        (topic("NVDA.US", Channel::Quote), topic("AAPL.US", Channel::Quote), topic("AAPL.US", Channel::Depth));
    crashed.feed.want(vec![only_crashed.clone()]);
    b.feed.want(vec![only_b.clone()]);
    c.feed.want(vec![only_c.clone()]);
    let all: HashSet<String> = [&only_crashed, &only_b, &only_c].into_iter().map(label).collect();
    assert!(eventually(Duration::from_secs(3), || crashed.upstream.subscribed() == all).await);

    // A crash: no lease release, no demand withdrawal.
    let crashed_upstream = crashed.upstream.clone();
    drop(crashed);
    let crashed_at = Instant::now();
    assert!(eventually(Duration::from_secs(1), || !crashed_upstream.is_running()).await, "the dead stream stops");
    let survivors = [b, c];
    assert!(
        eventually(Duration::from_secs(5), || survivors.iter().any(|r| r.upstream.is_running())).await,
        "another replica takes over"
    );
    let takeover = crashed_at.elapsed();
    // The lease expires one TTL after its last renewal; bidders try every TTL/3. The bound
    // leaves room for a loaded machine while still ruling out anything but lease expiry.
    assert!(takeover < TTL * 4, "took over after {takeover:?} with a {TTL:?} lease");
    let new = survivors.iter().find(|r| r.upstream.is_running()).unwrap();

    // The new holder subscribes the union of live demand; the crashed replica's demand expires.
    let live: HashSet<String> = [&only_b, &only_c].into_iter().map(label).collect();
    assert!(
        eventually(Duration::from_secs(3), || new.upstream.subscribed() == live).await,
        "subscribed {:?}, expected {live:?}",
        new.upstream.subscribed()
    );
    assert_eq!(running.max.load(Ordering::SeqCst), 1, "never two upstream connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replicas_demand_expires() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let a = replica(&redis, &ns, &running, TTL).await;
    let b = replica(&redis, &ns, &running, TTL).await;
    let (holding, other) = if holder(&[&a, &b]).await == 0 { (a, b) } else { (b, a) };
    let wanted = topic("TSLA.US", Channel::Kline(Interval::FiveMinutes));
    other.feed.want(vec![wanted.clone()]);
    assert!(eventually(Duration::from_secs(3), || holding.upstream.subscribed().contains(&label(&wanted))).await);
    let demand_key = format!("{ns}:live:demand:{}", other.feed.replica_id());
    assert!(key_exists(&redis, &demand_key).await);

    drop(other);
    assert!(
        eventually(Duration::from_secs(3), || holding.upstream.subscribed().is_empty()).await,
        "the crashed replica's demand expired and the holder unsubscribed"
    );
    assert!(!key_exists(&redis, &demand_key).await);
    assert!(holding.upstream.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_hands_the_lease_over_at_once() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    // A long lease: only an explicit release lets the other replica in quickly.
    let long = Duration::from_secs(6);
    let a = replica(&redis, &ns, &running, long).await;
    let b = replica(&redis, &ns, &running, long).await;
    let (holding, other) = if holder(&[&a, &b]).await == 0 { (a, b) } else { (b, a) };
    let wanted = topic("700.HK", Channel::Quote);
    holding.feed.want(vec![wanted.clone()]);
    other.feed.want(vec![wanted.clone()]);
    assert!(eventually(Duration::from_secs(3), || holding.upstream.subscribed().contains(&label(&wanted))).await);

    holding.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), holding.feed.stopped()).await.expect("stops cleanly");
    assert!(!holding.upstream.is_running());
    assert!(!key_exists(&redis, &format!("{ns}:live:demand:{}", holding.feed.replica_id())).await);
    // The other replica bids every TTL/3 (2 s): it holds within one heartbeat, well before the
    // 6 s lease could have expired, and subscribes what it wants.
    assert!(
        eventually(Duration::from_secs(4), || other.upstream.subscribed().contains(&label(&wanted))).await,
        "the other replica took the released lease"
    );
    assert_eq!(running.max.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_loses_its_lease_stops_its_stream_at_once() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let a = replica(&redis, &ns, &running, TTL).await;
    holder(&[&a]).await;
    // Another process takes the lease (as after a long pause of the holder).
    let mut conn = redis::Client::open(redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let lease = format!("{ns}:live:lease");
    let _: () = redis::cmd("SET").arg(&lease).arg("intruder").arg("PX").arg(1500).query_async(&mut conn).await.unwrap();
    assert!(eventually(TTL * 2, || !a.upstream.is_running()).await, "the replica stops streaming at its next renewal");
    // When the intruder's lease expires, the replica takes it back.
    assert!(eventually(Duration::from_secs(5), || a.upstream.is_running()).await);
    assert_eq!(a.upstream.starts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_goes_away_the_holder_stops_and_events_resume_when_it_returns() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let (ns, running) = (namespace(), Arc::new(Running::default()));
    let proxy = RedisProxy::start(&redis).await;
    // A reaches Redis through a proxy the test can cut; B reaches it directly.
    let mut a = replica(&proxy.url, &ns, &running, TTL).await;
    holder(&[&a]).await;
    let b = replica(&redis, &ns, &running, TTL).await;
    let wanted = topic("AAPL.US", Channel::Quote);
    a.feed.want(vec![wanted.clone()]);
    assert!(eventually(Duration::from_secs(3), || a.upstream.subscribed().contains(&label(&wanted))).await);
    assert!(a.upstream.emit(LiveEvent::Quote(quote("AAPL.US", "1.5"))).await);
    next_event(&mut a).await;

    proxy.cut();
    assert!(
        eventually(TTL * 3, || !a.upstream.is_running()).await,
        "a holder cut off from Redis stops its stream once its lease may have expired"
    );
    assert!(eventually(Duration::from_secs(5), || b.upstream.is_running()).await, "B takes over");
    // A's demand expires during the outage (A cannot refresh it)...
    let demand_key = format!("{ns}:live:demand:{}", a.feed.replica_id());
    let expired = async || !key_exists(&redis, &demand_key).await;
    crate::helpers::within(Duration::from_secs(5), "A's demand expires while A cannot reach Redis", expired).await;
    assert!(
        eventually(Duration::from_secs(3), || !b.upstream.subscribed().contains(&label(&wanted))).await,
        "the new holder does not stream demand that expired"
    );
    // ...and A writes it again when it reaches Redis: the new holder streams it.
    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || b.upstream.subscribed().contains(&label(&wanted))).await,
        "A's demand is back in Redis and the new holder streams it"
    );
    assert!(!a.upstream.is_running(), "A does not take the lease back");
    // A's pub/sub reconnects with backoff: events reach it again within seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        assert!(b.upstream.emit(LiveEvent::Quote(quote("AAPL.US", "2.5"))).await);
        if let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(200), a.events.recv()).await {
            break event;
        }
        assert!(Instant::now() < deadline, "no event reached A after Redis came back");
    };
    assert!(matches!(received, LiveEvent::Quote(q) if q.last.to_string() == "2.5"));
}

async fn key_exists(redis: &str, key: &str) -> bool {
    let mut conn = redis::Client::open(redis).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS").arg(key).query_async::<i64>(&mut conn).await.unwrap() == 1
}
