//! The iTick WebSocket wire format (`shared/itick.md`, WebSocket section): the messages finql
//! sends, how it reads what comes back, and how a push becomes a validated [`LiveEvent`].
//!
//! Pure functions over `serde_json::Value`, taking `now` where validation needs it, so they can
//! be unit-tested without a socket. Field parsing is shared with the REST adapter
//! (`sources::itick::parse`) and validation is the domain's (`market::validate`): a quote pushed
//! over the socket is held to exactly the rules of a quote fetched over HTTP.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    live::{Channel, LiveEvent},
    market::{Instrument, Interval, OrderBook, validate},
    sources::itick::{
        parse::{book_time, parse_kline, parse_level, parse_quote, parse_tick},
        symbols::push_key,
    },
};

/// iTick's documented limit of symbols on one connection.
pub const MAX_SYMBOLS_PER_CONNECTION: usize = 500;

/// The `types` entry of a channel: `quote`, `tick`, `depth`, `kline@N` (N = kType).
pub fn channel_type(channel: Channel) -> String {
    match channel {
        Channel::Quote => "quote".into(),
        Channel::Tick => "tick".into(),
        Channel::Depth => "depth".into(),
        Channel::Kline(interval) => format!("kline@{}", interval.itick_ktype()),
    }
}

/// The channel of a push's `data.type`; `None` for types finql does not know.
pub fn parse_channel_type(raw: &str) -> Option<Channel> {
    match raw.trim() {
        "quote" => Some(Channel::Quote),
        "tick" => Some(Channel::Tick),
        "depth" => Some(Channel::Depth),
        other => {
            let ktype: u8 = other.strip_prefix("kline@")?.parse().ok()?;
            Interval::ALL.into_iter().find(|i| i.itick_ktype() == ktype).map(Channel::Kline)
        }
    }
}

/// `{"ac": "subscribe" | "unsubscribe", "params": "A$US,B$US", "types": "quote,tick"}` messages
/// for `(symbol, types)` pairs: one message per distinct set of types (usually one in all),
/// at most [`MAX_SYMBOLS_PER_CONNECTION`] symbols each.
pub fn subscription_messages(action: &str, wanted: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut by_types: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (symbol, types) in wanted {
        if types.is_empty() {
            continue;
        }
        let mut types = types.clone();
        types.sort();
        types.dedup();
        by_types.entry(types.join(",")).or_default().push(symbol);
    }
    let mut messages = Vec::new();
    for (types, symbols) in by_types {
        for chunk in symbols.chunks(MAX_SYMBOLS_PER_CONNECTION) {
            messages.push(json!({"ac": action, "params": chunk.join(","), "types": types}).to_string());
        }
    }
    messages
}

/// `{"ac":"ping","params":"<ms>"}`.
pub fn ping(now: DateTime<Utc>) -> String {
    json!({"ac": "ping", "params": now.timestamp_millis().to_string()}).to_string()
}

/// The older auth message, for servers that ignore the `token` header.
pub fn legacy_auth(token: &str) -> String {
    json!({"ac": "auth", "params": token}).to_string()
}

/// What one text frame from iTick is.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// `{"code":1,"msg":"Connected Successfully"}`.
    Connected,
    /// `{"code":1|0,"resAc":"auth","msg":…}`.
    Auth { ok: bool, msg: String },
    /// The answer to a subscribe or unsubscribe.
    Reply { action: String, ok: bool, msg: String },
    /// `{"resAc":"pong","data":{"params":"<ms>"}}`.
    Pong,
    /// `{"code":1,"data":{…,"type":…}}`: the `data` object.
    Push(Value),
    /// Anything else (logged at debug, ignored).
    Other(String),
}

pub fn classify(text: &str) -> Inbound {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Inbound::Other("not JSON".into());
    };
    let code = match value.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let msg = match value.get("msg") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    let res_ac = value.get("resAc").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    match res_ac.as_str() {
        "pong" => return Inbound::Pong,
        "auth" => return Inbound::Auth { ok: code == Some(1), msg },
        "subscribe" | "unsubscribe" => return Inbound::Reply { action: res_ac, ok: code == Some(1), msg },
        _ => {}
    }
    if let Some(data) = value.get("data").filter(|d| d.get("type").is_some_and(Value::is_string)) {
        return Inbound::Push(data.clone());
    }
    if code == Some(1) && msg.to_ascii_lowercase().contains("connected") {
        return Inbound::Connected;
    }
    Inbound::Other(if msg.is_empty() { format!("code {code:?}") } else { msg })
}

/// `data.type` and the `(code, region)` key of a push; `None` without type or symbol. The region
/// is empty when the push has none (older servers): the caller then matches on the code alone.
pub fn push_target(data: &Value) -> Option<(String, (String, String))> {
    let kind = data.get("type")?.as_str()?.to_owned();
    let code = data.get("s")?.as_str()?;
    let region = data.get("r").and_then(Value::as_str).unwrap_or_default();
    Some((kind, push_key(code, region)))
}

/// Maps and validates one push for `instrument` on `channel`.
pub fn parse_push(
    data: &Value,
    instrument: &Instrument,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<LiveEvent, String> {
    Ok(match channel {
        Channel::Quote => LiveEvent::Quote(parse_quote(data, instrument, now)?),
        Channel::Tick => LiveEvent::Tick(parse_tick(data, instrument, now)?),
        Channel::Depth => LiveEvent::OrderBook(parse_book(data, instrument, now)?),
        Channel::Kline(interval) => LiveEvent::Kline {
            symbol: instrument.symbol.clone(),
            interval,
            bar: parse_kline(data, now)?,
            // A kline push carries only the bar's start: the update happened when it arrived.
            at: now,
        },
    })
}

/// A whole book or nothing: a pushed book missing a bad level would misstate the market.
fn parse_book(data: &Value, instrument: &Instrument, now: DateTime<Utc>) -> Result<OrderBook, String> {
    if data.get("a").is_none() && data.get("b").is_none() {
        return Err("depth without `a` or `b`".into());
    }
    let side = |key: &str| -> Result<Vec<_>, String> {
        let levels = match data.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(levels)) => levels,
            Some(other) => return Err(format!("`{key}` is not a list: {other}")),
        };
        levels.iter().map(parse_level).collect()
    };
    let mut bids = side("b")?;
    let mut asks = side("a")?;
    bids.sort_by_key(|level| std::cmp::Reverse(level.price));
    asks.sort_by_key(|level| level.price);
    let book = OrderBook { symbol: instrument.symbol.clone(), bids, asks, timestamp: book_time(data, now)? };
    validate::order_book(&book, now)?;
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        reference::{Symbol, service::AssetClass},
        sources::itick::symbols::{endpoint, upstream_symbol},
    };

    fn aapl() -> Instrument {
        Instrument {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            asset_class: AssetClass::Stock,
            region: "US".into(),
            code: "AAPL".into(),
            currency: "USD".into(),
            market: crate::market::calendar::Region::Us,
            listed_at: None,
        }
    }

    #[test]
    fn endpoints_and_types() {
        assert_eq!(endpoint(AssetClass::Fund), Some("stock"));
        assert_eq!(endpoint(AssetClass::Index), Some("indices"));
        assert_eq!(endpoint(AssetClass::Future), None);
        for interval in Interval::ALL {
            let channel = Channel::Kline(interval);
            assert_eq!(parse_channel_type(&channel_type(channel)), Some(channel));
        }
        assert_eq!(parse_channel_type("kline@11"), None);
        assert_eq!(parse_channel_type("trade"), None);
        assert_eq!(upstream_symbol(&aapl()), "AAPL$US");
        assert_eq!(push_key("00700", "hk"), ("700".into(), "HK".into()));
    }

    #[test]
    fn messages_group_by_types() {
        let wanted: BTreeMap<String, Vec<String>> = [
            ("AAPL$US".to_owned(), vec!["quote".to_owned()]),
            ("MSFT$US".to_owned(), vec!["quote".to_owned()]),
            ("700$HK".to_owned(), vec!["tick".to_owned(), "quote".to_owned()]),
        ]
        .into();
        let messages = subscription_messages("subscribe", &wanted);
        assert_eq!(messages.len(), 2);
        let parsed: Vec<Value> = messages.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
        assert!(parsed.contains(&json!({"ac": "subscribe", "params": "AAPL$US,MSFT$US", "types": "quote"})));
        assert!(parsed.contains(&json!({"ac": "subscribe", "params": "700$HK", "types": "quote,tick"})));
    }

    #[test]
    fn inbound_frames() {
        assert_eq!(classify(r#"{"code":1,"msg":"Connected Successfully"}"#), Inbound::Connected);
        assert_eq!(
            classify(r#"{"code":0,"resAc":"auth","msg":"invalid token"}"#),
            Inbound::Auth { ok: false, msg: "invalid token".into() }
        );
        assert!(matches!(classify(r#"{"code":"1","resAc":"auth"}"#), Inbound::Auth { ok: true, .. }));
        assert_eq!(classify(r#"{"resAc":"pong","data":{"params":"1"}}"#), Inbound::Pong);
        assert!(matches!(classify(r#"{"code":0,"resAc":"subscribe","msg":"E003"}"#), Inbound::Reply { ok: false, .. }));
        assert!(matches!(classify(r#"{"code":1,"data":{"s":"AAPL","type":"quote"}}"#), Inbound::Push(_)));
        assert!(matches!(classify("garbage"), Inbound::Other(_)));
    }

    #[test]
    fn pushes_are_validated() {
        let now = Utc::now();
        let t = now.timestamp_millis();
        let quote = json!({"s": "AAPL", "r": "US", "type": "quote", "ld": 189.98, "h": 190, "l": 188, "t": t});
        match parse_push(&quote, &aapl(), Channel::Quote, now).unwrap() {
            LiveEvent::Quote(q) => assert_eq!(q.last.to_string(), "189.98"),
            other => panic!("{other:?}"),
        }
        let crossed = json!({"ld": 189.98, "h": 180, "l": 188, "t": t});
        assert!(parse_push(&crossed, &aapl(), Channel::Quote, now).is_err());
        let book = json!({"a": [{"p": 11, "v": 1}, {"p": 10.5, "v": 2}], "b": [{"p": 9, "v": 1}, {"p": 10, "v": 1}]});
        match parse_push(&book, &aapl(), Channel::Depth, now).unwrap() {
            LiveEvent::OrderBook(b) => {
                assert_eq!(b.asks[0].price.to_string(), "10.5");
                assert_eq!(b.bids[0].price.to_string(), "10");
            }
            other => panic!("{other:?}"),
        }
        let bad_level = json!({"a": [{"p": -1, "v": 1}], "b": []});
        assert!(parse_push(&bad_level, &aapl(), Channel::Depth, now).is_err());
        assert!(parse_push(&json!({"t": t}), &aapl(), Channel::Depth, now).is_err());
        assert_eq!(push_target(&quote), Some(("quote".into(), ("AAPL".into(), "US".into()))));
    }
}
