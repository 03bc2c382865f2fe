//! Unit tests of `sources::simulated`.

use std::time::Instant;

use super::{subdivide::split, *};
use crate::reference::{Symbol, symbol::Namespace};

/// Invariants over the whole catalog and 2000–2030: sessions, prevClose, aggregates, grid,
/// listing, history, splits, determinism.
mod invariants;
/// Quotes, order books and trades: consistent with the bars at every instant.
mod live_data;

const CATALOG: &str = include_str!("../../../../migration/src/catalog.csv");

fn class(text: &str) -> AssetClass {
    match text {
        "STOCK" => AssetClass::Stock,
        "FUND" => AssetClass::Fund,
        "FOREX" => AssetClass::Forex,
        "INDEX" => AssetClass::Index,
        "CRYPTO" => AssetClass::Crypto,
        "FUTURE" => AssetClass::Future,
        other => panic!("asset class {other}"),
    }
}

/// The fields of a CSV line (quoted fields may hold commas).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The catalog's instruments (symbol, class, name and region first, the upstream region and
/// code last).
fn catalog() -> Vec<Instrument> {
    CATALOG
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields = csv_fields(line);
            let symbol = fields[0].as_str();
            let asset_class = class(&fields[1]);
            // The catalog's own region decides the market, as `MarketService` does.
            let catalog_region = fields[3].as_str();
            let code = fields[fields.len() - 1].clone();
            let region = fields[fields.len() - 2].clone();
            Instrument {
                symbol: Symbol::parse(symbol).unwrap(),
                asset_class,
                market: crate::market::calendar::Region::of(asset_class, catalog_region).unwrap(),
                region,
                code,
                currency: "USD".into(),
                listed_at: None,
            }
        })
        .collect()
}

/// A catalog instrument, or an unknown one of the symbol's namespace.
fn instrument(symbol: &str) -> Instrument {
    catalog().into_iter().find(|i| i.symbol.as_str() == symbol).unwrap_or_else(|| {
        let symbol = Symbol::parse(symbol).unwrap();
        let asset_class = match symbol.namespace() {
            Namespace::Equity => AssetClass::Stock,
            Namespace::Forex => AssetClass::Forex,
            Namespace::Index => AssetClass::Index,
            Namespace::Crypto => AssetClass::Crypto,
            Namespace::Future => AssetClass::Future,
        };
        Instrument {
            symbol,
            asset_class,
            region: "US".into(),
            code: "X".into(),
            currency: "USD".into(),
            market: crate::market::calendar::Region::of(asset_class, "US")
                .unwrap_or(crate::market::calendar::Region::Us),
            listed_at: None,
        }
    })
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn secs(text: &str) -> i64 {
    at(text).timestamp()
}

fn market() -> SimulatedMarket {
    SimulatedMarket::with_clock(|| at("2030-01-01T00:00:00Z"))
}

/// A deterministic pseudo-random sequence for picking test cases.
fn picks(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = Rng::new(seed);
    move |n| rng.below(n)
}

fn aggregate(bars: &[Kline]) -> Kline {
    let first = bars.first().expect("no bars to aggregate");
    Kline {
        time: first.time,
        open: first.open,
        high: bars.iter().map(|b| b.high).max().unwrap(),
        low: bars.iter().map(|b| b.low).min().unwrap(),
        close: bars.last().unwrap().close,
        volume: bars.iter().map(|b| b.volume).sum(),
        turnover: bars.iter().map(|b| b.turnover).sum(),
        source: "simulated",
    }
}

fn assert_valid(bar: &Kline, now: i64, context: &str) {
    assert!(bar.high >= bar.open && bar.high >= bar.close && bar.high >= bar.low, "{context}: {bar:?}");
    assert!(bar.low <= bar.open && bar.low <= bar.close, "{context}: {bar:?}");
    assert!(bar.low > Decimal::ZERO, "{context}: {bar:?}");
    // Volume and turnover not negative, and absent together (indices have none).
    assert!(bar.volume.is_none_or(|v| v >= Decimal::ZERO), "{context}: {bar:?}");
    assert!(bar.turnover.is_none_or(|t| t >= Decimal::ZERO), "{context}: {bar:?}");
    assert_eq!(bar.volume.is_none(), bar.turnover.is_none(), "{context}: {bar:?}");
    assert!(bar.time.timestamp() < now, "{context}: {bar:?}");
}

/// Every bar of `coarse` in the `count` bars before `end` equals the aggregation of its bars
/// of `fine`, and bars chain (each opens at the previous close: closed time is flat).
fn assert_aggregates(
    m: &SimulatedMarket,
    i: &Instrument,
    coarse: Interval,
    fine: Interval,
    end: DateTime<Utc>,
    count: usize,
    now: i64,
) {
    let bars = m.klines_at(i, coarse, Some(end), count, now);
    assert_eq!(bars.len(), count, "{} {coarse:?}", i.symbol);
    for pair in bars.windows(2) {
        assert_eq!(pair[0].close, pair[1].open, "{} {coarse:?} at {}", i.symbol, pair[1].time);
        assert!(coarse.next_start(pair[0].time) <= pair[1].time);
    }
    for bar in &bars {
        let next = coarse.next_start(bar.time);
        let length = (next - bar.time).num_minutes() / fine.minutes().unwrap_or(1440 * 28);
        let parts: Vec<Kline> = m
            .klines_at(i, fine, Some(next), length as usize + 1, now)
            .into_iter()
            .filter(|part| part.time >= bar.time)
            .collect();
        assert!(parts[0].time >= bar.time, "{} {fine:?} in {coarse:?}", i.symbol);
        for pair in parts.windows(2) {
            assert_eq!(pair[0].close, pair[1].open, "{} {fine:?} at {}", i.symbol, pair[1].time);
        }
        assert_eq!(
            &Kline { time: bar.time, ..aggregate(&parts) },
            bar,
            "{} {coarse:?} at {} from {fine:?}",
            i.symbol,
            bar.time
        );
    }
}

#[test]
fn every_catalog_instrument_has_a_reference_level() {
    let instruments = catalog();
    assert_eq!(instruments.len(), 140);
    for i in &instruments {
        let (level, vol) = reference(i.symbol.as_str()).unwrap_or_else(|| panic!("no level for {}", i.symbol));
        assert!(level > 0.0 && vol > 0.0 && vol < 10.0, "{}", i.symbol);
    }
    // No stale or duplicate entries either.
    for (n, (symbol, ..)) in REFERENCE.iter().enumerate() {
        assert!(instruments.iter().any(|i| i.symbol.as_str() == *symbol), "{symbol} is not in the catalog");
        assert!(REFERENCE[..n].iter().all(|(s, ..)| s != symbol), "{symbol} twice");
    }
}

#[test]
fn source_identity() {
    let m = market();
    assert_eq!(m.name(), "simulated");
    assert_eq!(m.batch_limit(), 500);
}

#[test]
fn prices_stay_plausible_over_the_decade() {
    let m = SimulatedMarket::with_clock(|| at("2031-06-01T00:00:00Z"));
    let now = m.now();
    for i in catalog() {
        let (level, vol) = reference(i.symbol.as_str()).unwrap();
        let profile = Profile::new(&i);
        let bars = m.klines_at(&i, Interval::OneDay, Some(at("2031-01-01T00:00:00Z")), 4018, now);
        assert!(bars[0].time < at("2020-01-08T00:00:00Z"), "{}", i.symbol);
        // Prices wander around the trend (in today's shares).
        let ratio = |bar: &Kline, d: Decimal| {
            let day = bar.time.timestamp().div_euclid(DAY);
            d.to_string().parse::<f64>().unwrap() / profile.multiple(day) / (level * profile.trend(day).exp())
        };
        let low = bars.iter().map(|b| ratio(b, b.low)).fold(f64::MAX, f64::min);
        let high = bars.iter().map(|b| ratio(b, b.high)).fold(0.0, f64::max);
        // The most volatile (crypto, small caps) roam wider, as they do.
        let (floor, ceiling) = if vol <= 2.0 { (0.3, 3.0) } else { (0.1, 10.0) };
        assert!(low > floor && high < ceiling, "{}: {low:.2}..{high:.2} of {level}", i.symbol);
    }
}

#[test]
fn aapl_has_the_price_of_its_time() {
    let aapl = instrument("AAPL.US");
    // Early 2020, before the 4:1 split: about $320 as traded (real: $320).
    let quote = market().quote_at(&aapl, secs("2020-02-14T18:00:00Z"));
    let price = quote.last.to_string().parse::<f64>().unwrap();
    assert!((200.0..500.0).contains(&price), "{price}");
    // 2005: a few dollars in today's shares, far below today's level.
    let quote = market().quote_at(&aapl, secs("2005-06-15T18:00:00Z"));
    let price = quote.last.to_string().parse::<f64>().unwrap() / 4.0;
    assert!(price < 20.0, "{price}");
}

#[test]
fn unknown_symbols_get_a_level_from_their_hash() {
    let m = market();
    let now = m.now();
    for symbol in ["ZZZZ.US", "QWERTY.US", "8888.HK", "IDX:FOO", "FUT:XX.CN", "CRYPTO:FOOUSDT"] {
        let i = instrument(symbol);
        let level = Profile::new(&i).level;
        assert!((10.0..=500.0).contains(&level), "{symbol}: {level}");
        for bar in m.klines_at(&i, Interval::OneHour, None, 100, now) {
            assert_valid(&bar, now, symbol);
        }
        assert!(m.quote_at(&i, now).last > Decimal::ZERO);
    }
    let fx = Profile::new(&instrument("FX:ABCDEF")).level;
    assert!((0.5..=2.0).contains(&fx), "{fx}");
    // Different symbols, different paths.
    let a = m.klines_at(&instrument("ZZZZ.US"), Interval::OneDay, None, 30, now);
    let b = m.klines_at(&instrument("ZZZY.US"), Interval::OneDay, None, 30, now);
    assert_ne!(a.iter().map(|k| &k.close).collect::<Vec<_>>(), b.iter().map(|k| &k.close).collect::<Vec<_>>());
}

#[test]
fn different_symbols_move_differently() {
    let m = market();
    let now = m.now();
    let returns = |symbol: &str| -> Vec<bool> {
        m.klines_at(&instrument(symbol), Interval::OneDay, None, 60, now).iter().map(|k| k.close > k.open).collect()
    };
    assert_ne!(returns("GOOGL.US"), returns("GOOG.US"));
    assert_ne!(returns("IDX:SPX"), returns("FUT:ES.US"));
}

#[test]
fn instances_agree_and_repeat_themselves() {
    let (a, b) = (market(), market());
    let now = a.now();
    for i in catalog().iter().step_by(7) {
        for interval in Interval::ALL {
            let bars = a.klines_at(i, interval, None, 50, now);
            assert_eq!(bars, b.klines_at(i, interval, None, 50, now), "{} {interval:?}", i.symbol);
            assert_eq!(bars, a.klines_at(i, interval, None, 50, now), "{} {interval:?}", i.symbol);
        }
        assert_eq!(a.quote_at(i, now), b.quote_at(i, now));
        assert_eq!(a.order_book_at(i, 10, now), b.order_book_at(i, 10, now));
        assert_eq!(a.ticks_at(i, 100, now), b.ticks_at(i, 100, now));
    }
}

#[test]
fn days_are_their_hours_and_minutes() {
    let m = market();
    let now = m.now();
    let instruments = catalog();
    let mut pick = picks(11);
    for round in 0..12 {
        let i = if round == 0 { instrument("ABC.US") } else { instruments[pick(140) as usize].clone() };
        // Any day from 2000 to 2029, including before the walk's anchor epoch.
        let day = secs("2000-02-01T00:00:00Z") + pick(29 * 365) as i64 * DAY;
        let end = timestamp(day + DAY);
        assert_aggregates(&m, &i, Interval::OneDay, Interval::OneHour, end, 1, now);
        assert_aggregates(&m, &i, Interval::OneDay, Interval::OneMinute, end, 1, now);
        assert_aggregates(&m, &i, Interval::OneDay, Interval::FourHours, end, 2, now);
        assert_aggregates(&m, &i, Interval::FourHours, Interval::TwoHours, end, 6, now);
        assert_aggregates(&m, &i, Interval::TwoHours, Interval::OneHour, end, 3, now);
        assert_aggregates(&m, &i, Interval::OneHour, Interval::FiveMinutes, end, 4, now);
        assert_aggregates(&m, &i, Interval::ThirtyMinutes, Interval::FifteenMinutes, end, 8, now);
        assert_aggregates(&m, &i, Interval::FifteenMinutes, Interval::OneMinute, end, 4, now);
        assert_aggregates(&m, &i, Interval::FiveMinutes, Interval::OneMinute, end, 6, now);
    }
}

#[test]
fn weeks_and_months_are_their_days() {
    let m = market();
    let now = m.now();
    let mut pick = picks(13);
    for symbol in ["AAPL.US", "700.HK", "FX:USDJPY", "CRYPTO:DOGEUSDT", "FUT:YM.US", "IDX:000300"] {
        let i = instrument(symbol);
        let day = secs("2000-01-01T00:00:00Z") + pick(29 * 365) as i64 * DAY;
        assert_aggregates(&m, &i, Interval::OneWeek, Interval::OneDay, timestamp(day), 8, now);
        assert_aggregates(&m, &i, Interval::OneMonth, Interval::OneDay, timestamp(day), 14, now);
        assert_aggregates(&m, &i, Interval::OneWeek, Interval::FourHours, timestamp(day), 2, now);
    }
}

#[test]
fn bars_are_valid_everywhere() {
    let m = market();
    let now = m.now();
    for i in catalog() {
        for interval in Interval::ALL {
            for bar in m.klines_at(&i, interval, None, 120, now) {
                assert_valid(&bar, now, i.symbol.as_str());
            }
        }
        // Long before the epoch too.
        for bar in m.klines_at(&i, Interval::OneHour, Some(at("1987-10-20T00:00:00Z")), 48, now) {
            assert_valid(&bar, now, i.symbol.as_str());
        }
    }
}

#[test]
fn prices_are_on_the_tick() {
    let m = market();
    let now = m.now();
    let check = |symbol: &str, tick: &str| {
        let tick: Decimal = tick.parse().unwrap();
        let i = instrument(symbol);
        let bars = m.klines_at(&i, Interval::FiveMinutes, None, 100, now);
        for price in bars.iter().flat_map(|b| [b.open, b.high, b.low, b.close]) {
            assert!((price % tick).is_zero(), "{symbol}: {price} is not a multiple of {tick}");
            assert_eq!(price.scale(), tick.scale(), "{symbol}: {price}");
        }
    };
    // Shares follow their market's ladder, whose tick depends on the price and the date:
    // `invariants::every_share_price_is_on_its_markets_tick_ladder` checks them.
    check("FX:EURUSD", "0.00001");
    check("FX:USDJPY", "0.001");
    check("IDX:HSI", "0.01");
    check("CRYPTO:BTCUSDT", "0.01");
    check("CRYPTO:DOGEUSDT", "0.00001");
    check("FUT:ES.US", "0.25");
    check("FUT:YM.US", "1");
    let btc = m.klines_at(&instrument("CRYPTO:BTCUSDT"), Interval::OneDay, None, 1, now);
    assert_eq!(btc[0].volume.map(|v| v.scale()), Some(4));
}

#[test]
fn klines_end_and_limit() {
    let m = SimulatedMarket::with_clock(|| at("2026-11-25T18:47:31.250Z"));
    let now = m.now();
    let i = instrument("MSFT.US");
    // Up to now, the last bar in progress; the session opened at 14:30 UTC (09:30 EST).
    let bars = m.klines_at(&i, Interval::OneHour, None, 5, now);
    let times: Vec<String> = bars.iter().map(|b| b.time.format("%H:%M").to_string()).collect();
    assert_eq!(times, ["14:00", "15:00", "16:00", "17:00", "18:00"]);
    let bars = m.klines_at(&i, Interval::OneHour, None, 6, now);
    assert_eq!(bars[0].time, at("2026-11-24T20:00:00Z"), "the day before's last hour");
    // Bars starting before `end`: a bar starting exactly at `end` is not one of them.
    let bars = m.klines_at(&i, Interval::OneHour, Some(at("2026-11-25T16:00:00Z")), 2, now);
    assert_eq!(bars.last().unwrap().time, at("2026-11-25T15:00:00Z"));
    let bars = m.klines_at(&i, Interval::OneHour, Some(at("2026-11-25T16:00:01Z")), 2, now);
    assert_eq!(bars.last().unwrap().time, at("2026-11-25T16:00:00Z"));
    // The future does not exist yet.
    let bars = m.klines_at(&i, Interval::OneDay, Some(at("2027-01-01T00:00:00Z")), 3, now);
    assert_eq!(bars.last().unwrap().time, at("2026-11-25T00:00:00Z"));
    let bars = m.klines_at(&i, Interval::OneMonth, None, 3, now);
    assert_eq!(
        bars.iter().map(|b| b.time.format("%m-%d").to_string()).collect::<Vec<_>>(),
        ["09-01", "10-01", "11-01"]
    );
    let bars = m.klines_at(&i, Interval::OneWeek, None, 1, now);
    assert_eq!(bars[0].time, at("2026-11-23T00:00:00Z"));
    assert!(m.klines_at(&i, Interval::OneMinute, None, 0, now).is_empty());
    assert_eq!(m.klines_at(&i, Interval::OneMinute, None, 50_000, now).len(), MAX_KLINES);
}

#[test]
fn closed_bars_never_change_and_the_open_bar_grows() {
    let i = instrument("CRYPTO:ETHUSDT");
    let early = secs("2026-03-10T10:17:42Z");
    let m = market();
    for interval in Interval::ALL {
        let before = m.klines_at(&i, interval, None, 20, early);
        for later in [early + 1, early + 59, early + 3600, early + 40 * DAY] {
            let after = m.klines_at(&i, interval, Some(timestamp(early + 1)), 20, later);
            // Closed bars are identical; the one that was in progress has grown.
            assert_eq!(before[..19], after[..19], "{interval:?}");
            let (was, is) = (&before[19], &after[19]);
            assert_eq!((was.time, was.open), (is.time, is.open), "{interval:?}");
            assert!(is.high >= was.high && is.low <= was.low && is.volume >= was.volume, "{interval:?}");
        }
    }
}

/// The tick of `i` at `price` on the day of `at`.
fn tick_at(i: &Instrument, at: i64, price: Decimal) -> Decimal {
    let grid = Profile::new(i).grid;
    let day = (at - 1).div_euclid(DAY);
    let units = grid.units(day, price.to_string().parse().unwrap());
    grid.decimal_units(grid.step(day, units, 1).unwrap()) - grid.decimal_units(units)
}

#[test]
fn descending_the_tree_and_filling_the_span_agree_bit_for_bit() {
    for symbol in ["AAPL.US", "CRYPTO:BTCUSDT", "FX:USDHKD"] {
        let profile = Profile::new(&instrument(symbol));
        let path = Path::new(&profile);
        for span in [-3, 0, 7] {
            let values = path.fill_span(span);
            for (offset, value) in values.iter().enumerate().take(SPAN as usize) {
                assert_eq!(path.descend(span, offset).to_bits(), value.to_bits(), "{symbol} {span} {offset}");
            }
            assert_eq!(values[SPAN as usize].to_bits(), path.descend(span + 1, 0).to_bits());
        }
    }
}

#[test]
fn splits_are_exact() {
    assert_eq!(split(10, &[1.0, 1.0, 1.0]).iter().sum::<u128>(), 10);
    assert_eq!(split(0, &[1.0, 2.0]), [0, 0]);
    assert_eq!(split(7, &[0.0, 0.0]).iter().sum::<u128>(), 7);
    assert_eq!(split(5, &[0.0, 1.0]), [0, 5]);
    let big = 123_456_789_012_345_678_u128;
    assert_eq!(split(big, &[0.3, 1e-9, 7.0, 2.5]).iter().sum::<u128>(), big);
}

#[test]
fn the_daily_walk_is_a_random_walk_of_the_stated_volatility() {
    let i = instrument("AAPL.US");
    let profile = Profile::new(&i);
    let mut path = Path::new(&profile);
    let first = secs("2000-01-01T00:00:00Z") / DAY;
    let returns: Vec<f64> = (first..first + 10_000)
        .map(|d| {
            let bar = path.day_bar(d);
            (bar.close / bar.open).ln()
        })
        .collect();
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64).sqrt();
    assert!((0.8 * profile.vol..1.2 * profile.vol).contains(&sd), "daily sd {sd}");
    let lag1 =
        returns.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum::<f64>() / (returns.len() as f64 * sd * sd);
    assert!(lag1.abs() < 0.05, "returns autocorrelate: {lag1}");
}

#[test]
fn hundreds_of_daily_bars_are_cheap() {
    // A guard against accidental quadratic work: generous for unoptimised builds.
    let m = market();
    let now = m.now();
    let i = instrument("NVDA.US");
    let start = Instant::now();
    assert_eq!(m.klines_at(&i, Interval::OneDay, None, 200, now).len(), 200);
    assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    let start = Instant::now();
    assert_eq!(m.klines_at(&i, Interval::OneMonth, None, 300, now).len(), 300);
    assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
}

/// `cargo test --release --lib sources::simulated::tests::timings -- --ignored --nocapture`
#[test]
#[ignore = "prints timings"]
fn timings() {
    let m = market();
    let now = m.now();
    let i = instrument("AAPL.US");
    for (interval, n) in [
        (Interval::OneMinute, 1000),
        (Interval::FiveMinutes, 1000),
        (Interval::OneHour, 1000),
        (Interval::OneDay, 1000),
        (Interval::OneWeek, 1000),
        (Interval::OneMonth, 300),
    ] {
        let start = Instant::now();
        let bars = m.klines_at(&i, interval, None, n, now);
        println!("{n} {interval:?} bars: {:?}", start.elapsed());
        assert_eq!(bars.len(), n);
    }
    let instruments = catalog();
    let start = Instant::now();
    let quotes: Vec<Quote> = instruments.iter().take(100).map(|i| m.quote_at(i, now)).collect();
    println!("100 quotes: {:?}", start.elapsed());
    assert_eq!(quotes.len(), 100);
    let start = Instant::now();
    m.order_book_at(&i, 10, now);
    println!("order book, 10 levels: {:?}", start.elapsed());
    let start = Instant::now();
    m.ticks_at(&i, 1000, now);
    println!("1000 ticks: {:?}", start.elapsed());
}
