//! Quotes, order books and trades of the simulated market: the bar in progress is the elapsed
//! part of its period, quotes are today's bar so far, books surround the last price, trades are
//! the seconds' trades.

use std::sync::atomic::{AtomicI64, Ordering};

use super::*;

#[test]
fn the_bar_in_progress_is_the_elapsed_part_of_its_period() {
    let i = instrument("FX:GBPUSD");
    let m = market();
    let now = secs("2027-06-15T15:42:07Z");
    let quote = m.quote_at(&i, now);
    for interval in Interval::ALL {
        let bar = m.klines_at(&i, interval, None, 1, now).pop().unwrap();
        assert_eq!(bar.close, quote.last, "{interval:?}");
    }
    // Today so far is the minutes so far, the last one in progress.
    let day = m.klines_at(&i, Interval::OneDay, None, 1, now).pop().unwrap();
    let minutes = m.klines_at(&i, Interval::OneMinute, None, 943, now);
    assert_eq!(minutes[0].time, at("2027-06-15T00:00:00Z"));
    assert_eq!(aggregate(&minutes), day);
    // And the quote is today so far.
    assert_eq!(
        (quote.open, quote.high, quote.low, quote.volume, quote.turnover),
        (day.open, day.high, day.low, day.volume, day.turnover)
    );
    let yesterday = m.klines_at(&i, Interval::OneDay, Some(day.time), 1, now).pop().unwrap();
    assert_eq!(quote.prev_close, yesterday.close);
    assert_eq!(quote.timestamp, timestamp(now));
    assert_eq!((quote.source, quote.stale, quote.trading_status), ("simulated", false, TradingStatus::Normal));
}

#[test]
fn quote_at_midnight_is_the_open() {
    let m = market();
    let i = instrument("CRYPTO:BTCUSDT");
    let now = secs("2026-02-02T00:00:00Z");
    let quote = m.quote_at(&i, now);
    assert_eq!(quote.volume, Some(Decimal::ZERO));
    assert_eq!((quote.open, quote.high, quote.low), (quote.last, quote.last, quote.last));
    assert_eq!(quote.prev_close, quote.last);
}

#[test]
fn quotes_move_in_real_time() {
    let m = market();
    for symbol in ["AAPL.US", "CRYPTO:BTCUSDT", "FX:EURUSD", "IDX:SPX"] {
        let i = instrument(symbol);
        // A minute of US trading hours, second by second.
        let start = secs("2026-04-14T15:00:00Z");
        let prices: Vec<Decimal> = (0..60).map(|s| m.quote_at(&i, start + s).last).collect();
        let mut distinct = prices.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= 5, "{symbol}: {prices:?}");
    }
}

#[test]
fn quotes_stay_inside_the_day() {
    let m = market();
    let mut pick = picks(17);
    for i in catalog() {
        let now = secs("2024-01-01T00:00:00Z") + pick(3 * 365 * DAY as u64) as i64;
        let q = m.quote_at(&i, now);
        assert!(q.low <= q.last && q.last <= q.high, "{}: {q:?}", i.symbol);
        assert!(q.low <= q.open && q.open <= q.high && q.low > Decimal::ZERO, "{}: {q:?}", i.symbol);
        // No opening gaps: a session opens at the last close (its grid permitting).
        let tick = tick_at(&i, q.timestamp.timestamp(), q.open);
        assert!((q.open - q.prev_close).abs() <= tick, "{}: {q:?}", i.symbol);
        if i.asset_class == AssetClass::Index {
            assert!(q.volume.is_none() && q.turnover.is_none(), "{}: indices have no volume", i.symbol);
        } else {
            assert!(q.volume > Some(Decimal::ZERO) && q.turnover > Some(Decimal::ZERO), "{}: {q:?}", i.symbol);
        }
    }
}

#[tokio::test]
async fn the_clock_drives_the_source() {
    let time = Arc::new(AtomicI64::new(secs("2026-05-01T12:00:00Z")));
    let clock = time.clone();
    let m = SimulatedMarket::with_clock(move || timestamp(clock.load(Ordering::SeqCst)));
    let i = instrument("CRYPTO:SOLUSDT");
    let first = m.quotes(std::slice::from_ref(&i)).await.unwrap().pop().unwrap();
    time.fetch_add(30, Ordering::SeqCst);
    let second = m.quotes(std::slice::from_ref(&i)).await.unwrap().pop().unwrap();
    assert_eq!(second.timestamp - first.timestamp, Duration::seconds(30));
    assert_ne!(first.last, second.last);
    let bars = m.klines(&i, Interval::OneMinute, None, 3).await.unwrap();
    assert_eq!(bars.last().unwrap().close, second.last);
    assert_eq!(bars.last().unwrap().time, at("2026-05-01T12:00:00Z"));
    let book = m.order_book(&i, 5).await.unwrap();
    assert_eq!(book.timestamp, second.timestamp);
    let ticks = m.ticks(&i, 10).await.unwrap();
    assert_eq!(ticks.last().unwrap().price, second.last);
}

#[test]
fn order_books_surround_the_last_price() {
    let m = market();
    let mut pick = picks(19);
    for i in catalog() {
        for _ in 0..5 {
            let now = secs("2025-01-01T00:00:00Z") + pick(365 * DAY as u64) as i64;
            let quote = m.quote_at(&i, now);
            let last = quote.last;
            let book = m.order_book_at(&i, 10, now);
            assert_eq!(book.timestamp, quote.timestamp, "{}: frozen at the last close", i.symbol);
            if i.asset_class == AssetClass::Index {
                assert!(book.bids.is_empty() && book.asks.is_empty(), "{}: indices have no book", i.symbol);
                continue;
            }
            assert_eq!((book.bids.len(), book.asks.len()), (10, 10), "{}", i.symbol);
            let (bid, ask) = (&book.bids[0].price, &book.asks[0].price);
            assert!(bid <= &last && &last <= ask && bid < ask, "{}: {bid} {last} {ask}", i.symbol);
            let tick = tick_at(&i, now, last);
            assert!(ask - bid <= tick * Decimal::TWO, "{}: spread {bid}..{ask}", i.symbol);
            for side in [&book.bids, &book.asks] {
                for level in side.iter() {
                    assert!(level.price > Decimal::ZERO && level.volume > Decimal::ZERO, "{}", i.symbol);
                    assert!(level.orders.is_some_and(|n| n > 0));
                }
            }
            assert!(book.bids.windows(2).all(|w| w[0].price > w[1].price), "{}", i.symbol);
            assert!(book.asks.windows(2).all(|w| w[0].price < w[1].price), "{}", i.symbol);
        }
    }
    assert!(m.order_book_at(&instrument("AAPL.US"), 0, m.now()).bids.is_empty());
    assert_eq!(m.order_book_at(&instrument("AAPL.US"), 1000, m.now()).asks.len(), MAX_BOOK_LEVELS);
}

#[test]
fn ticks_are_the_trades_of_the_bars() {
    let m = market();
    for symbol in ["AAPL.US", "CRYPTO:BTCUSDT", "FX:USDJPY", "FUT:HSI.HK", "700.HK"] {
        let i = instrument(symbol);
        let now = secs("2026-08-20T14:30:00Z");
        let ticks = m.ticks_at(&i, 1000, now);
        assert_eq!(ticks.len(), 1000, "{symbol}");
        assert_eq!(ticks.last().unwrap().price, m.quote_at(&i, now).last, "{symbol}");
        assert!(ticks.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "{symbol}");
        assert!(ticks.iter().all(|t| t.timestamp < timestamp(now) && t.volume > Decimal::ZERO), "{symbol}");
        for pair in ticks.windows(2) {
            let expected = match pair[1].price.cmp(&pair[0].price) {
                std::cmp::Ordering::Greater => TickDirection::Buy,
                std::cmp::Ordering::Less => TickDirection::Sell,
                std::cmp::Ordering::Equal => TickDirection::Neutral,
            };
            assert_eq!(pair[1].direction, Some(expected), "{symbol}");
        }
        // Each trade within its minute's range; a whole minute's trades sum to its volume.
        let minutes = m.klines_at(&i, Interval::OneMinute, None, 60, now);
        for tick in &ticks {
            let bar = minutes.iter().find(|b| b.time == Interval::OneMinute.bar_start(tick.timestamp)).unwrap();
            assert!(bar.low <= tick.price && tick.price <= bar.high, "{symbol}: {tick:?} outside {bar:?}");
        }
        // The last whole minute of trades (the market may have closed hours ago).
        let minute = Interval::OneMinute.bar_start(ticks.last().unwrap().timestamp) - Duration::minutes(1);
        let in_minute = |t: &&Tick| Interval::OneMinute.bar_start(t.timestamp) == minute;
        let oldest = ticks[0].timestamp;
        if oldest < minute {
            let total: Decimal = ticks.iter().filter(in_minute).map(|t| t.volume).sum();
            let bar = minutes.iter().find(|b| b.time == minute).unwrap();
            assert_eq!(Some(total), bar.volume, "{symbol}");
        }
        // Same trades whatever the limit.
        assert_eq!(m.ticks_at(&i, 10, now)[..], ticks[990..], "{symbol}");
    }
    assert!(m.ticks_at(&instrument("AAPL.US"), 0, m.now()).is_empty());
    assert_eq!(m.ticks_at(&instrument("AAPL.US"), 5000, m.now()).len(), MAX_TICKS);
}
