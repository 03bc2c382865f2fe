//! What replicas write to Redis: topic keys, demanded topics, and live events.
//!
//! JSON with one- or two-letter field names (events cross Redis once per replica, thousands of
//! times a second), decimals as exact strings, times as RFC 3339 with nanoseconds. Quotes use the
//! representation the shared quote cache already stores (`StoredQuote`), so Redis holds one form
//! of a quote. Anything that does not decode is dropped by the caller, never trusted.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    live::{Channel, LiveEvent, Topic},
    market::{
        BookLevel, Instrument, Interval, Kline, OrderBook, Tick, TickDirection, calendar::Region,
        shared_cache::StoredQuote, types::known_source,
    },
    reference::{Symbol, service::AssetClass},
};

/// The stable text form of a topic: `AAPL.US/quote`, `700.HK/kline:1m`. It names the event
/// channel and the field of a replica's demand hash.
pub(crate) fn topic_key(topic: &Topic) -> String {
    key(&topic.instrument.symbol, topic.channel)
}

/// The topic key an event belongs to.
pub(crate) fn event_key(event: &LiveEvent) -> String {
    let (symbol, channel) = event.key();
    key(symbol, channel)
}

fn key(symbol: &Symbol, channel: Channel) -> String {
    format!("{symbol}/{}", channel_name(channel))
}

fn channel_name(channel: Channel) -> String {
    match channel {
        Channel::Quote => "quote".into(),
        Channel::Tick => "tick".into(),
        Channel::Depth => "depth".into(),
        Channel::Kline(interval) => format!("kline:{}", interval.code()),
    }
}

fn parse_channel(name: &str) -> Option<Channel> {
    Some(match name {
        "quote" => Channel::Quote,
        "tick" => Channel::Tick,
        "depth" => Channel::Depth,
        other => Channel::Kline(Interval::from_code(other.strip_prefix("kline:")?)?),
    })
}

fn parse_asset_class(name: &str) -> Option<AssetClass> {
    [AssetClass::Stock, AssetClass::Fund, AssetClass::Forex, AssetClass::Index, AssetClass::Crypto, AssetClass::Future]
        .into_iter()
        .find(|class| class.as_str() == name)
}

/// A demanded topic with everything the lease holder needs to subscribe upstream.
#[derive(Serialize, Deserialize)]
struct WireTopic {
    /// Symbol.
    s: String,
    /// Asset class (`STOCK`, ...).
    a: String,
    /// Upstream region.
    r: String,
    /// Upstream code.
    c: String,
    /// Currency.
    cu: String,
    /// Channel (`quote`, `kline:1m`, ...).
    ch: String,
    /// The market whose hours the instrument keeps (`US`, `GLOBAL`, ...). Optional so that a
    /// replica of the previous release, which does not send it, is still understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
    /// First trading day (`YYYY-MM-DD`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<NaiveDate>,
}

pub(crate) fn encode_topic(topic: &Topic) -> String {
    let i = &topic.instrument;
    let wire = WireTopic {
        s: i.symbol.to_string(),
        a: i.asset_class.as_str().to_owned(),
        r: i.region.clone(),
        c: i.code.clone(),
        cu: i.currency.clone(),
        ch: channel_name(topic.channel),
        m: Some(i.market.code().to_owned()),
        l: i.listed_at,
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

pub(crate) fn decode_topic(raw: &str) -> Option<Topic> {
    let wire: WireTopic = serde_json::from_str(raw).ok()?;
    let asset_class = parse_asset_class(&wire.a)?;
    // From a replica that does not send the market: the upstream region names it for all but
    // indices, whose upstream region is iTick's `GB` (their hours then read as London's).
    let market = match &wire.m {
        Some(code) => Region::parse(code).ok()?,
        None => Region::of(asset_class, &wire.r).ok()?,
    };
    Some(Topic {
        instrument: Instrument {
            symbol: Symbol::parse(&wire.s).ok()?,
            asset_class,
            region: wire.r,
            code: wire.c,
            currency: wire.cu,
            market,
            listed_at: wire.l,
        },
        channel: parse_channel(&wire.ch)?,
    })
}

/// A price level: `[price, volume, orders]`.
type WireLevel = (String, String, Option<i64>);

#[derive(Serialize, Deserialize)]
#[serde(tag = "e")]
enum WireEvent {
    #[serde(rename = "q")]
    Quote(StoredQuote),
    #[serde(rename = "t")]
    Tick {
        s: String,
        p: String,
        v: String,
        t: DateTime<Utc>,
        /// `n`eutral, `s`ell, `b`uy; absent when the source does not say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        d: Option<String>,
        /// The source's name (absent from an older replica: the event is dropped).
        #[serde(default)]
        src: Option<String>,
    },
    #[serde(rename = "b")]
    Book { s: String, b: Vec<WireLevel>, a: Vec<WireLevel>, t: DateTime<Utc> },
    #[serde(rename = "k")]
    Kline {
        s: String,
        i: String,
        /// Bar start.
        t: DateTime<Utc>,
        o: String,
        h: String,
        l: String,
        c: String,
        /// Volume and turnover; absent where nothing trades (an index).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tu: Option<String>,
        at: DateTime<Utc>,
        #[serde(default)]
        src: Option<String>,
    },
}

pub(crate) fn encode_event(event: &LiveEvent) -> String {
    let levels = |levels: &[BookLevel]| -> Vec<WireLevel> {
        levels.iter().map(|l| (l.price.to_string(), l.volume.to_string(), l.orders)).collect()
    };
    let wire = match event {
        LiveEvent::Quote(quote) => WireEvent::Quote(StoredQuote::from_quote(quote)),
        LiveEvent::Tick(tick) => WireEvent::Tick {
            s: tick.symbol.to_string(),
            p: tick.price.to_string(),
            v: tick.volume.to_string(),
            t: tick.timestamp,
            d: tick.direction.map(|d| {
                match d {
                    TickDirection::Neutral => "n",
                    TickDirection::Sell => "s",
                    TickDirection::Buy => "b",
                }
                .to_owned()
            }),
            src: Some(tick.source.to_owned()),
        },
        LiveEvent::OrderBook(book) => WireEvent::Book {
            s: book.symbol.to_string(),
            b: levels(&book.bids),
            a: levels(&book.asks),
            t: book.timestamp,
        },
        LiveEvent::Kline { symbol, interval, bar, at } => WireEvent::Kline {
            s: symbol.to_string(),
            i: interval.code().to_owned(),
            t: bar.time,
            o: bar.open.to_string(),
            h: bar.high.to_string(),
            l: bar.low.to_string(),
            c: bar.close.to_string(),
            v: bar.volume.map(|v| v.to_string()),
            tu: bar.turnover.map(|tu| tu.to_string()),
            at: *at,
            src: Some(bar.source.to_owned()),
        },
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

pub(crate) fn decode_event(raw: &[u8]) -> Option<LiveEvent> {
    let number = |s: &str| Decimal::from_str(s).ok();
    let levels = |levels: Vec<WireLevel>| -> Option<Vec<BookLevel>> {
        levels
            .into_iter()
            .map(|(price, volume, orders)| Some(BookLevel { price: number(&price)?, volume: number(&volume)?, orders }))
            .collect()
    };
    Some(match serde_json::from_slice::<WireEvent>(raw).ok()? {
        WireEvent::Quote(stored) => LiveEvent::Quote(stored.into_quote()?),
        WireEvent::Tick { s, p, v, t, d, src } => LiveEvent::Tick(Tick {
            symbol: Symbol::parse(&s).ok()?,
            price: number(&p)?,
            volume: number(&v)?,
            timestamp: t,
            direction: match d.as_deref() {
                None => None,
                Some("n") => Some(TickDirection::Neutral),
                Some("s") => Some(TickDirection::Sell),
                Some("b") => Some(TickDirection::Buy),
                Some(_) => return None,
            },
            source: known_source(src.as_deref()?)?,
        }),
        WireEvent::Book { s, b, a, t } => LiveEvent::OrderBook(OrderBook {
            symbol: Symbol::parse(&s).ok()?,
            bids: levels(b)?,
            asks: levels(a)?,
            timestamp: t,
        }),
        WireEvent::Kline { s, i, t, o, h, l, c, v, tu, at, src } => LiveEvent::Kline {
            symbol: Symbol::parse(&s).ok()?,
            interval: Interval::from_code(&i)?,
            bar: Kline {
                time: t,
                open: number(&o)?,
                high: number(&h)?,
                low: number(&l)?,
                close: number(&c)?,
                volume: match v {
                    None => None,
                    Some(v) => Some(number(&v)?),
                },
                turnover: match tu {
                    None => None,
                    Some(tu) => Some(number(&tu)?),
                },
                source: known_source(src.as_deref()?)?,
            },
            at,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Quote, TradingStatus};

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn a_topic_from_a_replica_that_sends_no_market_is_placed_by_its_region() {
        let legacy = r#"{"s":"700.HK","a":"STOCK","r":"HK","c":"700","cu":"HKD","ch":"quote"}"#;
        let topic = decode_topic(legacy).unwrap();
        assert_eq!(topic.instrument.market, Region::Hk);
        assert_eq!(topic.instrument.listed_at, None);
        let crypto = r#"{"s":"CRYPTO:BTCUSDT","a":"CRYPTO","r":"BA","c":"BTCUSDT","cu":"USDT","ch":"quote"}"#;
        assert_eq!(decode_topic(crypto).unwrap().instrument.market, Region::Global);
        let unknown = r#"{"s":"700.HK","a":"STOCK","r":"HK","c":"700","cu":"HKD","ch":"quote","m":"MARS"}"#;
        assert_eq!(decode_topic(unknown), None);
    }

    #[test]
    fn topics_round_trip_and_name_their_channel() {
        for channel in [Channel::Quote, Channel::Tick, Channel::Depth, Channel::Kline(Interval::OneMonth)] {
            let topic = Topic {
                instrument: Instrument {
                    symbol: Symbol::parse("700.HK").unwrap(),
                    asset_class: AssetClass::Stock,
                    region: "HK".into(),
                    code: "700".into(),
                    currency: "HKD".into(),
                    market: Region::Hk,
                    listed_at: NaiveDate::from_ymd_opt(2004, 6, 16),
                },
                channel,
            };
            assert_eq!(decode_topic(&encode_topic(&topic)), Some(topic));
        }
        let topic = Topic {
            instrument: Instrument {
                symbol: Symbol::parse("CRYPTO:BTCUSDT").unwrap(),
                asset_class: AssetClass::Crypto,
                region: "BA".into(),
                code: "BTCUSDT".into(),
                currency: "USDT".into(),
                market: Region::Global,
                listed_at: None,
            },
            channel: Channel::Kline(Interval::FifteenMinutes),
        };
        assert_eq!(topic_key(&topic), "CRYPTO:BTCUSDT/kline:15m");
        assert!(decode_topic("{}").is_none());
    }

    #[test]
    fn every_event_round_trips_exactly() {
        let symbol = Symbol::parse("AAPL.US").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-24T15:30:01.123456789Z").unwrap().with_timezone(&Utc);
        let events = vec![
            LiveEvent::Quote(Quote {
                symbol: symbol.clone(),
                last: dec("189.9800"),
                open: dec("0.1"),
                high: dec("190.01"),
                low: dec("187"),
                prev_close: dec("188.00"),
                volume: Some(dec("1234567")),
                turnover: Some(dec("234567890.12")),
                timestamp: at,
                trading_status: TradingStatus::Suspended,
                source: "itick",
                stale: false,
            }),
            LiveEvent::Tick(Tick {
                symbol: symbol.clone(),
                price: dec("0.30000000000000000001"),
                volume: dec("100"),
                timestamp: at,
                direction: Some(TickDirection::Sell),
                source: "simulated",
            }),
            LiveEvent::Tick(Tick {
                symbol: symbol.clone(),
                price: dec("1"),
                volume: dec("2"),
                timestamp: at,
                direction: None,
                source: "simulated",
            }),
            LiveEvent::OrderBook(OrderBook {
                symbol: symbol.clone(),
                bids: vec![BookLevel { price: dec("189.97"), volume: dec("300"), orders: Some(4) }],
                asks: vec![BookLevel { price: dec("189.99"), volume: dec("0.5"), orders: None }],
                timestamp: at,
            }),
            LiveEvent::Kline {
                symbol,
                interval: Interval::FiveMinutes,
                bar: Kline {
                    time: at,
                    open: dec("1.10"),
                    high: dec("1.20"),
                    low: dec("1.00"),
                    close: dec("1.15"),
                    volume: Some(dec("10")),
                    turnover: Some(dec("11.5")),
                    source: "simulated",
                },
                at,
            },
            // An index: no volume or turnover, and none invented on the way.
            LiveEvent::Kline {
                symbol: Symbol::parse("IDX:SPX").unwrap(),
                interval: Interval::OneMinute,
                bar: Kline {
                    time: at,
                    open: dec("6000.10"),
                    high: dec("6001"),
                    low: dec("5999.5"),
                    close: dec("6000.75"),
                    volume: None,
                    turnover: None,
                    source: "simulated",
                },
                at,
            },
            LiveEvent::Quote(Quote {
                symbol: Symbol::parse("IDX:HSI").unwrap(),
                last: dec("25000.12"),
                open: dec("24900"),
                high: dec("25100"),
                low: dec("24800"),
                prev_close: dec("24950"),
                volume: None,
                turnover: None,
                timestamp: at,
                trading_status: TradingStatus::Normal,
                source: "simulated",
                stale: false,
            }),
        ];
        for event in events {
            let raw = encode_event(&event);
            let back = decode_event(raw.as_bytes()).unwrap();
            // Same values and the same text (scale included) after the trip.
            assert_eq!(format!("{back:?}"), format!("{event:?}"), "{raw}");
            assert_eq!(event_key(&back), event_key(&event));
        }
        assert!(
            decode_event(b"{\"e\":\"t\",\"s\":\"AAPL.US\",\"p\":\"x\",\"v\":\"1\",\"t\":\"2026-01-01T00:00:00Z\"}")
                .is_none()
        );
        assert!(decode_event(b"garbage").is_none());
    }

    #[test]
    fn a_trade_or_bar_says_its_source_or_is_not_taken() {
        let tick = r#"{"e":"t","s":"AAPL.US","p":"1","v":"1","t":"2026-01-01T00:00:00Z""#;
        let from = |src: &str| decode_event(format!("{tick}{src}}}").as_bytes());
        let Some(LiveEvent::Tick(polygon)) = from(r#","src":"polygon""#) else { panic!("a tick") };
        assert_eq!(polygon.source, "polygon");
        assert!(from("").is_none(), "an older replica's event, without its source");
        assert!(from(r#","src":"bloomberg""#).is_none(), "a source this build does not have");
    }
}
