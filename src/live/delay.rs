//! Delayed live data: what a plan's `delayed` market shows a subscriber, `delay_minutes` late.
//!
//! A [`DelayLine`](crate::live::delay::DelayLine) sits between one topic's receiver and one subscriber: each event is held
//! until it is at least the delay old (its age counted from the upstream's timestamp when that
//! is older than its arrival, so a lagging upstream does not add to the delay twice), then
//! delivered. Nothing younger than the delay ever leaves the line.
//!
//! # Bounded: conflation into slots
//! A line holds at most `capacity` entries (`FINQL_LIVE_DELAY_SLOTS`). For states (quotes,
//! forming bars) only the newest value of a moment matters, so the delay is cut into
//! `capacity` slots of `delay / capacity` each: an event due within the slot of the last entry
//! replaces that entry's value (and its due time: the newest value is still delivered no
//! earlier than its own delay). A subscriber thus receives at most one value per slot, each as
//! it stood `delay` earlier, and memory per delayed topic per subscriber is at most `capacity`
//! entries (a pointer to a shared event and two instants each), however fast the market moves.
//! Trades are events: each is kept; a line that would exceed its capacity within one delay
//! ends the subscription ([`Overflow`](crate::live::delay::Overflow)) rather than drop trades silently or grow.
//!
//! # Measured
//! Every line counts its entries into a [`DelayMeter`](crate::live::delay::DelayMeter) shared by the hub ([`DelayMeter::entries`](crate::live::delay::DelayMeter::entries),
//! [`DelayMeter::peak`](crate::live::delay::DelayMeter::peak)), so the memory delayed subscriptions hold is observable, and a test
//! shows it stays within `capacity` per line.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use tokio::time::Instant;

use super::SharedEvent;

/// Entries held by every delay line of a process (one per delayed topic per subscription).
#[derive(Clone, Default, Debug)]
pub struct DelayMeter {
    inner: Arc<Counters>,
}

#[derive(Default, Debug)]
struct Counters {
    entries: AtomicU64,
    peak: AtomicU64,
    lines: AtomicU64,
}

impl DelayMeter {
    /// Entries held now, over all lines.
    pub fn entries(&self) -> u64 {
        self.inner.entries.load(Ordering::Relaxed)
    }

    /// The most entries ever held at once.
    pub fn peak(&self) -> u64 {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// Lines open now.
    pub fn lines(&self) -> u64 {
        self.inner.lines.load(Ordering::Relaxed)
    }

    fn add(&self) {
        let now = self.inner.entries.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.inner.entries.fetch_sub(n as u64, Ordering::Relaxed);
    }
}

/// A trades line filled past its capacity within one delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    pub capacity: usize,
}

struct Entry {
    /// When the slot this entry conflates into started (the due time of its first value).
    slot_start: Instant,
    /// When the value may be delivered.
    due: Instant,
    event: Arc<SharedEvent>,
}

/// One topic's events for one subscriber, each held until it is `delay` old.
pub struct DelayLine {
    delay: Duration,
    /// `None` for trades: every event kept.
    slot: Option<Duration>,
    capacity: usize,
    queue: VecDeque<Entry>,
    meter: DelayMeter,
}

impl DelayLine {
    /// A line for states (`conflate`) or trades, holding at most `capacity` entries.
    pub fn new(delay: Duration, capacity: usize, conflate: bool, meter: DelayMeter) -> Self {
        let capacity = capacity.max(1);
        let slot = conflate.then(|| delay / u32::try_from(capacity).unwrap_or(u32::MAX));
        meter.inner.lines.fetch_add(1, Ordering::Relaxed);
        Self { delay, slot, capacity, queue: VecDeque::new(), meter }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes an event that arrived now.
    pub fn push(&mut self, event: Arc<SharedEvent>) -> Result<(), Overflow> {
        let age = (Utc::now() - event.upstream_time()).to_std().unwrap_or_default();
        let due = Instant::now() + self.delay.saturating_sub(age);
        if let (Some(slot), Some(last)) = (self.slot, self.queue.back_mut())
            && due < last.slot_start + slot
        {
            last.due = last.due.max(due);
            last.event = event;
            return Ok(());
        }
        if self.queue.len() >= self.capacity {
            match self.queue.back_mut() {
                // A state line full of slots (only when events arrive older than the delay in
                // bursts): the newest value replaces the last.
                Some(last) if self.slot.is_some() => {
                    last.due = last.due.max(due);
                    last.event = event;
                    return Ok(());
                }
                _ => return Err(Overflow { capacity: self.capacity }),
            }
        }
        // Kept in due order: an event older than the last (a late upstream) is not delivered
        // before it.
        let due = self.queue.back().map_or(due, |last| last.due.max(due));
        self.queue.push_back(Entry { slot_start: due, due, event });
        self.meter.add();
        Ok(())
    }

    /// When the oldest entry is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|entry| entry.due)
    }

    /// The oldest entry if it is due.
    pub fn pop_due(&mut self) -> Option<Arc<SharedEvent>> {
        if self.queue.front().is_some_and(|entry| entry.due <= Instant::now()) {
            self.meter.sub(1);
            return self.queue.pop_front().map(|entry| entry.event);
        }
        None
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.meter.sub(self.queue.len());
        self.meter.inner.lines.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::{
        live::LiveEvent,
        market::{Quote, Tick, TradingStatus},
        reference::Symbol,
    };

    const DELAY: Duration = Duration::from_secs(15 * 60);

    fn quote_at(last: i64, timestamp: chrono::DateTime<Utc>) -> Quote {
        Quote {
            symbol: Symbol::parse("700.HK").unwrap(),
            last: Decimal::from(last),
            open: Decimal::ONE,
            high: Decimal::from(last.max(1)),
            low: Decimal::ONE,
            prev_close: Decimal::ONE,
            volume: Some(Decimal::ZERO),
            turnover: Some(Decimal::ZERO),
            timestamp,
            trading_status: TradingStatus::Normal,
            source: "test",
            stale: false,
        }
    }

    fn quote(last: i64) -> Arc<SharedEvent> {
        // Ahead of the wall clock (which tokio's paused clock does not stop): no age is
        // subtracted from the delay, so only the paused clock decides when quotes leave.
        SharedEvent::new(LiveEvent::Quote(quote_at(last, Utc::now() + chrono::Duration::hours(1))))
    }

    fn last(event: &LiveEvent) -> i64 {
        match event {
            LiveEvent::Quote(q) => i64::try_from(q.last).unwrap(),
            _ => panic!("not a quote"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_leaves_before_the_delay_and_memory_stays_within_capacity() {
        let meter = DelayMeter::default();
        let mut line = DelayLine::new(DELAY, 100, true, meter.clone());
        let start = Instant::now();
        // Ten quotes a second for two delays: 18,000 events.
        let mut delivered = Vec::new();
        for n in 0..18_000 {
            line.push(quote(n)).unwrap();
            assert!(line.len() <= 100, "a line holds at most its capacity: {}", line.len());
            while let Some(event) = line.pop_due() {
                delivered.push((Instant::now() - start, last(&event)));
            }
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert!(meter.peak() <= 100, "measured peak {}", meter.peak());
        assert!(!delivered.is_empty());
        for (at, n) in &delivered {
            // Quote n was pushed at n * 100 ms; it leaves at least DELAY later.
            let pushed = Duration::from_millis(100 * u64::try_from(*n).unwrap());
            assert!(*at >= pushed + DELAY, "quote {n} pushed at {pushed:?} left at {at:?}");
        }
        // Conflated: about one value per slot (9 s), not every quote.
        assert!(delivered.len() <= 101, "{} values delivered", delivered.len());
        assert!(delivered.len() >= 90, "{} values delivered", delivered.len());
        // Nothing younger than the delay was ever delivered, and the newest values did come.
        let newest = delivered.last().unwrap().1;
        assert!(newest >= 8_900, "the value of {newest} is about one delay old");
        drop(line);
        assert_eq!(meter.entries(), 0);
        assert_eq!(meter.lines(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn trades_are_kept_each_and_a_full_line_overflows() {
        let meter = DelayMeter::default();
        let mut line = DelayLine::new(DELAY, 3, false, meter.clone());
        let tick = || {
            SharedEvent::new(LiveEvent::Tick(Tick {
                symbol: Symbol::parse("700.HK").unwrap(),
                price: Decimal::ONE,
                volume: Decimal::ONE,
                timestamp: Utc::now(),
                direction: None,
                source: "simulated",
            }))
        };
        for _ in 0..3 {
            line.push(tick()).unwrap();
        }
        assert_eq!(line.push(tick()), Err(Overflow { capacity: 3 }));
        assert_eq!(meter.entries(), 3);
        assert!(line.pop_due().is_none());
        tokio::time::advance(DELAY).await;
        assert!(line.pop_due().is_some() && line.pop_due().is_some() && line.pop_due().is_some());
        assert!(line.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_already_older_than_the_delay_leaves_at_once() {
        let mut line = DelayLine::new(DELAY, 10, true, DelayMeter::default());
        let quote = quote_at(1, Utc::now() - chrono::Duration::minutes(20));
        line.push(SharedEvent::new(LiveEvent::Quote(quote))).unwrap();
        assert!(line.pop_due().is_some());
    }
}
