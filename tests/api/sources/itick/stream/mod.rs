//! The iTick WebSocket stream (`finql::sources::itick::ItickStream`), driven through
//! `MarketStream::run` with channels, against the fake iTick WebSocket server: delivery,
//! batching, the 500-symbol split, unsubscribes, heartbeats, reconnects, silence, auth failures,
//! the old auth message, and validation. Heartbeat and silence run in tens or hundreds of
//! milliseconds; waits poll for a state with a generous deadline (no timing assertions).

mod harness;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use finql::{
    live::{Channel, LiveEvent, StreamCommand},
    market::Interval,
    sources::itick::{ItickStream, ItickStreamConfig, stream::ConnectionState},
};
use serde_json::json;

use self::harness::*;

use crate::{
    helpers::eventually,
    sources::itick::fake_ws::{FakeItickWs, TOKEN, number},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_become_live_events_with_exact_decimals() {
    let fake = FakeItickWs::start().await;
    let kline = Channel::Kline(Interval::OneMinute);
    let mut stream = Running::start(
        config(&fake),
        vec![StreamCommand::Subscribe(vec![
            topic("AAPL.US", Channel::Quote),
            topic("AAPL.US", Channel::Depth),
            topic("700.HK", Channel::Tick),
            topic("CRYPTO:BTCUSDT", kline),
            topic("FX:EURUSD", Channel::Quote),
        ])],
    );
    let expected_stock: BTreeSet<_> = [sub("AAPL$US", "quote"), sub("AAPL$US", "depth"), sub("700$HK", "tick")].into();
    eventually("all subscriptions", || {
        fake.subscribed("stock") == expected_stock
            && fake.subscribed("crypto") == [sub("BTCUSDT$BA", "kline@1")].into()
            && fake.subscribed("forex") == [sub("EURUSD$GB", "quote")].into()
    })
    .await;
    assert_eq!(stream.stream.stats().connected_endpoints(), ["crypto", "forex", "stock"]);

    assert_eq!(fake.push_quote("AAPL", "US", "189.98"), 1);
    let LiveEvent::Quote(quote) = stream.next_event().await else { panic!("expected a quote") };
    assert_eq!((quote.symbol.as_str(), quote.last.to_string().as_str()), ("AAPL.US", "189.98"));
    assert_eq!(quote.turnover.unwrap().to_string(), "250000.5");
    assert_eq!(quote.source, "itick");

    // iTick may write the Hong Kong code with leading zeros.
    let now = chrono::Utc::now().timestamp_millis();
    let tick = json!({"code": 1, "data": {"s": "00700", "r": "HK", "type": "tick", "ld": number("388.2"), "v": 300, "t": now, "d": 1}});
    assert_eq!(fake.push_raw("stock", tick), 1);
    let LiveEvent::Tick(tick) = stream.next_event().await else { panic!("expected a tick") };
    assert_eq!((tick.symbol.as_str(), tick.price.to_string().as_str()), ("700.HK", "388.2"));
    assert_eq!(tick.volume.to_string(), "300");

    fake.push_depth("AAPL", "US", &[("190.02", 5), ("190.01", 3)], &[("189.97", 2), ("189.98", 4)]);
    let LiveEvent::OrderBook(book) = stream.next_event().await else { panic!("expected a book") };
    assert_eq!(book.symbol.as_str(), "AAPL.US");
    assert_eq!(book.asks.iter().map(|l| l.price.to_string()).collect::<Vec<_>>(), ["190.01", "190.02"]);
    assert_eq!(book.bids.iter().map(|l| l.price.to_string()).collect::<Vec<_>>(), ["189.98", "189.97"]);

    let start = now - now.rem_euclid(60_000);
    fake.push_kline("BTCUSDT", "BA", 1, start, ["64000.5", "64010.25", "63990", "64005.75"]);
    let LiveEvent::Kline { symbol, interval, bar, .. } = stream.next_event().await else { panic!("expected a bar") };
    assert_eq!((symbol.as_str(), interval), ("CRYPTO:BTCUSDT", Interval::OneMinute));
    assert_eq!((bar.close.to_string(), bar.high.to_string()), ("64005.75".into(), "64010.25".into()));
    assert_eq!(bar.time.timestamp_millis(), start);

    fake.push_quote("EURUSD", "GB", "1.08345");
    let LiveEvent::Quote(fx) = stream.next_event().await else { panic!("expected a quote") };
    assert_eq!((fx.symbol.as_str(), fx.last.to_string().as_str()), ("FX:EURUSD", "1.08345"));

    // Counted once the hub has taken it, which may be just after we see it.
    eventually("five events counted", || stream.stream.stats().events == 5).await;
    let stats = stream.stream.stats();
    assert_eq!(stats.subscribed_topics, 5);
    assert!(stats.newest_upstream_time.is_some_and(|t| t.timestamp_millis() >= now));
    assert_eq!(stats.rejected_pushes, 0);

    // Shutdown closes every connection.
    stream.stop().await;
    eventually("connections closed", || open_anywhere(&fake) == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_batched_into_one_subscribe_message() {
    let fake = FakeItickWs::start().await;
    // Three commands queued together, as a burst of new subscribers would send them.
    let stream = Running::start(
        config(&fake),
        vec![
            StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)]),
            StreamCommand::Subscribe(vec![topic("MSFT.US", Channel::Quote), topic("700.HK", Channel::Quote)]),
            StreamCommand::Subscribe(vec![topic("NVDA.US", Channel::Quote)]),
        ],
    );
    eventually("four subscriptions", || fake.subscribed("stock").len() == 4).await;
    let messages = fake.messages("subscribe");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["types"], "quote");
    assert_eq!(params(&messages[0]), ["AAPL$US", "MSFT$US", "700$HK", "NVDA$US"].map(String::from).into());

    // A live connection: one command with many topics is one message too.
    stream.send(StreamCommand::Subscribe(
        ["TSLA.US", "AMZN.US", "META.US"].iter().map(|s| topic(s, Channel::Quote)).collect(),
    ));
    eventually("seven subscriptions", || fake.subscribed("stock").len() == 7).await;
    let messages = fake.messages("subscribe");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(params(&messages[1]), ["TSLA$US", "AMZN$US", "META$US"].map(String::from).into());
    assert_eq!(fake.connections_opened("stock"), 1);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_500_symbols_are_split_over_as_few_connections_as_needed() {
    let fake = FakeItickWs::start().await;
    let symbol = |i: usize| format!("S{i}.US");
    let topics = |range: std::ops::Range<usize>| range.map(|i| topic(&symbol(i), Channel::Quote)).collect::<Vec<_>>();
    let stream = Running::start(config(&fake), vec![StreamCommand::Subscribe(topics(0..1200))]);
    eventually("1200 symbols on 3 connections", || {
        fake.open_connections("stock") == 3 && fake.subscribed("stock").len() == 1200
    })
    .await;
    assert_eq!(fake.connections_opened("stock"), 3, "never more connections than needed");
    for subscriptions in fake.subscriptions("stock") {
        assert!(subscriptions.len() <= 500, "{} symbols on one connection", subscriptions.len());
    }
    for message in fake.messages("subscribe") {
        assert!(params(&message).len() <= 500);
    }
    let stats = stream.stream.stats();
    assert_eq!(stats.subscribe_errors, 0, "the fake refuses more than 500 symbols per connection");
    assert_eq!(stats.connections.len(), 3);

    // Down to 400 symbols: one connection is enough; the others are merged and closed.
    stream.send(StreamCommand::Unsubscribe(topics(0..800)));
    let remaining: BTreeSet<_> = (800..1200).map(|i| sub(&format!("S{i}$US"), "quote")).collect();
    eventually("400 symbols on 1 connection", || {
        fake.open_connections("stock") == 1 && fake.subscribed("stock") == remaining
    })
    .await;
    let stats = stream.stream.stats();
    assert_eq!(stats.subscribed_topics, 400);
    assert_eq!(stats.subscribe_errors, 0);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_are_sent_upstream() {
    let fake = FakeItickWs::start().await;
    let stream = Running::start(
        config(&fake),
        vec![StreamCommand::Subscribe(vec![
            topic("AAPL.US", Channel::Quote),
            topic("AAPL.US", Channel::Tick),
            topic("MSFT.US", Channel::Quote),
        ])],
    );
    eventually("three subscriptions", || fake.subscribed("stock").len() == 3).await;
    stream.send(StreamCommand::Unsubscribe(vec![topic("AAPL.US", Channel::Tick)]));
    eventually("AAPL ticks unsubscribed", || {
        fake.subscribed("stock") == [sub("AAPL$US", "quote"), sub("MSFT$US", "quote")].into()
    })
    .await;
    assert_eq!(fake.messages("unsubscribe"), [json!({"ac": "unsubscribe", "params": "AAPL$US", "types": "tick"})]);

    // Nothing wanted: the connection is closed rather than kept idle.
    stream.send(StreamCommand::Unsubscribe(vec![topic("AAPL.US", Channel::Quote), topic("MSFT.US", Channel::Quote)]));
    eventually("the connection closed", || fake.open_connections("stock") == 0).await;
    eventually("no connection in the stats", || stream.stream.stats().connections.is_empty()).await;
    assert_eq!(stream.stream.stats().subscribed_topics, 0);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_sent_and_pongs_keep_the_connection_alive() {
    let fake = FakeItickWs::start().await;
    let mut config = config(&fake);
    config.ping_interval = Duration::from_millis(40);
    config.silence_timeout = Duration::from_millis(800);
    let stream = Running::start(config, vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    // 40 pings span well over the silence timeout: only the pongs can have kept it alive.
    eventually("40 pings and pongs", || {
        fake.messages("ping").len() >= 40 && stream.stream.stats().pongs_received >= 40
    })
    .await;
    let ping = &fake.messages("ping")[0];
    let sent_ms: i64 = ping["params"].as_str().unwrap().parse().expect("ms in params");
    assert!((chrono::Utc::now().timestamp_millis() - sent_ms).abs() < 60_000, "{ping}");
    let stats = stream.stream.stats();
    assert_eq!((stats.reconnects, fake.connections_opened("stock")), (0, 1));
    assert!(stats.pings_sent >= 40);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reopened_with_everything_resubscribed() {
    let fake = FakeItickWs::start().await;
    let mut stream = Running::start(
        config(&fake),
        vec![StreamCommand::Subscribe(vec![
            topic("AAPL.US", Channel::Quote),
            topic("700.HK", Channel::Tick),
            topic("CRYPTO:BTCUSDT", Channel::Quote),
        ])],
    );
    let stock: BTreeSet<_> = [sub("AAPL$US", "quote"), sub("700$HK", "tick")].into();
    let crypto: BTreeSet<_> = [sub("BTCUSDT$BA", "quote")].into();
    eventually("subscribed", || fake.subscribed("stock") == stock && fake.subscribed("crypto") == crypto).await;

    fake.drop_all();
    eventually("reconnected and resubscribed", || {
        fake.connections_opened("stock") == 2
            && fake.connections_opened("crypto") == 2
            && fake.subscribed("stock") == stock
            && fake.subscribed("crypto") == crypto
    })
    .await;
    let stats = stream.stream.stats();
    assert!(stats.reconnects >= 2, "{stats:?}");
    assert_eq!(fake.push_quote("BTCUSDT", "BA", "64000.5"), 1);
    let LiveEvent::Quote(quote) = stream.next_event().await else { panic!("expected a quote") };
    assert_eq!(quote.symbol.as_str(), "CRYPTO:BTCUSDT");
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_detected_and_replaced() {
    let fake = FakeItickWs::start().await;
    let mut config = config(&fake);
    config.ping_interval = Duration::from_millis(50);
    config.silence_timeout = Duration::from_millis(500);
    let mut stream = Running::start(config, vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("subscribed", || fake.subscribed("stock").len() == 1).await;

    // The socket stays open, but nothing comes back any more (no pongs, no pushes).
    fake.silence_current();
    eventually("a second connection, subscribed", || {
        fake.connections_opened("stock") == 2
            && fake.open_connections("stock") == 1
            && fake.subscribed("stock").len() == 1
    })
    .await;
    let stats = stream.stream.stats();
    assert!(stats.reconnects >= 1);
    assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("nothing received")), "{stats:?}");
    assert_eq!(fake.push_quote("AAPL", "US", "190.5"), 1);
    assert!(matches!(stream.next_event().await, LiveEvent::Quote(_)));
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_reported_and_not_retried_in_a_loop() {
    let fake = FakeItickWs::start().await;
    fake.reject_auth(true);
    let mut config = config(&fake);
    // Ordinary failures would be retried within milliseconds; a rejected token must not be.
    config.backoff_min = Duration::from_millis(5);
    config.backoff_max = Duration::from_millis(10);
    let stream = Running::start(config, vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("the auth failure", || stream.stream.stats().auth_failures >= 1).await;
    // Real time, as the behaviour under test is an absence: 300 ms is 30 backoffs at most, in
    // which a retry loop would have reconnected many times.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = stream.stream.stats();
    assert_eq!(fake.connections_opened("stock"), 1, "no reconnect loop: {stats:?}");
    assert_eq!(stats.auth_failures, 1);
    assert!(stats.last_error.as_deref().is_some_and(|e| e.contains("ITICK_TOKEN")), "{stats:?}");
    assert_eq!(stats.connections.len(), 1);
    assert_eq!(stats.connections[0].state, ConnectionState::AuthRejected);
    assert!(stats.connected_endpoints().is_empty());
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_wanting_the_auth_message_get_it() {
    let fake = FakeItickWs::start().await;
    fake.legacy_only(true);
    let mut config = config(&fake);
    config.auth_timeout = Duration::from_millis(150);
    let mut stream = Running::start(config, vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("subscribed after the auth message", || fake.subscribed("stock").len() == 1).await;
    assert_eq!(fake.messages("auth"), [json!({"ac": "auth", "params": TOKEN})]);
    fake.push_quote("AAPL", "US", "189.98");
    assert!(matches!(stream.next_event().await, LiveEvent::Quote(_)));

    // Learned: the next connection sends the message straight away, and works.
    fake.drop_all();
    eventually("resubscribed", || fake.connections_opened("stock") == 2 && fake.subscribed("stock").len() == 1).await;
    assert_eq!(fake.messages("auth").len(), 2);
    assert_eq!(stream.stream.stats().auth_failures, 0);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_pushes_are_rejected_and_counted() {
    let fake = FakeItickWs::start().await;
    let kline = Channel::Kline(Interval::OneMinute);
    let mut stream = Running::start(
        config(&fake),
        vec![StreamCommand::Subscribe(vec![
            topic("AAPL.US", Channel::Quote),
            topic("AAPL.US", Channel::Depth),
            topic("AAPL.US", kline),
        ])],
    );
    eventually("subscribed", || fake.subscribed("stock").len() == 3).await;
    let now = chrono::Utc::now().timestamp_millis();
    let price = number("189.98");
    // Rejected: high below low, negative price, a timestamp a minute ahead, a bar with its high
    // below its low, a book with a negative price.
    fake.push("AAPL", "US", "quote", json!({"ld": price, "h": 180, "l": 188, "t": now}));
    fake.push("AAPL", "US", "quote", json!({"ld": -1, "t": now}));
    fake.push("AAPL", "US", "quote", json!({"ld": price, "t": now + 60_000}));
    fake.push_kline("AAPL", "US", 1, now - now.rem_euclid(60_000), ["10", "9", "9.5", "9.6"]);
    fake.push_depth("AAPL", "US", &[("-1", 5)], &[("189.97", 2)]);
    // Ignored: an unknown type, a symbol not subscribed, a channel not subscribed.
    fake.push_raw("stock", json!({"code": 1, "data": {"s": "AAPL", "r": "US", "type": "trade", "ld": 1, "t": now}}));
    fake.push_raw("stock", json!({"code": 1, "data": {"s": "MSFT", "r": "US", "type": "quote", "ld": 1, "t": now}}));
    fake.push_raw("stock", json!({"code": 1, "data": {"s": "AAPL", "r": "US", "type": "tick", "ld": 1, "t": now}}));
    // Then a good one: the first (and only) event delivered.
    fake.push_quote("AAPL", "US", "190.01");
    let LiveEvent::Quote(quote) = stream.next_event().await else { panic!("expected a quote") };
    assert_eq!(quote.last.to_string(), "190.01");
    eventually("the event counted", || stream.stream.stats().events == 1).await;
    let stats = stream.stream.stats();
    assert_eq!((stats.rejected_pushes, stats.ignored_pushes, stats.events), (5, 3, 1), "{stats:?}");
    assert!(stream.events.try_recv().is_err());
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_subscriptions_are_counted() {
    let fake = FakeItickWs::start().await;
    fake.refuse_subscriptions(true);
    let stream = Running::start(config(&fake), vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("the refusal counted", || stream.stream.stats().subscribe_errors == 1).await;
    assert!(fake.subscribed("stock").is_empty());
    // Refused, not broken: the connection stays up.
    assert_eq!(stream.stream.stats().connected_endpoints(), ["stock"]);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_stops_when_the_hub_is_gone() {
    let fake = FakeItickWs::start().await;
    let mut stream =
        Running::start(config(&fake), vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("subscribed", || fake.subscribed("stock").len() == 1).await;
    stream.events.close();
    let task = stream.task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run returns").unwrap();
    eventually("the connection closed", || fake.open_connections("stock") == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_refused_clearly() {
    let fake = FakeItickWs::start().await;
    let stream = Running::start(
        config(&fake),
        vec![StreamCommand::Subscribe(vec![topic("FUT:CL.US", Channel::Quote), topic("AAPL.US", Channel::Quote)])],
    );
    eventually("AAPL subscribed", || fake.subscribed("stock").len() == 1).await;
    assert!(!ItickStream::supports(&instrument("FUT:CL.US")));
    assert!(ItickStream::supports(&instrument("AAPL.US")));
    let stats = stream.stream.stats();
    assert_eq!((stats.unsupported_topics, stats.subscribed_topics), (1, 1));
    assert_eq!(stats.connections.len(), 1);
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_from_the_environment() {
    let fake = FakeItickWs::start().await;
    let url = fake.url();
    let lookup = |vars: &[(&str, &str)]| {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        finql::Config::from_lookup(move |key| {
            if key == "JWT_SECRET" {
                return Some(crate::helpers::JWT_SECRET.to_owned());
            }
            vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    let config = lookup(&[("ITICK_TOKEN", TOKEN), ("ITICK_WS_URL", &url), ("ITICK_WS_PING_SECS", "7")]);
    let stream = ItickStream::from_settings(&config.market.itick).unwrap();
    assert_eq!(stream.config().ping_interval, Duration::from_secs(7));
    assert_eq!(stream.config().silence_timeout, Duration::from_secs(14));
    assert_eq!(stream.config().auth_backoff, Duration::from_secs(300));
    assert!(!format!("{stream:?}").contains(TOKEN));
    let defaults = lookup(&[("ITICK_TOKEN", TOKEN)]);
    assert_eq!(defaults.market.itick.ws_ping_interval, Duration::from_secs(30));
    let err = ItickStream::from_settings(&lookup(&[]).market.itick).unwrap_err();
    assert!(err.to_string().contains("ITICK_TOKEN"), "{err}");
    let short_silence = lookup(&[("ITICK_TOKEN", TOKEN), ("ITICK_WS_SILENCE_SECS", "30")]);
    let err = ItickStream::from_settings(&short_silence.market.itick).unwrap_err();
    assert!(err.to_string().contains("silence timeout"), "{err}");
    let vars = [("JWT_SECRET", crate::helpers::JWT_SECRET), ("ITICK_WS_PING_SECS", "0")];
    let err = finql::Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()));
    assert!(err.unwrap_err().to_string().contains("ITICK_WS_PING_SECS"));

    // And it works: one line from settings to a live subscription.
    let stream =
        Running::with(Arc::new(stream), vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    eventually("subscribed", || fake.subscribed("stock").len() == 1).await;
    stream.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_goes_through_rustls_and_failures_are_retried() {
    // A TCP server that hangs up at once: the TLS handshake fails (no certificate in sight).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let mut config = ItickStreamConfig::new(format!("wss://{addr}"), TOKEN);
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    let stream = Running::start(config, vec![StreamCommand::Subscribe(vec![topic("AAPL.US", Channel::Quote)])]);
    // Retried (the connection task neither panicked nor gave up) ...
    eventually("retries", || stream.stream.stats().connects >= 3).await;
    let stats = stream.stream.stats();
    let error = stats.last_error.clone().unwrap_or_default();
    // ... after a TLS failure, not a "TLS support not compiled in".
    assert!(error.contains("cannot connect") && !error.contains("not compiled"), "{error}");
    assert!(stats.connected_endpoints().is_empty());
    stream.stop().await;
    server.abort();
}
