//! Unit tests of `market::validate`.

use chrono::TimeZone;
use rust_decimal::Decimal;

use super::*;
use crate::{market::types::TradingStatus, reference::Symbol};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn aapl() -> Symbol {
    Symbol::parse("AAPL.US").unwrap()
}

fn a_quote() -> Quote {
    Quote {
        symbol: aapl(),
        last: d("190"),
        open: d("189"),
        high: d("191"),
        low: d("188"),
        prev_close: d("188.5"),
        volume: Some(d("1000")),
        turnover: Some(d("190000")),
        timestamp: now(),
        trading_status: TradingStatus::Normal,
        source: "test",
        stale: false,
    }
}

fn a_bar() -> Kline {
    Kline {
        time: now() - chrono::Duration::minutes(1),
        open: d("10"),
        high: d("11"),
        low: d("9.5"),
        close: d("10.5"),
        volume: Some(d("10")),
        turnover: Some(d("100")),
        source: "simulated",
    }
}

fn level(price: &str, volume: &str) -> BookLevel {
    BookLevel { price: d(price), volume: d(volume), orders: None }
}

#[test]
fn quotes() {
    assert_eq!(quote(&a_quote(), now()), Ok(()));
    let bad = |change: fn(&mut Quote)| {
        let mut q = a_quote();
        change(&mut q);
        quote(&q, now()).unwrap_err()
    };
    assert!(bad(|q| q.last = Decimal::ZERO).contains("not positive"));
    assert!(bad(|q| q.prev_close = d("-1")).contains("negative"));
    assert!(bad(|q| q.high = d("187")).contains("below low"));
    assert!(bad(|q| q.open = d("200")).contains("outside"));
    assert!(bad(|q| q.turnover = Some(d("-1"))).contains("negative"));
    // A high of 0 with a low is inconsistent too (the service's rule, kept).
    assert!(bad(|q| q.high = Decimal::ZERO).contains("below low"));
    // Before the session's first trade open/high/low are 0.
    let mut early = a_quote();
    (early.open, early.high, early.low) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    assert_eq!(quote(&early, now()), Ok(()));
}

#[test]
fn one_clock_skew_allowance_for_everything() {
    let late = now() + MAX_CLOCK_SKEW + chrono::Duration::milliseconds(1);
    let edge = now() + MAX_CLOCK_SKEW;
    let at = |time| Quote { timestamp: time, ..a_quote() };
    assert!(quote(&at(late), now()).unwrap_err().contains("future"));
    assert_eq!(quote(&at(edge), now()), Ok(()));
    assert!(kline(&Kline { time: late, ..a_bar() }, now()).unwrap_err().contains("future"));
    assert_eq!(kline(&Kline { time: edge, ..a_bar() }, now()), Ok(()));
    let trade = |timestamp| Tick {
        symbol: aapl(),
        price: d("1"),
        volume: d("1"),
        timestamp,
        direction: None,
        source: "simulated",
    };
    assert!(tick(&trade(late), now()).unwrap_err().contains("future"));
    assert_eq!(tick(&trade(edge), now()), Ok(()));
    let book = |timestamp| OrderBook { symbol: aapl(), bids: vec![], asks: vec![], timestamp };
    assert!(order_book(&book(late), now()).unwrap_err().contains("future"));
    assert_eq!(order_book(&book(edge), now()), Ok(()));
}

#[test]
fn klines() {
    assert_eq!(kline(&a_bar(), now()), Ok(()));
    let bad = |change: fn(&mut Kline)| {
        let mut bar = a_bar();
        change(&mut bar);
        kline(&bar, now()).unwrap_err()
    };
    assert!(bad(|b| b.high = d("9")).contains("below low"));
    assert!(bad(|b| b.close = d("11.5")).contains("outside"), "close above high");
    assert!(bad(|b| b.open = d("9")).contains("outside"), "open below low");
    assert!(bad(|b| b.open = Decimal::ZERO).contains("non-positive"));
    assert!(bad(|b| b.volume = Some(d("-1"))).contains("negative"));
    // No volume at all (an index) is not a negative one.
    let mut index_bar = a_bar();
    index_bar.volume = None;
    index_bar.turnover = None;
    assert!(kline(&index_bar, now()).is_ok());
}

#[test]
fn order_books() {
    let book = |bids, asks| OrderBook { symbol: aapl(), bids, asks, timestamp: now() };
    let good = book(vec![level("10", "1"), level("9.9", "2")], vec![level("10.1", "1"), level("10.2", "0")]);
    assert_eq!(order_book(&good, now()), Ok(()));
    assert!(order_book(&book(vec![level("9.9", "1"), level("10", "1")], vec![]), now()).unwrap_err().contains("bids"));
    assert!(
        order_book(&book(vec![], vec![level("10.2", "1"), level("10.1", "1")]), now()).unwrap_err().contains("asks")
    );
    assert!(order_book(&book(vec![level("0", "1")], vec![]), now()).unwrap_err().contains("not positive"));
    assert!(order_book(&book(vec![], vec![level("1", "-1")]), now()).unwrap_err().contains("negative"));
}

#[test]
fn ticks() {
    let trade = |price: &str, volume: &str| Tick {
        symbol: aapl(),
        price: d(price),
        volume: d(volume),
        timestamp: now(),
        direction: None,
        source: "simulated",
    };
    assert_eq!(tick(&trade("1", "0"), now()), Ok(()));
    assert!(tick(&trade("0", "1"), now()).unwrap_err().contains("not positive"));
    assert!(tick(&trade("1", "-1"), now()).unwrap_err().contains("negative"));
}
