//! The simulated market as a live stream: what the simulated source answers to queries, pushed
//! as it changes.
//!
//! The simulated market is a pure function of the symbol and the clock, and moves once a second
//! (see `sources::simulated`). The stream samples every subscribed topic `FINQL_SIM_TICKS_PER_SEC`
//! times a second, on steps aligned to the wall clock (so the first step of each second runs
//! just after the second turns and the quote's timestamp is close to when it is pushed), and
//! pushes what changed since its last push: the quote, the order book, the forming bar of each
//! subscribed interval, and the trades of the seconds completed since. Each step reads one
//! instant for all topics, so a step's quote, book, bars and trades agree with each other and
//! with what `quote`, `orderBook`, `klines` and `ticks` return at that instant.
//!
//! A closed market pushes nothing: its quote, book and last bar are frozen at the last close
//! (see `sources::simulated`), so they never differ from what was pushed, and trades older than
//! the catch-up window are never pushed. A new subscriber still gets the current quote, book
//! and bar once, as it would from a query.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::SimulatedMarket;
use crate::{
    live::{Channel, LiveEvent, MarketStream, StreamCommand, Topic},
    market::{Kline, MarketSource, OrderBook, Quote},
};

/// Depth pushed for order books: the deepest a subscriber may ask for (`orderBook(levels:)`).
pub const BOOK_LEVELS: usize = crate::market::limits::MAX_BOOK_LEVELS as usize;

/// Trades a simulated second has at most.
const TRADES_PER_SECOND: usize = 5;
/// The most seconds of trades one step catches up on (a step may come late).
const CATCH_UP_SECONDS: usize = 20;

/// A [`MarketStream`] over [`SimulatedMarket`].
pub struct SimulatedStream {
    steps_per_sec: u32,
}

impl SimulatedStream {
    pub fn new(steps_per_sec: u32) -> Self {
        Self { steps_per_sec: steps_per_sec.max(1) }
    }

    /// The start of the next step after `now`, on the wall-clock grid of `1/steps_per_sec` s.
    fn next_step(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let period_ms = (1000 / i64::from(self.steps_per_sec)).max(1);
        let millis = now.timestamp_millis();
        let next = (millis.div_euclid(period_ms) + 1) * period_ms;
        DateTime::from_timestamp_millis(next).unwrap_or(now)
    }
}

/// A subscribed topic: the second last computed (the market cannot change within a second, so
/// each topic costs one computation a second whatever the step rate), and what was pushed.
#[derive(Default)]
struct TopicState {
    second: Option<i64>,
    pushed: Pushed,
}

/// What was last pushed for a topic, to push only changes.
#[derive(Default)]
enum Pushed {
    #[default]
    Nothing,
    Quote(Quote),
    Book(OrderBook),
    Bar(Kline),
    /// The time of the newest trade pushed.
    TradesUpTo(DateTime<Utc>),
}

impl MarketStream for SimulatedStream {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn run(
        self: Arc<Self>,
        mut commands: mpsc::UnboundedReceiver<StreamCommand>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut topics: HashMap<Topic, TopicState> = HashMap::new();
            loop {
                let now = Utc::now();
                let wait = (self.next_step(now) - now).to_std().unwrap_or(Duration::ZERO);
                let fresh: Vec<Topic> = tokio::select! {
                    () = shutdown.cancelled() => return,
                    command = commands.recv() => match command {
                        None => return,
                        Some(StreamCommand::Subscribe(added)) => {
                            let fresh: Vec<Topic> = added.into_iter().filter(|t| !topics.contains_key(t)).collect();
                            for topic in &fresh {
                                topics.insert(topic.clone(), TopicState::default());
                            }
                            fresh
                        }
                        Some(StreamCommand::Unsubscribe(removed)) => {
                            for topic in &removed {
                                topics.remove(topic);
                            }
                            continue;
                        }
                    },
                    () = tokio::time::sleep(wait) => topics.keys().cloned().collect(),
                };
                // New topics get their current value at once; steps push every change.
                if step(&mut topics, &fresh, &events, Utc::now()).await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Pushes what changed for `which` at instant `at`. `Err` when the hub is gone.
async fn step(
    topics: &mut HashMap<Topic, TopicState>,
    which: &[Topic],
    events: &mpsc::Sender<LiveEvent>,
    at: DateTime<Utc>,
) -> Result<(), mpsc::error::SendError<LiveEvent>> {
    // One instant for the whole step: every value below agrees with every other.
    let market = SimulatedMarket::with_clock(move || at);
    let at_second = DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
    for (n, topic) in which.iter().enumerate() {
        let Some(state) = topics.get_mut(topic) else { continue };
        let previous_second = state.second;
        if previous_second == Some(at.timestamp()) {
            continue;
        }
        state.second = Some(at.timestamp());
        let pushed = &mut state.pushed;
        let instrument = &topic.instrument;
        // The simulated source never fails; an error would only skip this step.
        match topic.channel {
            Channel::Quote => {
                let Ok(mut quotes) = market.quotes(std::slice::from_ref(instrument)).await else { continue };
                let Some(quote) = quotes.pop() else { continue };
                if !matches!(pushed, Pushed::Quote(last) if *last == quote) {
                    *pushed = Pushed::Quote(quote.clone());
                    events.send(LiveEvent::Quote(quote)).await?;
                }
            }
            Channel::Depth => {
                let Ok(book) = market.order_book(instrument, BOOK_LEVELS).await else { continue };
                if !matches!(pushed, Pushed::Book(last) if *last == book) {
                    *pushed = Pushed::Book(book.clone());
                    events.send(LiveEvent::OrderBook(book)).await?;
                }
            }
            Channel::Kline(interval) => {
                let Ok(mut bars) = market.klines(instrument, interval, None, 1).await else { continue };
                let Some(bar) = bars.pop() else { continue };
                if !matches!(pushed, Pushed::Bar(last) if *last == bar) {
                    *pushed = Pushed::Bar(bar.clone());
                    let event = LiveEvent::Kline { symbol: instrument.symbol.clone(), interval, bar, at: at_second };
                    events.send(event).await?;
                }
            }
            Channel::Tick => {
                let since = match pushed {
                    Pushed::TradesUpTo(time) => Some(*time),
                    _ => None,
                };
                // A new subscriber starts from the newest trade (it trades at the quote's last);
                // then each step asks for the seconds completed since the last one, no more (a
                // quiet instrument's history is walked back until `limit` trades are found).
                let seconds = previous_second.map_or(1, |s| (at.timestamp() - s).clamp(1, CATCH_UP_SECONDS as i64));
                let limit = if since.is_some() { TRADES_PER_SECOND * seconds as usize } else { 1 };
                let Ok(trades) = market.ticks(instrument, limit).await else { continue };
                // Trades of a session long closed are history, not news.
                let oldest = at - chrono::Duration::seconds(CATCH_UP_SECONDS as i64);
                let news = trades.into_iter().filter(|t| t.timestamp > oldest);
                for trade in news.filter(|t| since.is_none_or(|since| t.timestamp > since)) {
                    *pushed = Pushed::TradesUpTo(trade.timestamp);
                    events.send(LiveEvent::Tick(trade)).await?;
                }
            }
        }
        // Many topics: let other tasks run between them.
        if n % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        market::{Interval, calendar::Region},
        reference::{Symbol, service::AssetClass},
    };

    fn aapl() -> crate::market::Instrument {
        crate::market::Instrument {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            asset_class: AssetClass::Stock,
            region: "US".into(),
            code: "AAPL".into(),
            currency: "USD".into(),
            market: Region::Us,
            listed_at: None,
        }
    }

    /// The events `step` pushes at each of `instants` for every channel of AAPL.
    async fn pushes(instants: &[&str]) -> Vec<usize> {
        let instrument = aapl();
        let channels = [Channel::Quote, Channel::Depth, Channel::Tick, Channel::Kline(Interval::OneMinute)];
        let which: Vec<Topic> =
            channels.into_iter().map(|channel| Topic { instrument: instrument.clone(), channel }).collect();
        let mut topics: HashMap<Topic, TopicState> = which.iter().map(|t| (t.clone(), TopicState::default())).collect();
        let (events, mut received) = mpsc::channel(100_000);
        let mut counts = Vec::new();
        for instant in instants {
            let at = DateTime::parse_from_rfc3339(instant).unwrap().with_timezone(&Utc);
            step(&mut topics, &which, &events, at).await.unwrap();
            let mut count = 0;
            while received.try_recv().is_ok() {
                count += 1;
            }
            counts.push(count);
        }
        counts
    }

    #[tokio::test]
    async fn a_closed_market_pushes_nothing() {
        // Saturday: the snapshot once (quote, book, bar; no trades), then nothing.
        let counts = pushes(&["2026-11-28T15:00:00Z", "2026-11-28T15:00:01Z", "2026-11-28T15:00:05Z"]).await;
        assert_eq!(counts, [3, 0, 0]);
        // In session, every second brings something new.
        let counts = pushes(&["2026-11-30T15:00:00Z", "2026-11-30T15:00:01Z", "2026-11-30T15:00:02Z"]).await;
        assert!(counts[0] >= 4 && counts[1] > 0 && counts[2] > 0, "{counts:?}");
    }

    #[test]
    fn steps_are_aligned_to_the_wall_clock() {
        let stream = SimulatedStream::new(4);
        let at = DateTime::from_timestamp_millis(1_700_000_000_100).unwrap();
        assert_eq!(stream.next_step(at).timestamp_millis(), 1_700_000_000_250);
        let at = DateTime::from_timestamp_millis(1_700_000_000_250).unwrap();
        assert_eq!(stream.next_step(at).timestamp_millis(), 1_700_000_000_500);
    }
}
