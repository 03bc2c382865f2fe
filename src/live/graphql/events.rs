//! A subscription's events: its topics' receivers merged, each as it comes or, for a delayed
//! symbol, through a [`DelayLine`], optionally throttled.

use std::{sync::Arc, time::Duration};

use futures::{Stream, StreamExt, stream::BoxStream};

use super::admission::Admitted;
use crate::{
    live::{
        Channel, SharedEvent, Topic,
        delay::DelayLine,
        hub::{TickLag, TopicReceiver},
    },
    reference::Symbol,
};

/// Why one topic's events stopped: a ticks subscriber behind the ring, or a delayed trades
/// line full.
pub(super) enum Interruption {
    Lag(TickLag),
    DelayFull { symbol: Symbol, capacity: usize },
}

type TopicEvents = BoxStream<'static, Result<Arc<SharedEvent>, Interruption>>;

/// An event as one subscriber receives it: as it came, or as of its plan's delay.
pub(in crate::live) struct Delivered {
    pub(in crate::live) event: Arc<SharedEvent>,
    /// It came through a delay line: the subscriber's plan has this market delayed.
    pub(in crate::live) delayed: bool,
}

/// The events of all the subscription's topics, merged. Delayed symbols go through a
/// [`DelayLine`] each. With `throttle`, each topic yields at most once per interval: after a
/// yield it waits, then yields the newest value if there was a change meanwhile (trailing
/// edge). The topics (and the quota's symbols) stay held until the stream is dropped.
pub(super) fn events(
    mut admitted: Admitted,
    throttle: Option<Duration>,
) -> impl Stream<Item = Result<Delivered, Interruption>> + Send + 'static {
    let per_topic = admitted.subscription.take_receivers().into_iter().map(|(topic, receiver)| {
        let delay = admitted.delayed.get(&topic.instrument.symbol);
        let is_delayed = delay.is_some();
        let base = match delay {
            None => immediate(topic, receiver),
            Some(delay) => {
                let conflate = topic.channel != Channel::Tick;
                let capacity = if conflate { admitted.settings.delay_slots } else { admitted.settings.delay_ticks };
                delayed(topic, receiver, DelayLine::new(*delay, capacity, conflate, admitted.meter.clone()))
            }
        };
        throttled(base, throttle).map(move |item| item.map(|event| Delivered { event, delayed: is_delayed }))
    });
    let per_topic: Vec<_> = per_topic.collect();
    let merged: BoxStream<'static, _> = futures::stream::select_all(per_topic).boxed();
    // The hub subscription and the quota lease live as long as the stream: dropping the stream
    // (the client's `complete`, a disconnect) gives the topics and the symbols back.
    let held = (admitted.subscription, admitted.lease);
    merged.map(move |item| {
        let _held = &held;
        item
    })
}

/// A topic's events as they come.
fn immediate(topic: Arc<Topic>, receiver: TopicReceiver) -> TopicEvents {
    futures::stream::unfold((topic, receiver), |(topic, mut receiver)| async move {
        let item = receiver.next(&topic).await?.map_err(Interruption::Lag);
        Some((item, (topic, receiver)))
    })
    .boxed()
}

/// A topic's events, each once it is the line's delay old. The receiver is read as events come
/// (so each enters the line when it arrives); the line decides when it leaves.
fn delayed(topic: Arc<Topic>, receiver: TopicReceiver, line: DelayLine) -> TopicEvents {
    futures::stream::unfold((topic, receiver, line, true), |(topic, mut receiver, mut line, mut open)| async move {
        loop {
            if let Some(event) = line.pop_due() {
                return Some((Ok(event), (topic, receiver, line, open)));
            }
            if !open && line.is_empty() {
                return None;
            }
            let due = line.next_due();
            tokio::select! {
                item = receiver.next(&topic), if open => match item {
                    None => open = false,
                    Some(Ok(event)) => {
                        if let Err(overflow) = line.push(event) {
                            let symbol = topic.instrument.symbol.clone();
                            let full = Interruption::DelayFull { symbol, capacity: overflow.capacity };
                            return Some((Err(full), (topic, receiver, line, false)));
                        }
                    }
                    Some(Err(lag)) => return Some((Err(Interruption::Lag(lag)), (topic, receiver, line, false))),
                },
                () = sleep_until_due(due) => {}
            }
        }
    })
    .boxed()
}

async fn sleep_until_due(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => futures::future::pending().await,
    }
}

/// At most one item per `throttle` (none: as they come), the newest after each wait.
fn throttled(items: TopicEvents, throttle: Option<Duration>) -> TopicEvents {
    let Some(throttle) = throttle else { return items };
    futures::stream::unfold((items, false), move |(mut items, waited)| async move {
        if waited {
            tokio::time::sleep(throttle).await;
        }
        let item = items.next().await?;
        Some((item, (items, true)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use rust_decimal::Decimal;
    use tokio::{sync::mpsc, time::Instant};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{
        config::{LiveSettings, Plans},
        identity::TenantRef,
        live::LiveEvent,
        live::{Feed, LiveHub, LiveQuotas, hub::HubConfig},
        market::{Instrument, Quote, TradingStatus, calendar::Region},
        reference::service::AssetClass,
    };

    struct NoFeed;
    impl Feed for NoFeed {
        fn want(&self, _: Vec<Topic>) {}
        fn release(&self, _: Vec<Topic>) {}
    }

    fn quote_topic(symbol: &Symbol) -> Topic {
        let instrument = Instrument {
            symbol: symbol.clone(),
            asset_class: AssetClass::Stock,
            region: "US".into(),
            code: symbol.as_str().split('.').next().unwrap().to_owned(),
            currency: "USD".into(),
            market: Region::Us,
            listed_at: None,
        };
        Topic { instrument, channel: Channel::Quote }
    }

    fn quote(symbol: &Symbol, n: i64) -> LiveEvent {
        LiveEvent::Quote(Quote {
            symbol: symbol.clone(),
            last: Decimal::from(n),
            open: Decimal::ONE,
            high: Decimal::from(n.max(1)),
            low: Decimal::ONE,
            prev_close: Decimal::ONE,
            volume: Some(Decimal::ZERO),
            turnover: Some(Decimal::ZERO),
            // Ahead of the wall clock (which tokio's paused clock does not stop): no age is
            // subtracted from the delay, so only the paused clock decides when quotes leave.
            timestamp: Utc::now() + chrono::Duration::hours(1),
            trading_status: TradingStatus::Normal,
            source: "test",
            stale: false,
        })
    }

    /// A subscription to a real-time and a delayed symbol, fed one quote of each per second
    /// for 20 minutes of tokio's paused clock: the real-time one arrives as it comes; the
    /// delayed one never before it is 15 minutes old, conflated to one value per slot, and the
    /// hub's meter shows the line never held more than its slots.
    #[tokio::test(start_paused = true)]
    async fn a_delayed_symbol_arrives_a_delay_late_conflated_within_its_slots() {
        const SLOTS: usize = 180;
        let hub = LiveHub::new(
            "test",
            Arc::new(NoFeed),
            HubConfig { grace: Duration::from_millis(10), tick_buffer: 16, stale_after: Duration::from_secs(3600) },
        );
        let (feed, receiver) = mpsc::channel(16);
        hub.spawn(receiver, CancellationToken::new());
        let (realtime, delayed) = (Symbol::parse("AAPL.US").unwrap(), Symbol::parse("700.HK").unwrap());
        let plan = Plans::builtin().get("basic").unwrap().clone();
        let tenant = TenantRef { id: uuid::Uuid::new_v4(), slug: "desk".into() };
        let quotas = LiveQuotas::local();
        let lease = quotas.subscribe(&tenant, &plan, &[realtime.clone(), delayed.clone()]).await.unwrap();
        let delay = plan.delay().to_std().unwrap();
        let settings = LiveSettings {
            grace: Duration::from_millis(10),
            max_symbols: 10,
            tick_buffer: 16,
            stale_after: Duration::from_secs(3600),
            delay_slots: SLOTS,
            delay_ticks: 16,
        };
        let admitted = Admitted {
            subscription: hub.subscribe(vec![quote_topic(&realtime), quote_topic(&delayed)]),
            lease,
            delayed: HashMap::from([(delayed.clone(), delay)]),
            settings,
            meter: hub.delays().clone(),
        };
        let start = Instant::now();
        let delayed_symbol = delayed.clone();
        let mut stream = Box::pin(events(admitted, None));
        let producer = {
            let (realtime, delayed) = (realtime.clone(), delayed.clone());
            tokio::spawn(async move {
                for n in 0..1200 {
                    feed.send(quote(&realtime, n)).await.unwrap();
                    feed.send(quote(&delayed, n)).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let (mut live, mut late) = (Vec::new(), Vec::new());
        let end = start + Duration::from_secs(1200);
        while let Ok(Some(item)) = tokio::time::timeout_at(end, stream.next()).await {
            let Ok(Delivered { event, delayed }) = item else { panic!("no interruption expected") };
            let LiveEvent::Quote(quote) = &**event else { panic!("a quote") };
            let n = u64::try_from(quote.last).unwrap();
            let at = start.elapsed();
            assert_eq!(delayed, quote.symbol == delayed_symbol, "marked delayed as its symbol is");
            if quote.symbol == realtime {
                live.push((n, at))
            } else {
                late.push((n, at))
            }
            assert!(hub.delays().peak() <= SLOTS as u64, "the line held {} entries", hub.delays().peak());
        }
        producer.await.unwrap();
        assert_eq!(live.len(), 1200, "every real-time quote, as it came");
        assert!(live.iter().all(|(n, at)| at.as_secs() == *n), "{live:?}");
        for (n, at) in &late {
            assert!(*at >= Duration::from_secs(*n) + delay, "quote {n} left at {at:?}, before its delay");
        }
        // About one value per 5-second slot over the 300 s after the first delay.
        assert!((50..=61).contains(&late.len()), "{} delayed values: {late:?}", late.len());
        let newest = late.last().unwrap().0;
        assert!(newest >= 290, "the newest delayed value is about a delay old: {newest}");
        assert_eq!(hub.delays().lines(), 1);
        drop(stream);
        assert_eq!((hub.delays().lines(), hub.delays().entries()), (0, 0), "the line's memory is given back");
        assert_eq!(quotas.held(tenant.id), (0, 0), "and the quota's symbols");
    }
}
