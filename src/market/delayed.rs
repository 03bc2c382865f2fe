//! `MarketService::quote_as_of`: the quote a delayed market may show, as it stood at a moment
//! in the past (`now - delay_minutes`, `entitlements::Grant::cutoff`).
//!
//! Sources answer "the latest quote", not "the quote at 10:15", so the delayed quote is rebuilt
//! from closed bars, which every source keeps and which never change once closed (read from the
//! stored history where it has them). It changes once a minute, so it is built once per symbol
//! and minute and cached for that minute, rather than caching the bars behind it (a new
//! 1440-bar window each minute would crowd the closed-kline cache):
//! - the session is the UTC day holding the cutoff, as daily bars are (`types::Interval`: bars
//!   start at 00:00 UTC; a market trading through midnight starts a new session then, as the
//!   real-time quote of the simulated market does);
//! - `last` is the close of the last 1-minute bar that *ended* by the cutoff, and `timestamp`
//!   that bar's end, so the price shown is never younger than the delay; `open`, `high`, `low`,
//!   `volume` and `turnover` are those of the session's 1-minute bars up to it;
//! - `prevClose` is the close of the last daily bar before the session;
//! - when the session has no bar yet by the cutoff (before the open, a weekend, a holiday), the
//!   quote is the last whole session's, as a real-time quote is then;
//! - `tradingStatus` and `source` are the latest quote's (a suspension is news, not a price).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    health,
    limits::MAX_KLINES,
    service::MarketService,
    types::{Instrument, Interval, Kline, Quote, TradingStatus},
};
use crate::{
    error::{AppError, AppResult},
    reference::Symbol,
};

/// Minutes in a UTC day: the most 1-minute bars one session can have.
const MINUTES_PER_DAY: usize = 1440;

impl MarketService {
    /// The quote of `symbol` as of `at` (see the module doc); `delayed` in the API. Built once
    /// per symbol and minute (concurrent requests share the build), and kept for that minute;
    /// a failure is not kept.
    pub async fn quote_as_of(&self, symbol: &Symbol, at: DateTime<Utc>) -> AppResult<Quote> {
        let minute = Interval::OneMinute.bar_start(at);
        self.delayed_quotes()
            // One budget for every upstream call of the build, as for a klines window. Boxed: the
            // build holds several kline fetches, too large a future for a worker's stack.
            .try_get_with(
                (symbol.clone(), minute),
                Box::pin(health::within(self.deadline(), self.build_quote_as_of(symbol, minute))),
            )
            .await
            .map_err(|err| AppError::clone(&err))
    }

    /// The quote as of `minute` (a minute's start), from the bars that ended by it.
    async fn build_quote_as_of(&self, symbol: &Symbol, minute: DateTime<Utc>) -> AppResult<Quote> {
        let instrument = self.instrument(symbol).await?;
        let day = Interval::OneDay.bar_start(minute);
        let today = self.session_minutes(&instrument, day, minute).await?;
        // Closed daily bars before the session (the service's window ends where `day` starts).
        let days = self.klines(symbol, Interval::OneDay, Some(day), 2).await?;
        let latest = self.quote(symbol).await.ok();
        let (trading_status, source) = match &latest {
            Some(quote) => (quote.trading_status, quote.source),
            None => (TradingStatus::Normal, self.source_name()),
        };
        let quote = if let Some(last) = today.last() {
            let prev_close = days.last().map_or(today[0].open, |bar| bar.close);
            session(symbol, &today, prev_close, Interval::OneMinute.next_start(last.time))
        } else if let Some(last_day) = days.last() {
            // No bar yet today: the last whole session, against the close before it.
            let prev_close = days.len().checked_sub(2).map_or(last_day.open, |i| days[i].close);
            session(symbol, std::slice::from_ref(last_day), prev_close, Interval::OneDay.next_start(last_day.time))
        } else {
            return Err(AppError::NotFound(format!(
                "no price of `{symbol}` is old enough to show on a delayed plan yet"
            )));
        };
        Ok(Quote { trading_status, source, ..quote })
    }

    /// The 1-minute bars from `day` up to `end` (all of them closed), oldest first, fetched in
    /// windows of at most `MAX_KLINES` bars back from `end` (a 24-hour market has 1440).
    async fn session_minutes(
        &self,
        instrument: &Instrument,
        day: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> AppResult<Vec<Kline>> {
        let mut bars: Vec<Kline> = Vec::new();
        let mut end = end;
        // A day is at most two windows; one more lets a source that skips closed minutes finish.
        for _ in 0..=MINUTES_PER_DAY / MAX_KLINES as usize {
            let slots = usize::try_from((end - day).num_minutes()).unwrap_or(0).min(MAX_KLINES as usize);
            if slots == 0 {
                break;
            }
            let window = self.closed_window(instrument, Interval::OneMinute, end, slots).await?;
            let mut older: Vec<Kline> =
                window.iter().filter(|bar| bar.time >= day && bar.time < end).cloned().collect();
            let Some(first) = older.first() else { break };
            end = first.time;
            let short = window.len() < slots;
            older.append(&mut bars);
            bars = older;
            if short {
                break;
            }
        }
        Ok(bars)
    }
}

/// A quote summarising `bars` (oldest first, at least one) of one session.
fn session(symbol: &Symbol, bars: &[Kline], prev_close: Decimal, timestamp: DateTime<Utc>) -> Quote {
    let (first, last) = (&bars[0], &bars[bars.len() - 1]);
    let sum = |pick: fn(&Kline) -> Option<Decimal>| bars.iter().map(pick).sum::<Option<Decimal>>();
    Quote {
        symbol: symbol.clone(),
        last: last.close,
        open: first.open,
        high: bars.iter().map(|bar| bar.high).max().unwrap_or(last.high),
        low: bars.iter().map(|bar| bar.low).min().unwrap_or(last.low),
        prev_close,
        volume: sum(|bar| bar.volume),
        turnover: sum(|bar| bar.turnover),
        timestamp,
        trading_status: TradingStatus::Normal,
        source: "",
        stale: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(time: &str, open: i64, high: i64, low: i64, close: i64) -> Kline {
        Kline {
            time: time.parse().unwrap(),
            open: open.into(),
            high: high.into(),
            low: low.into(),
            close: close.into(),
            volume: Some(Decimal::TEN),
            turnover: Some(Decimal::ONE_HUNDRED),
            source: "simulated",
        }
    }

    #[test]
    fn a_session_summarises_its_bars() {
        let symbol = Symbol::parse("AAPL.US").unwrap();
        let bars = [bar("2026-11-25T14:30:00Z", 10, 12, 9, 11), bar("2026-11-25T14:31:00Z", 11, 15, 8, 14)];
        let end: DateTime<Utc> = "2026-11-25T14:32:00Z".parse().unwrap();
        let quote = session(&symbol, &bars, Decimal::from(9), end);
        assert_eq!((quote.open, quote.high, quote.low, quote.last), (10.into(), 15.into(), 8.into(), 14.into()));
        assert_eq!(quote.volume, Some(Decimal::from(20)));
        assert_eq!(quote.turnover, Some(Decimal::from(200)));
        assert_eq!(quote.prev_close, Decimal::from(9));
        assert_eq!(quote.timestamp, end);
        let mut untraded = bars.clone();
        untraded[1].volume = None;
        assert_eq!(session(&symbol, &untraded, Decimal::ONE, end).volume, None);
    }
}
