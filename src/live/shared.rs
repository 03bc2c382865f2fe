//! An event as the hub fans it out: one allocation shared by every subscriber of its topic,
//! carrying the renderings made of it so far.
//!
//! Thousands of subscribers may follow one topic, most with the same selection set
//! (`quotes(symbols: …) { symbol last timestamp }` from one front end). Each such subscriber
//! would serialise the same event into the same bytes; instead the first one to need a
//! rendering makes it and leaves it here, keyed by what decides the bytes (the selection and
//! whether the subscriber's plan has the market delayed), and the others copy it. The event
//! lives as long as a subscriber still holds it (a `watch` slot keeps only the newest), so its
//! renderings go with it.

use std::{
    ops::Deref,
    sync::{Arc, Mutex},
};

use bytes::Bytes;

use super::LiveEvent;

/// Distinct renderings kept per event. Subscribers with yet another selection render their
/// own each time: a client cannot grow an event's memory by inventing selection sets.
const MAX_RENDERINGS: usize = 8;

/// One upstream event, shared, with its renderings.
#[derive(Debug)]
pub struct SharedEvent {
    event: LiveEvent,
    renderings: Mutex<Vec<(Arc<str>, Bytes)>>,
}

impl SharedEvent {
    pub fn new(event: LiveEvent) -> Arc<Self> {
        Arc::new(Self { event, renderings: Mutex::new(Vec::new()) })
    }

    /// The rendering `key` names, made by `render` the first time it is asked for. `render`
    /// runs under the event's lock, so concurrent subscribers wait for the one rendering
    /// instead of each making it; `None` (nothing to render) is not kept.
    ///
    /// The key is the whole description of what the bytes depend on, compared in full: a hash
    /// of it would let a client craft a selection that collides with another tenant's and
    /// hand that tenant the wrong bytes.
    pub fn rendering(&self, key: &Arc<str>, render: impl FnOnce(&LiveEvent) -> Option<Bytes>) -> Option<Bytes> {
        // A panic while rendering leaves the list as it was: recover it rather than poison
        // every later subscriber.
        let mut renderings = self.renderings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, bytes)) = renderings.iter().find(|(k, _)| Arc::ptr_eq(k, key) || k == key) {
            return Some(bytes.clone());
        }
        let bytes = render(&self.event)?;
        if renderings.len() < MAX_RENDERINGS {
            renderings.push((key.clone(), bytes.clone()));
        }
        Some(bytes)
    }
}

impl Deref for SharedEvent {
    type Target = LiveEvent;

    fn deref(&self) -> &LiveEvent {
        &self.event
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{market::Tick, reference::Symbol};

    fn event() -> Arc<SharedEvent> {
        SharedEvent::new(LiveEvent::Tick(Tick {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            price: rust_decimal::Decimal::ONE,
            volume: rust_decimal::Decimal::ONE,
            timestamp: chrono::Utc::now(),
            direction: None,
            source: "simulated",
        }))
    }

    #[test]
    fn each_key_is_rendered_once_and_the_kept_ones_are_bounded() {
        let event = event();
        let made = AtomicUsize::new(0);
        let render = |key: u64| {
            event.rendering(&Arc::from(key.to_string()), |_| {
                made.fetch_add(1, Ordering::Relaxed);
                Some(Bytes::from(key.to_string()))
            })
        };
        for _ in 0..3 {
            assert_eq!(render(1).as_deref(), Some(&b"1"[..]));
        }
        assert_eq!(made.load(Ordering::Relaxed), 1, "one rendering per key");
        for key in 0..20 {
            assert_eq!(render(key), Some(Bytes::from(key.to_string())));
        }
        // 1 again, 0 and 2..=7 kept; 8..20 rendered each time they are asked for.
        assert_eq!(made.load(Ordering::Relaxed), 1 + 19);
        render(15);
        assert_eq!(made.load(Ordering::Relaxed), 21, "past the bound, nothing is kept");
        assert!(event.renderings.lock().unwrap().len() <= MAX_RENDERINGS);
        assert_eq!(event.rendering(&Arc::from("99"), |_| None), None, "nothing rendered, nothing kept");
    }
}
