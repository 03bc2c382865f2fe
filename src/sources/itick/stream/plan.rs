//! Which connection carries which symbol: the pure bookkeeping behind `super::ItickStream`.
//!
//! iTick has one socket per asset-class endpoint and allows at most 500 symbols on a socket,
//! and plans allow only a handful of sockets: so topics are packed onto as few connections as
//! possible. A new symbol goes to the first connection of its endpoint with room (a new
//! connection only when all are full); a symbol stays on its connection while any of its
//! channels is wanted (the limit counts symbols, not channels). When unsubscribes leave more
//! connections than `ceil(symbols / limit)`, the least-loaded one is emptied into the others and
//! closed, so the count never stays above what is needed.
//!
//! The planner only decides; it returns [`Action`]s that the stream carries out.

use std::collections::{BTreeMap, HashMap};

use crate::{
    live::Topic,
    sources::itick::symbols::{endpoint, upstream_symbol},
};

/// One step for the stream to carry out, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start connection `slot` to `endpoint`.
    Open { slot: u64, endpoint: &'static str },
    /// Add these topics to connection `slot`.
    Subscribe { slot: u64, topics: Vec<Topic> },
    /// Remove these topics from connection `slot`.
    Unsubscribe { slot: u64, topics: Vec<Topic> },
    /// Stop connection `slot` (everything it carried is gone or moved).
    Close { slot: u64 },
}

#[derive(Debug)]
struct Slot {
    id: u64,
    /// Upstream symbol (`CODE$REGION`) -> how many wanted topics use it.
    symbols: HashMap<String, usize>,
}

#[derive(Debug)]
pub struct Planner {
    limit: usize,
    next_slot: u64,
    endpoints: BTreeMap<&'static str, Vec<Slot>>,
    /// Every wanted topic and the slot carrying it.
    topics: HashMap<Topic, u64>,
}

impl Planner {
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), next_slot: 0, endpoints: BTreeMap::new(), topics: HashMap::new() }
    }

    /// Topics currently wanted (and supported).
    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Connections the plan needs right now.
    pub fn connections(&self) -> usize {
        self.endpoints.values().map(Vec::len).sum()
    }

    /// Adds topics; returns the ones iTick cannot stream (futures).
    pub fn subscribe(&mut self, topics: Vec<Topic>, out: &mut Vec<Action>) -> Vec<Topic> {
        let mut unsupported = Vec::new();
        let mut added: BTreeMap<u64, Vec<Topic>> = BTreeMap::new();
        for topic in topics {
            if self.topics.contains_key(&topic) {
                continue;
            }
            let Some(endpoint) = endpoint(topic.instrument.asset_class) else {
                unsupported.push(topic);
                continue;
            };
            let symbol = upstream_symbol(&topic.instrument);
            let slots = self.endpoints.entry(endpoint).or_default();
            let index = match slots.iter().position(|s| s.symbols.contains_key(&symbol)) {
                Some(index) => index,
                None => match slots.iter().position(|s| s.symbols.len() < self.limit) {
                    Some(index) => index,
                    None => {
                        let id = self.next_slot;
                        self.next_slot += 1;
                        slots.push(Slot { id, symbols: HashMap::new() });
                        out.push(Action::Open { slot: id, endpoint });
                        slots.len() - 1
                    }
                },
            };
            let slot = &mut slots[index];
            *slot.symbols.entry(symbol).or_default() += 1;
            self.topics.insert(topic.clone(), slot.id);
            added.entry(slot.id).or_default().push(topic);
        }
        out.extend(added.into_iter().map(|(slot, topics)| Action::Subscribe { slot, topics }));
        unsupported
    }

    /// Removes topics (unknown ones are ignored), then closes or merges connections no longer
    /// needed.
    pub fn unsubscribe(&mut self, topics: Vec<Topic>, out: &mut Vec<Action>) {
        let mut removed: BTreeMap<u64, Vec<Topic>> = BTreeMap::new();
        let mut touched: Vec<&'static str> = Vec::new();
        for topic in topics {
            let Some(slot_id) = self.topics.remove(&topic) else { continue };
            let Some(endpoint) = endpoint(topic.instrument.asset_class) else { continue };
            let symbol = upstream_symbol(&topic.instrument);
            let slot = self.endpoints.get_mut(endpoint).and_then(|s| s.iter_mut().find(|s| s.id == slot_id));
            if let Some(slot) = slot
                && let Some(count) = slot.symbols.get_mut(&symbol)
            {
                *count -= 1;
                if *count == 0 {
                    slot.symbols.remove(&symbol);
                }
            }
            if !touched.contains(&endpoint) {
                touched.push(endpoint);
            }
            removed.entry(slot_id).or_default().push(topic);
        }
        let mut closing = Vec::new();
        for endpoint in touched {
            closing.extend(self.compact(endpoint, out));
        }
        // Unsubscribing on a connection about to close is pointless: closing drops it all.
        let unsubscribes = removed
            .into_iter()
            .filter(|(slot, _)| !closing.contains(slot))
            .map(|(slot, topics)| Action::Unsubscribe { slot, topics });
        let tail = std::mem::take(out);
        out.extend(unsubscribes);
        out.extend(tail);
    }

    /// Closes empty connections of `endpoint` and merges while there are more than needed;
    /// returns the closed slots.
    fn compact(&mut self, endpoint: &'static str, out: &mut Vec<Action>) -> Vec<u64> {
        let mut closed = Vec::new();
        let Some(slots) = self.endpoints.get_mut(endpoint) else { return closed };
        slots.retain(|slot| {
            let keep = !slot.symbols.is_empty();
            if !keep {
                closed.push(slot.id);
            }
            keep
        });
        loop {
            let symbols: usize = slots.iter().map(|s| s.symbols.len()).sum();
            if slots.len() <= symbols.div_ceil(self.limit) {
                break;
            }
            // Empty the least-loaded connection into the others; they have room, since
            // there are more connections than the symbols need.
            let Some(index) = slots.iter().enumerate().min_by_key(|(_, s)| s.symbols.len()).map(|(i, _)| i) else {
                break;
            };
            let victim = slots.remove(index);
            let mut moved: BTreeMap<u64, Vec<Topic>> = BTreeMap::new();
            for (topic, slot_id) in self.topics.iter_mut().filter(|(_, s)| **s == victim.id) {
                let symbol = upstream_symbol(&topic.instrument);
                let target = match slots.iter().position(|s| s.symbols.contains_key(&symbol)) {
                    Some(i) => i,
                    None => match slots.iter().position(|s| s.symbols.len() < self.limit) {
                        Some(i) => i,
                        None => continue, // cannot happen (see above); keep the plan consistent
                    },
                };
                *slots[target].symbols.entry(symbol).or_default() += 1;
                *slot_id = slots[target].id;
                moved.entry(slots[target].id).or_default().push(topic.clone());
            }
            out.extend(moved.into_iter().map(|(slot, topics)| Action::Subscribe { slot, topics }));
            closed.push(victim.id);
        }
        if slots.is_empty() {
            self.endpoints.remove(endpoint);
        }
        out.extend(closed.iter().map(|&slot| Action::Close { slot }));
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        live::Channel,
        market::{Instrument, Interval},
        reference::{Symbol, service::AssetClass},
    };

    fn topic(code: &str, class: AssetClass, channel: Channel) -> Topic {
        let symbol = match class {
            AssetClass::Crypto => format!("CRYPTO:{code}"),
            AssetClass::Future => format!("FUT:{code}.US"),
            _ => format!("{code}.US"),
        };
        Topic {
            instrument: Instrument {
                symbol: Symbol::parse(&symbol).unwrap(),
                asset_class: class,
                region: if class == AssetClass::Crypto { "BA".into() } else { "US".into() },
                code: code.into(),
                currency: "USD".into(),
                market: if class == AssetClass::Crypto {
                    crate::market::calendar::Region::Global
                } else {
                    crate::market::calendar::Region::Us
                },
                listed_at: None,
            },
            channel,
        }
    }

    fn stocks(range: std::ops::Range<usize>) -> Vec<Topic> {
        range.map(|i| topic(&format!("S{i}"), AssetClass::Stock, Channel::Quote)).collect()
    }

    fn opened(actions: &[Action]) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Open { .. })).count()
    }

    fn closed(actions: &[Action]) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Close { .. })).count()
    }

    #[test]
    fn packs_symbols_up_to_the_limit() {
        let mut planner = Planner::new(3);
        let mut out = Vec::new();
        assert!(planner.subscribe(stocks(0..7), &mut out).is_empty());
        assert_eq!(opened(&out), 3, "{out:?}");
        assert_eq!(planner.connections(), 3);
        // A second channel of a known symbol does not need room.
        out.clear();
        planner.subscribe(vec![topic("S0", AssetClass::Stock, Channel::Tick)], &mut out);
        assert_eq!(opened(&out), 0);
        assert_eq!(out.len(), 1);
        // Another endpoint gets its own connection.
        out.clear();
        let kline = Channel::Kline(Interval::OneMinute);
        planner.subscribe(vec![topic("BTCUSDT", AssetClass::Crypto, kline)], &mut out);
        assert_eq!(out[0], Action::Open { slot: 3, endpoint: "crypto" });
        assert_eq!(planner.len(), 9);
    }

    #[test]
    fn merges_and_closes_what_is_no_longer_needed() {
        let mut planner = Planner::new(3);
        let mut out = Vec::new();
        planner.subscribe(stocks(0..9), &mut out);
        assert_eq!(planner.connections(), 3);
        // 9 -> 5 symbols: two connections are enough.
        out.clear();
        planner.unsubscribe(stocks(0..2).into_iter().chain(stocks(5..7)).collect(), &mut out);
        assert_eq!(planner.connections(), 2, "{out:?}");
        assert_eq!(closed(&out), 1);
        // Unsubscribes come first, then moves, then the close.
        assert!(matches!(out.last(), Some(Action::Close { .. })));
        let moved: usize =
            out.iter().map(|a| if let Action::Subscribe { topics, .. } = a { topics.len() } else { 0 }).sum();
        assert!(moved >= 1, "{out:?}");
        out.clear();
        planner.unsubscribe(stocks(0..9), &mut out);
        assert_eq!(planner.connections(), 0);
        assert!(planner.is_empty());
        assert_eq!(closed(&out), 2);
        assert!(!out.iter().any(|a| matches!(a, Action::Unsubscribe { .. })), "{out:?}");
    }

    #[test]
    fn futures_are_refused() {
        let mut planner = Planner::new(500);
        let mut out = Vec::new();
        let refused = planner.subscribe(vec![topic("CL", AssetClass::Future, Channel::Quote)], &mut out);
        assert_eq!(refused.len(), 1);
        assert!(out.is_empty());
    }
}
