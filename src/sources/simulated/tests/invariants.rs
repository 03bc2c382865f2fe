//! What a quant checks before trusting the simulated market, over every catalog instrument and
//! dates spread over 2000–2030: bars only in sessions, quotes that agree with the calendar,
//! prevClose the previous session's close, exact aggregates at every level (across splits too),
//! every price on its market's grid, nothing before listing, history with the prices of its
//! time, splits continuous, the same answers from any instance.

use chrono::Datelike;

use super::*;
use crate::market::{
    calendar::{self, MarketState, Region},
    corporate::ActionKind,
    tick_size,
};

/// `n` instants spread over 2000–2030 (from two months after `i` listed), picked
/// deterministically.
fn instants(pick: &mut impl FnMut(u64) -> u64, i: &Instrument, n: usize) -> Vec<i64> {
    let listed = day_of(fallback_listing(i.asset_class)) * DAY + 60 * DAY;
    let (from, to) = (secs("2000-03-01T00:00:00Z").max(listed), secs("2030-12-01T00:00:00Z"));
    (0..n).map(|_| from + pick((to - from) as u64) as i64).collect()
}

/// Whether `[from, to)` meets a regular session of `region`.
fn meets_session(region: Region, from: i64, to: i64) -> bool {
    (from.div_euclid(DAY) - 1..=to.div_euclid(DAY) + 1)
        .flat_map(|day| calendar::sessions_on(region, date_of(day)))
        .any(|(open, close)| open.timestamp() < to && close.timestamp() > from)
}

/// Whether a session of `region` ends exactly at `at`.
fn is_session_close(region: Region, at: i64) -> bool {
    (at.div_euclid(DAY) - 1..=at.div_euclid(DAY) + 1)
        .flat_map(|day| calendar::sessions_on(region, date_of(day)))
        .any(|(_, close)| close.timestamp() == at)
}

/// Whether an exchange keeps the instrument's hours (not FX or crypto).
fn on_exchange(i: &Instrument) -> bool {
    !matches!(i.market, Region::Fx | Region::Global)
}

/// Each bar of `coarse` is exactly the aggregate of its `fine` bars (no chaining asked: a
/// split makes one bar open far from the close before it).
fn assert_exact(m: &SimulatedMarket, i: &Instrument, coarse: Interval, fine: Interval, end: DateTime<Utc>, now: i64) {
    for bar in m.klines_at(i, coarse, Some(end), 2, now) {
        let next = coarse.next_start(bar.time);
        let length = (next - bar.time).num_minutes() / fine.minutes().unwrap_or(1440 * 28);
        let parts: Vec<Kline> = m
            .klines_at(i, fine, Some(next), length as usize + 1, now)
            .into_iter()
            .filter(|part| part.time >= bar.time)
            .collect();
        assert_eq!(
            Kline { time: bar.time, ..aggregate(&parts) },
            bar,
            "{} {coarse:?} at {} from {fine:?}",
            i.symbol,
            bar.time
        );
    }
}

#[test]
fn bars_only_in_sessions_and_on_every_trading_day() {
    let m = market();
    let now = m.now();
    let mut pick = picks(101);
    for i in catalog() {
        let region = i.market;
        for t in instants(&mut pick, &i, 3) {
            let end = Some(timestamp(t));
            let days = m.klines_at(&i, Interval::OneDay, end, 15, now);
            assert_eq!(days.len(), 15, "{}", i.symbol);
            for bar in &days {
                let from = bar.time.timestamp();
                assert!(meets_session(region, from, from + DAY), "{}: a bar on {}", i.symbol, bar.time);
                if on_exchange(&i) {
                    assert!(calendar::is_trading_day(region, bar.time.date_naive()), "{} {}", i.symbol, bar.time);
                }
            }
            // No trading day is missing between the first and the last.
            if on_exchange(&i) {
                let (first, last) = (days[0].time.date_naive(), days[days.len() - 1].time.date_naive());
                let trading =
                    first.iter_days().take_while(|d| *d <= last).filter(|d| calendar::is_trading_day(region, *d));
                assert_eq!(trading.count(), days.len(), "{} {first}..{last}", i.symbol);
            }
            for (interval, seconds) in [(Interval::OneHour, HOUR), (Interval::FiveMinutes, 5 * MINUTE)] {
                for bar in m.klines_at(&i, interval, end, 40, now) {
                    let from = bar.time.timestamp();
                    assert!(meets_session(region, from, from + seconds), "{}: {interval:?} at {}", i.symbol, bar.time);
                }
            }
            for bar in m.klines_at(&i, Interval::OneWeek, end, 3, now) {
                let from = bar.time.timestamp();
                assert!(meets_session(region, from, from + 7 * DAY), "{}: week of {}", i.symbol, bar.time);
            }
        }
    }
}

#[test]
fn quotes_agree_with_the_calendar_and_prev_close_is_the_last_session() {
    let m = market();
    let mut pick = picks(103);
    let holidays = [
        secs("2026-12-25T15:00:00Z"), // Christmas: the US, HK and Europe closed
        secs("2026-10-01T03:00:00Z"), // China's National Day
        secs("2026-11-30T03:00:00Z"), // a Monday in Asia's session
        secs("2026-11-28T12:00:00Z"), // a Saturday
    ];
    for i in catalog() {
        let region = i.market;
        let splits = Profile::new(&i).splits;
        for t in instants(&mut pick, &i, 6).into_iter().chain(holidays) {
            let q = m.quote_at(&i, t);
            let state = calendar::status(region, timestamp(t)).state;
            if state == MarketState::Open {
                assert_eq!(q.timestamp, timestamp(t), "{} open at {}", i.symbol, timestamp(t));
            } else {
                // Closed: the last close, timed at that close, and it does not move.
                assert!(q.timestamp < timestamp(t), "{} closed at {}", i.symbol, timestamp(t));
                assert!(is_session_close(region, q.timestamp.timestamp()), "{}: {}", i.symbol, q.timestamp);
                if calendar::status(region, timestamp(t + 60)).state != MarketState::Open {
                    assert_eq!(m.quote_at(&i, t + 60), q, "{} moved while closed", i.symbol);
                }
            }
            // The quote is its trading day's bar; prevClose the close of the day before it.
            let days = m.klines_at(&i, Interval::OneDay, Some(q.timestamp), 2, t);
            let (before, today) = (&days[0], &days[1]);
            assert_eq!(today.close, q.last, "{} at {}", i.symbol, q.timestamp);
            assert_eq!((today.open, today.high, today.low), (q.open, q.high, q.low), "{}", i.symbol);
            assert_eq!(today.volume, q.volume, "{}", i.symbol);
            let ex_day = splits.iter().any(|(ex, _)| *ex == today.time.timestamp().div_euclid(DAY));
            if !ex_day {
                assert_eq!(q.prev_close, before.close, "{} at {}", i.symbol, q.timestamp);
            }
            if on_exchange(&i) {
                let previous = calendar::previous_trading_day(region, today.time.date_naive()).unwrap();
                assert_eq!(before.time.date_naive(), previous, "{}", i.symbol);
            }
        }
    }
}

#[test]
fn aggregates_are_exact_at_every_level_and_date() {
    let m = market();
    let now = m.now();
    let mut pick = picks(107);
    for i in catalog() {
        for t in instants(&mut pick, &i, 1) {
            let end = timestamp(t);
            assert_exact(&m, &i, Interval::OneWeek, Interval::OneDay, end, now);
            assert_exact(&m, &i, Interval::OneMonth, Interval::OneDay, end, now);
            assert_exact(&m, &i, Interval::OneDay, Interval::OneHour, end, now);
            assert_exact(&m, &i, Interval::OneHour, Interval::OneMinute, end, now);
            assert_exact(&m, &i, Interval::FourHours, Interval::FifteenMinutes, end, now);
        }
    }
    // Weeks and months across splits, as traded.
    for (symbol, date) in [
        ("AAPL.US", "2020-09-02T00:00:00Z"),
        ("AAPL.US", "2020-09-30T00:00:00Z"),
        ("NVDA.US", "2021-07-22T00:00:00Z"),
        ("NVDA.US", "2024-06-12T00:00:00Z"),
        ("TSLA.US", "2022-08-27T00:00:00Z"),
        ("AMZN.US", "2022-06-08T00:00:00Z"),
        ("700.HK", "2014-05-17T00:00:00Z"),
        ("AAPL.US", "2020-02-15T00:00:00Z"),
        ("AAPL.US", "2020-03-31T00:00:00Z"),
    ] {
        let i = instrument(symbol);
        assert_exact(&m, &i, Interval::OneWeek, Interval::OneDay, at(date), now);
        assert_exact(&m, &i, Interval::OneMonth, Interval::OneDay, at(date), now);
        assert_exact(&m, &i, Interval::OneDay, Interval::OneHour, at(date), now);
    }
}

#[test]
fn every_share_price_is_on_its_markets_tick_ladder() {
    let m = market();
    let mut pick = picks(109);
    // A price is on the ladder of its day; an aggregated bar's, of one of its days (HKEX's
    // ladder changed on 2025-08-04).
    let on_ladder_of = |i: &Instrument, when: DateTime<Utc>, until: DateTime<Utc>, price: Decimal| {
        let dates = when.date_naive().iter_days().take_while(|d| *d < until.date_naive()).take(31);
        assert!(
            dates.into_iter().any(|date| tick_size::is_on_tick(i.market, date, price)),
            "{}: {price} of {when}..{until} is off the {} ladder",
            i.symbol,
            i.market
        );
    };
    let on_ladder = |i: &Instrument, when: DateTime<Utc>, price: Decimal| {
        assert!(
            tick_size::is_on_tick(i.market, when.date_naive(), price),
            "{}: {price} on {} is off the {} ladder",
            i.symbol,
            when.date_naive(),
            i.market
        );
        let places = match i.market {
            Region::Hk => 3,
            Region::Us if price < Decimal::ONE => 4,
            _ => 2,
        };
        assert_eq!(price.scale(), places, "{}: {price}", i.symbol);
    };
    for i in catalog().into_iter().filter(|i| matches!(i.asset_class, AssetClass::Stock | AssetClass::Fund)) {
        for t in instants(&mut pick, &i, 3).into_iter().chain([secs("2026-11-30T06:00:00Z")]) {
            let end = Some(timestamp(t));
            for interval in [Interval::OneDay, Interval::FiveMinutes, Interval::OneMonth] {
                for bar in m.klines_at(&i, interval, end, 20, t) {
                    for price in [bar.open, bar.high, bar.low, bar.close] {
                        if interval == Interval::OneMonth {
                            on_ladder_of(&i, bar.time, interval.next_start(bar.time), price);
                        } else {
                            on_ladder(&i, bar.time, price);
                        }
                    }
                }
            }
            let q = m.quote_at(&i, t);
            for price in [q.last, q.open, q.high, q.low] {
                on_ladder(&i, q.timestamp, price);
            }
            let book = m.order_book_at(&i, 20, t);
            for level in book.bids.iter().chain(&book.asks) {
                on_ladder(&i, book.timestamp, level.price);
            }
            for tick in m.ticks_at(&i, 50, t) {
                on_ladder(&i, tick.timestamp, tick.price);
            }
        }
    }
}

#[test]
fn nothing_trades_before_listing() {
    let m = market();
    let now = m.now();
    for mut i in catalog() {
        let listed = if i.asset_class == AssetClass::Crypto { "2019-03-13" } else { "2004-03-17" };
        i.listed_at = Some(listed.parse().unwrap());
        let listed = i.listed_at.unwrap();
        let day_after = timestamp(day_of(listed) * DAY + 40 * DAY);
        for interval in [Interval::OneDay, Interval::OneHour, Interval::OneWeek, Interval::OneMonth] {
            let bars = m.klines_at(&i, interval, Some(day_after), 10_000, now);
            assert!(!bars.is_empty(), "{} {interval:?}", i.symbol);
            let first_day = m.klines_at(&i, Interval::OneDay, Some(day_after), 10_000, now)[0].time;
            assert!(first_day.date_naive() >= listed, "{}: a bar on {first_day}", i.symbol);
            // A week or month holding the listing day is the listed days only.
            assert_eq!(bars[0].open, m.klines_at(&i, Interval::OneDay, Some(day_after), 10_000, now)[0].open);
        }
        let before = timestamp(day_of(listed) * DAY);
        assert!(m.klines_at(&i, Interval::OneDay, Some(before), 10, now).is_empty(), "{}", i.symbol);
        let month = Interval::OneMonth.bar_start(before);
        assert!(m.klines_at(&i, Interval::OneMonth, Some(month), 10, now).is_empty(), "{}", i.symbol);
        // Unknown listing: the documented fallback.
        i.listed_at = None;
        let fallback = fallback_listing(i.asset_class);
        let later = timestamp(day_of(fallback) * DAY + 400 * DAY);
        let oldest = m.klines_at(&i, Interval::OneMonth, Some(later), 100, now);
        let first = m.klines_at(&i, Interval::OneDay, Some(oldest[0].time + Duration::days(40)), 100, now)[0].time;
        assert!(first.date_naive() >= fallback, "{}: {first}", i.symbol);
    }
}

#[test]
fn history_has_the_prices_of_its_time() {
    let m = market();
    let now = m.now();
    let close = |i: &Instrument, date: &str| {
        let bar = m.klines_at(i, Interval::OneDay, Some(at(date)), 1, now).pop().unwrap();
        let day = bar.time.timestamp().div_euclid(DAY);
        bar.close.to_string().parse::<f64>().unwrap() / Profile::new(i).multiple(day)
    };
    let mut ratios = Vec::new();
    for i in catalog().into_iter().filter(|i| matches!(i.asset_class, AssetClass::Stock | AssetClass::Fund)) {
        // In today's shares, 2006 is below 2026 for every share growing 4% a year or more.
        let ratio = close(&i, "2006-06-15T00:00:00Z") / close(&i, "2026-06-15T00:00:00Z");
        assert!(ratio < 1.0, "{}: 2006 at {ratio:.2} of 2026", i.symbol);
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(median < 0.5, "median 2006/2026 {median:.2}");
    // Valuation bands move with the walk around a typical P/E, not with the years.
    let aapl = instrument("AAPL.US");
    let points = reference::fundamentals(&m, &aapl, "2006-01-01".parse().unwrap(), "2007-12-31".parse().unwrap(), now);
    // Weekdays less holidays (502 with full holiday tables; 521 with weekends alone).
    assert!(points.len() > 495 && points.len() <= 522, "{} trading days", points.len());
    let pes: Vec<Decimal> = points.iter().filter_map(|p| p.pe).collect();
    let (low, high) = (pes.iter().min().unwrap(), pes.iter().max().unwrap());
    assert!(*low > Decimal::from(12) && *high < Decimal::from(80), "AAPL PE 2006-07: {low}..{high}");
    assert!(high - low > Decimal::from(3), "a band that moves: {low}..{high}");
}

#[test]
fn splits_are_continuous_and_pre_split_prices_keep_their_market_grid() {
    let m = market();
    let now = m.now();
    for i in catalog() {
        let profile = Profile::new(&i);
        let grid = profile.grid;
        for &(ex, ratio) in &profile.splits {
            let days = m.klines_at(&i, Interval::OneDay, Some(timestamp(ex * DAY + 1)), 2, now);
            let (before, after) = (&days[0], &days[1]);
            assert_eq!(after.time.timestamp(), ex * DAY, "{}", i.symbol);
            let ratio = Decimal::try_from(ratio).unwrap();
            // The close before, in the new shares, is the open after, to the ticks' rounding.
            let ticks = tick_at(&i, ex * DAY, before.close) / ratio + tick_at(&i, ex * DAY + 1, after.open);
            assert!((before.close / ratio - after.open).abs() <= ticks, "{}: {before:?} {after:?}", i.symbol);
            // As traded = the adjusted path × the split factor, rounded once, on the market's grid.
            let mut path = Path::new(&profile);
            for day in [ex - 1, ex - 30, ex - 400] {
                let bar = m.klines_at(&i, Interval::OneDay, Some(timestamp(day * DAY + 1)), 1, now).pop().unwrap();
                let day = bar.time.timestamp().div_euclid(DAY);
                let adjusted = profile.level * path.log_price(day + 1).exp();
                let expected = grid.decimal(grid.snap(day, adjusted * profile.multiple(day)));
                assert_eq!(bar.close, expected, "{} on {}", i.symbol, bar.time);
            }
        }
    }
    // NVDA before its 2021 split moves in cents, not in 40-cent steps.
    let nvda = instrument("NVDA.US");
    let bars = m.klines_at(&nvda, Interval::OneDay, Some(at("2021-01-01T00:00:00Z")), 200, now);
    let coarse = bars.iter().filter(|b| (b.close % Decimal::new(40, 2)).is_zero()).count();
    assert!(coarse < 20, "{coarse} of 200 closes on a 0.40 grid");
}

#[test]
fn ex_dates_are_trading_days() {
    for i in catalog() {
        for action in reference::corporate_actions(&i, "2030-12-31".parse().unwrap()) {
            assert!(calendar::is_trading_day(i.market, action.ex_date), "{}: {:?}", i.symbol, action);
            if let ActionKind::Dividend { amount, .. } = action.kind {
                assert!(amount > Decimal::ZERO);
            }
        }
    }
}

#[test]
fn two_instances_give_the_same_answers() {
    let (a, b) = (market(), SimulatedMarket::with_clock(|| at("2030-01-01T00:00:00Z")));
    let mut pick = picks(113);
    for i in catalog() {
        for t in instants(&mut pick, &i, 2) {
            let end = Some(timestamp(t));
            assert_eq!(a.quote_at(&i, t), b.quote_at(&i, t), "{}", i.symbol);
            for interval in [Interval::OneMinute, Interval::OneDay, Interval::OneMonth] {
                assert_eq!(a.klines_at(&i, interval, end, 5, t), b.klines_at(&i, interval, end, 5, t), "{}", i.symbol);
            }
            assert_eq!(a.order_book_at(&i, 5, t), b.order_book_at(&i, 5, t), "{}", i.symbol);
            assert_eq!(a.ticks_at(&i, 20, t), b.ticks_at(&i, 20, t), "{}", i.symbol);
        }
        let today = "2026-11-30".parse().unwrap();
        assert_eq!(reference::corporate_actions(&i, today), reference::corporate_actions(&i, today));
    }
}

#[test]
fn trade_times_spread_through_the_second() {
    let m = market();
    let ticks = m.ticks_at(&instrument("AAPL.US"), 1000, secs("2026-11-30T16:00:00Z"));
    assert!(ticks.windows(2).all(|w| w[0].timestamp < w[1].timestamp), "distinct times, in order");
    let mut millis: Vec<u32> = ticks.iter().map(|t| t.timestamp.timestamp_subsec_millis()).collect();
    let clustered = millis.iter().filter(|ms| [332, 665, 999].contains(ms)).count();
    assert!(clustered < 50, "{clustered} of 1000 at .332/.665/.999");
    millis.sort_unstable();
    millis.dedup();
    assert!(millis.len() > 400, "{} distinct milliseconds", millis.len());
}

#[test]
fn indices_have_no_volume_and_no_book() {
    let m = market();
    let spx = instrument("IDX:SPX");
    let t = secs("2026-11-30T16:00:00Z");
    assert!(m.klines_at(&spx, Interval::OneDay, None, 5, t).iter().all(|b| b.volume.is_none() && b.turnover.is_none()));
    assert!(m.quote_at(&spx, t).volume.is_none());
    let book = m.order_book_at(&spx, 10, t);
    assert!(book.bids.is_empty() && book.asks.is_empty());
    let date = timestamp(t).date_naive();
    assert!(date.weekday().num_days_from_monday() < 5);
}

#[test]
fn a_days_fundamentals_do_not_depend_on_the_range_asked() {
    let m = market();
    let now = secs("2026-11-30T18:00:00Z");
    for symbol in ["AAPL.US", "700.HK", "600519.SH", "NVDA.US"] {
        let i = instrument(symbol);
        let day: chrono::NaiveDate = "2026-11-27".parse().unwrap();
        let alone = reference::fundamentals(&m, &i, day, day, now);
        let range = reference::fundamentals(&m, &i, "2021-11-30".parse().unwrap(), "2026-11-30".parse().unwrap(), now);
        let within = range.iter().find(|p| p.date == day).unwrap();
        assert_eq!(alone, std::slice::from_ref(within), "{symbol}");
        // Trading days only.
        assert!(range.iter().all(|p| calendar::is_trading_day(i.market, p.date)), "{symbol}");
    }
}

#[test]
fn book_steps_walk_the_ladder_across_its_bands() {
    let hk = Grid::Ladder { region: Region::Hk, decimals: 3 };
    let before = day_of("2025-01-02".parse().unwrap());
    let up =
        |grid: Grid, units: i64, steps: i64| grid.decimal_units(grid.step(before, units, steps).unwrap()).to_string();
    assert_eq!(up(hk, 99_900, 1), "10.000");
    assert_eq!(up(hk, 100_000, 1), "10.020");
    assert_eq!(up(hk, 100_200, -1), "10.000");
    assert_eq!(up(hk, 100_000, -1), "9.990");
    assert_eq!(up(hk, 4_999_000, 2), "500.500", "200 to 500 in 0.20, then 0.50");
    let us = Grid::Ladder { region: Region::Us, decimals: 2 };
    assert_eq!(up(us, 9_999, 1), "1.00");
    assert_eq!(up(us, 10_000, -1), "0.9999");
    assert_eq!(up(us, 10_000, 3), "1.03");
}
