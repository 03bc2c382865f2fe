//! The subscription root: `quotes`, `klines`, `orderBook` and `ticks`, pushed as the upstream
//! moves. Each resolver validates its symbols like the queries do (so a typo fails at once,
//! naming the symbol), subscribes to the hub, and turns the hub's shared events into the same
//! GraphQL objects the queries return. Live data is licensed per tenant: every subscription
//! needs a user's token or an API key with the `live` scope, and passes the plan's checks
//! before it starts:
//! - every symbol through `market::entitlements::access` (the one check queries use): a market
//!   outside the plan is `FORBIDDEN` `ENTITLEMENT_REQUIRED` naming it; an order book in a
//!   delayed market likewise (books are real-time only);
//! - the tenant's `max_live_symbols` (`live::quotas`): past it, `FORBIDDEN` with
//!   `reason: QUOTA_EXCEEDED` and `limit: max_live_symbols`.
//!
//! A symbol in a delayed market is then served through a `live::delay::DelayLine`: its events
//! leave `delay_minutes` late, conflated, within a bounded memory the hub measures.

mod admission;
mod events;
pub mod projection;

pub use self::admission::LiveServices;

use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, Result, Subscription};
use futures::{Stream, StreamExt};

use self::{
    admission::subscribe,
    events::{Delivered, Interruption, events},
};
use crate::{
    config::LiveSettings,
    error::{AppError, ErrorCode},
    graphql::{bounded, service},
    live::{Channel, LiveEvent},
    market::graphql::{IntervalGql, KlineObject, OrderBookObject, QuoteObject, TickObject, books::book_levels},
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
        #[graphql(desc = "The instruments' symbols, any case; unknown or malformed ones fail the subscription.")]
        symbols: Vec<String>,
        #[graphql(
            desc = "At most one quote per symbol per this many milliseconds, 0 to 60000 (0 or omitted: every change)."
        )]
        throttle_ms: Option<i32>,
    ) -> Result<impl Stream<Item = QuoteObject> + use<>> {
        let throttle = match throttle_ms {
            None | Some(0) => None,
            Some(ms) => Some(Duration::from_millis(bounded(ms, 0, MAX_THROTTLE_MS, "throttleMs")? as u64)),
        };
        let subscription = subscribe(ctx, &symbols, Channel::Quote).await?;
        Ok(events(subscription, throttle).filter_map(|event| async move {
            let Delivered { event, delayed } = event.ok()?;
            match (&**event, delayed) {
                (LiveEvent::Quote(quote), false) => Some(QuoteObject::realtime(quote.clone())),
                (LiveEvent::Quote(quote), true) => Some(QuoteObject::after_delay(quote.clone())),
                _ => None,
            }
        }))
    }

    /// The bar of `interval` in progress, each time it changes; then the next one.
    async fn klines(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(desc = "The bar length.")] interval: IntervalGql,
    ) -> Result<impl Stream<Item = KlineObject> + use<>> {
        let subscription = subscribe(ctx, &[symbol], Channel::Kline(interval.into())).await?;
        let bars = events(subscription, None).filter_map(|event| async move {
            match event.ok().as_ref().map(|delivered| &**delivered.event) {
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
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(default = 10, desc = "Price levels per side, 1 to 50.")] levels: Option<i32>,
    ) -> Result<impl Stream<Item = OrderBookObject> + use<>> {
        let levels = book_levels(levels)?;
        let subscription = subscribe(ctx, &[symbol], Channel::Depth).await?;
        let books = events(subscription, None).filter_map(move |event| async move {
            match event.ok().as_ref().map(|delivered| &**delivered.event) {
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
        #[graphql(desc = "The instruments' symbols, any case; unknown or malformed ones fail the subscription.")]
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
                    Ok(delivered) => match &**delivered.event {
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

#[cfg(test)]
mod tests {
    use super::*;

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
