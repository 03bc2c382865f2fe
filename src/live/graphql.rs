//! The subscription root: `quotes`, `klines`, `orderBook` and `ticks`, pushed as the upstream
//! moves. Each resolver validates its symbols like the queries do (so a typo fails at once,
//! naming the symbol), subscribes to the hub, and turns the hub's shared events into the same
//! GraphQL objects the queries return. Live data is licensed per user: every subscription needs
//! an authenticated connection.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_graphql::{Context, ErrorExtensions, Result, Subscription};
use futures::{Stream, StreamExt, future::try_join_all, stream::BoxStream};

use super::{
    Channel, LiveEvent, LiveHub, LiveQuotas, Topic,
    delay::{DelayLine, DelayMeter},
    hub::{Subscription as HubSubscription, TickLag, TopicReceiver},
    quotas::{Refusal, SymbolsLease},
};
use crate::{
    config::{Access, LiveSettings},
    error::{AppError, ErrorCode},
    graphql::{RequestContext, bounded, service},
    identity::Scope,
    market::{
        MarketService, entitlements,
        graphql::{IntervalGql, KlineObject, OrderBookObject, QuoteObject, TickObject, books::book_levels},
        service::require_order_book,
    },
    reference::Symbol,
};

/// The longest `throttleMs`: a minute (slower than that is polling, use the `quotes` query).
const MAX_THROTTLE_MS: i32 = 60_000;

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// The quotes of up to `FINQL_LIVE_MAX_SYMBOLS` (default 500) instruments: the current one
    /// of each at once (when known), then one each time one changes. With `throttleMs`, at most
    /// one per symbol per interval, always the newest (the last change is never lost).
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        symbols: Vec<String>,
        throttle_ms: Option<i32>,
    ) -> Result<impl Stream<Item = QuoteObject> + use<>> {
        let throttle = match throttle_ms {
            None | Some(0) => None,
            Some(ms) => Some(Duration::from_millis(bounded(ms, 0, MAX_THROTTLE_MS, "throttleMs")? as u64)),
        };
        let subscription = subscribe(ctx, &symbols, Channel::Quote).await?;
        Ok(events(subscription, throttle).filter_map(|event| async move {
            match event.ok().as_deref() {
                Some(LiveEvent::Quote(quote)) => Some(QuoteObject(quote.clone())),
                _ => None,
            }
        }))
    }

    /// The bar of `interval` in progress, each time it changes; then the next one.
    async fn klines(
        &self,
        ctx: &Context<'_>,
        symbol: String,
        interval: IntervalGql,
    ) -> Result<impl Stream<Item = KlineObject> + use<>> {
        let subscription = subscribe(ctx, &[symbol], Channel::Kline(interval.into())).await?;
        let bars = events(subscription, None).filter_map(|event| async move {
            match event.ok().as_deref() {
                Some(LiveEvent::Kline { bar, .. }) => Some(KlineObject::from(bar)),
                _ => None,
            }
        });
        Ok(marking_silence(bars, stale_after(ctx)?, KlineObject::into_stale))
    }

    /// The order book, `levels` deep (at most 50), each time it changes. An index has none:
    /// `BAD_USER_INPUT`.
    async fn order_book(
        &self,
        ctx: &Context<'_>,
        symbol: String,
        #[graphql(default = 10)] levels: Option<i32>,
    ) -> Result<impl Stream<Item = OrderBookObject> + use<>> {
        let levels = book_levels(levels)?;
        let subscription = subscribe(ctx, &[symbol], Channel::Depth).await?;
        let books = events(subscription, None).filter_map(move |event| async move {
            match event.ok().as_deref() {
                Some(LiveEvent::OrderBook(book)) => {
                    let mut book = book.clone();
                    book.bids.truncate(levels);
                    book.asks.truncate(levels);
                    Some(OrderBookObject::from(book))
                }
                _ => None,
            }
        });
        Ok(marking_silence(books, stale_after(ctx)?, OrderBookObject::into_stale))
    }

    /// Every trade of these instruments, in order. Trades are not conflated: a subscriber that
    /// falls more than `FINQL_LIVE_TICK_BUFFER` trades of one symbol behind gets a
    /// `RATE_LIMITED` error (`extensions.reason = SLOW_CONSUMER`) and the subscription ends.
    async fn ticks(
        &self,
        ctx: &Context<'_>,
        symbols: Vec<String>,
    ) -> Result<impl Stream<Item = Result<TickObject>> + use<>> {
        let subscription = subscribe(ctx, &symbols, Channel::Tick).await?;
        let mut ended = false;
        Ok(events(subscription, None)
            .take_while(move |event| {
                // The error is delivered, then the stream ends.
                let go_on = !ended;
                ended = event.is_err();
                futures::future::ready(go_on)
            })
            .filter_map(|event| async move {
                match event {
                    Ok(event) => match event.as_ref() {
                        LiveEvent::Tick(tick) => Some(Ok(TickObject::from(tick.clone()))),
                        _ => None,
                    },
                    Err(interruption) => Some(Err(slow_consumer(&interruption))),
                }
            }))
    }
}

fn slow_consumer(interruption: &Interruption) -> async_graphql::Error {
    let message = match interruption {
        Interruption::Lag(lag) => format!(
            "slow consumer: this subscription fell {} trades of {} behind (FINQL_LIVE_TICK_BUFFER) and has ended; \
             subscribe again",
            lag.missed, lag.symbol
        ),
        Interruption::DelayFull { symbol, capacity } => format!(
            "more than {capacity} trades of {symbol} within one delay (FINQL_LIVE_DELAY_TICKS): this delayed \
             subscription has ended; subscribe again"
        ),
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", ErrorCode::RateLimited.as_str());
        ext.set("reason", "SLOW_CONSUMER");
    })
}

/// `FINQL_LIVE_STALE_MS`: the silence after which a subscriber hears its last value again,
/// marked stale.
fn stale_after(ctx: &Context<'_>) -> Result<Duration, AppError> {
    Ok(service::<LiveSettings>(ctx)?.stale_after)
}

/// For one-topic subscriptions (a book, a forming bar) what the hub does for quote topics: when
/// `after` passes with nothing new, the last item is sent again through `mark` (as the last
/// known value, `stale: true`), once per silence; the next real item is unmarked. A subscriber
/// whose upstream went down learns it instead of hearing nothing. (Trades have no "last value"
/// to repeat: a trade stream is legitimately silent when nothing trades.)
fn marking_silence<T: Clone + Send + 'static>(
    items: impl Stream<Item = T> + Send + 'static,
    after: Duration,
    mark: fn(T) -> T,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::unfold((items.boxed(), None::<T>, false), move |(mut items, last, marked)| async move {
        let waiting = last.is_some() && !marked;
        tokio::select! {
            item = items.next() => {
                let item = item?;
                Some((item.clone(), (items, Some(item), false)))
            }
            () = tokio::time::sleep(after), if waiting => {
                let stale = mark(last.clone()?);
                Some((stale, (items, last, true)))
            }
        }
    })
}

/// A subscription admitted: its hub topics, the symbols it holds against the tenant's
/// `max_live_symbols`, and which of its symbols are delayed (and by how much).
struct Admitted {
    subscription: HubSubscription,
    /// Given back when the stream is dropped.
    lease: SymbolsLease,
    delayed: HashMap<Symbol, Duration>,
    settings: LiveSettings,
    meter: DelayMeter,
}

/// Checks the caller, its plan's entitlement to every symbol and its live quota, then
/// subscribes to the symbols' topics on `channel`.
async fn subscribe(ctx: &Context<'_>, symbols: &[String], channel: Channel) -> Result<Admitted> {
    let principal = &RequestContext::of(ctx)?.principal;
    // Live data is licensed per tenant: a user's token or a key, never anonymous.
    let tenant = principal.require_tenant()?;
    let plan = principal.require_plan()?;
    let settings = service::<LiveSettings>(ctx)?.clone();
    let max = settings.max_symbols;
    if symbols.is_empty() {
        return Err(AppError::bad_field("symbols", "give at least one symbol").into());
    }
    if symbols.len() > max {
        return Err(AppError::bad_field(
            "symbols",
            format!("at most {max} symbols per subscription (FINQL_LIVE_MAX_SYMBOLS); got {}", symbols.len()),
        )
        .into());
    }
    let parsed = symbols.iter().map(|raw| Symbol::parse(raw)).collect::<Result<Vec<_>, _>>()?;
    let mut delayed = HashMap::new();
    for symbol in &parsed {
        if entitlements::access(principal, symbol, Scope::Live)? == Access::Delayed {
            if channel == Channel::Depth {
                return Err(AppError::EntitlementRequired {
                    message: format!(
                        "order books are real-time only, and your plan (`{}`) has the {} market delayed ({symbol})",
                        plan.name,
                        entitlements::market_of(symbol)
                    ),
                    market: Some(entitlements::market_of(symbol).to_owned()),
                }
                .into());
            }
            delayed.insert(symbol.clone(), plan.delay().to_std().unwrap_or_default());
        }
    }
    let market = service::<MarketService>(ctx)?;
    let mut instruments = try_join_all(parsed.iter().map(|symbol| market.instrument(symbol))).await?;
    if channel == Channel::Depth {
        instruments = instruments.into_iter().map(require_order_book).collect::<Result<_, _>>()?;
    }
    let lease = service::<LiveQuotas>(ctx)?
        .subscribe(tenant, plan, &parsed)
        .await
        .map_err(|refusal| quota_error(&refusal, &tenant.slug, &plan.name))?;
    let topics = instruments.into_iter().map(|instrument| Topic { instrument, channel }).collect();
    let hub = service::<LiveHub>(ctx)?;
    Ok(Admitted { subscription: hub.subscribe(topics), lease, delayed, settings, meter: hub.delays().clone() })
}

/// The error for a subscription the tenant's live quota refuses.
fn quota_error(refusal: &Refusal, tenant: &str, plan: &str) -> async_graphql::Error {
    match refusal {
        Refusal::Exceeded { limit, max, held } => {
            let message = format!(
                "live quota exceeded: tenant `{tenant}` follows {held} distinct symbols and this subscription \
                 would take it past {max} ({} of plan `{plan}`)",
                limit.as_str()
            );
            let (limit, max) = (limit.as_str(), *max);
            async_graphql::Error::new(message).extend_with(move |_, ext| {
                ext.set("code", ErrorCode::Forbidden.as_str());
                ext.set("reason", "QUOTA_EXCEEDED");
                ext.set("limit", limit);
                ext.set("max", max);
            })
        }
        Refusal::Unavailable => AppError::UpstreamUnavailable(
            "live quotas cannot be checked right now (shared state unavailable); try again shortly".into(),
        )
        .into(),
    }
}

/// Why one topic's events stopped: a ticks subscriber behind the ring, or a delayed trades
/// line full.
enum Interruption {
    Lag(TickLag),
    DelayFull { symbol: Symbol, capacity: usize },
}

type TopicEvents = BoxStream<'static, Result<Arc<LiveEvent>, Interruption>>;

/// The events of all the subscription's topics, merged. Delayed symbols go through a
/// [`DelayLine`] each. With `throttle`, each topic yields at most once per interval: after a
/// yield it waits, then yields the newest value if there was a change meanwhile (trailing
/// edge). The topics (and the quota's symbols) stay held until the stream is dropped.
fn events(
    mut admitted: Admitted,
    throttle: Option<Duration>,
) -> impl Stream<Item = Result<Arc<LiveEvent>, Interruption>> + Send + 'static {
    let per_topic = admitted.subscription.take_receivers().into_iter().map(|(topic, receiver)| {
        let base = match admitted.delayed.get(&topic.instrument.symbol) {
            None => immediate(topic, receiver),
            Some(delay) => {
                let conflate = topic.channel != Channel::Tick;
                let capacity = if conflate { admitted.settings.delay_slots } else { admitted.settings.delay_ticks };
                delayed(topic, receiver, DelayLine::new(*delay, capacity, conflate, admitted.meter.clone()))
            }
        };
        throttled(base, throttle)
    });
    let per_topic: Vec<TopicEvents> = per_topic.collect();
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
fn immediate(topic: Topic, receiver: TopicReceiver) -> TopicEvents {
    futures::stream::unfold((topic, receiver), |(topic, mut receiver)| async move {
        let item = receiver.next(&topic).await?.map_err(Interruption::Lag);
        Some((item, (topic, receiver)))
    })
    .boxed()
}

/// A topic's events, each once it is the line's delay old. The receiver is read as events come
/// (so each enters the line when it arrives); the line decides when it leaves.
fn delayed(topic: Topic, receiver: TopicReceiver, line: DelayLine) -> TopicEvents {
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
    use chrono::Utc;
    use rust_decimal::Decimal;
    use tokio::{sync::mpsc, time::Instant};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{
        config::Plans,
        identity::TenantRef,
        live::{Feed, hub::HubConfig},
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
            timestamp: Utc::now(),
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
            let Ok(event) = item else { panic!("no interruption expected") };
            let LiveEvent::Quote(quote) = event.as_ref() else { panic!("a quote") };
            let n = u64::try_from(quote.last).unwrap();
            let at = start.elapsed();
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

    #[tokio::test(start_paused = true)]
    async fn silence_repeats_the_last_item_marked_once_and_news_unmarks() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<(u32, bool)>();
        let mut marked = Box::pin(marking_silence(rx, Duration::from_secs(1), |(n, _)| (n, true)));
        // Nothing yet: nothing to repeat, however long the silence.
        assert!(tokio::time::timeout(Duration::from_secs(5), marked.next()).await.is_err());
        tx.unbounded_send((1, false)).unwrap();
        assert_eq!(marked.next().await, Some((1, false)));
        let before = tokio::time::Instant::now();
        assert_eq!(marked.next().await, Some((1, true)));
        assert_eq!(before.elapsed(), Duration::from_secs(1));
        // Once per silence.
        assert!(tokio::time::timeout(Duration::from_secs(5), marked.next()).await.is_err());
        tx.unbounded_send((2, false)).unwrap();
        assert_eq!(marked.next().await, Some((2, false)));
        assert_eq!(marked.next().await, Some((2, true)));
        drop(tx);
        assert_eq!(marked.next().await, None);
    }
}
