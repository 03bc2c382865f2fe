//! The stale/recovered state machine on a paused clock: one report per change of state, the
//! session gate, and silence counted from when the source became expected.

use std::time::Duration;

use tokio::time::{Instant, advance};

use super::{Recovery, Transition, Watch};

const STALE: Duration = Duration::from_secs(3);

/// One check of `watch` now.
fn step(watch: &mut Watch, last_event: Option<Instant>, expected: bool) -> Option<Transition> {
    watch.step(Instant::now(), last_event, expected, STALE)
}

#[tokio::test(start_paused = true)]
async fn silence_in_session_is_reported_once_then_the_recovery_once() {
    let mut watch = Watch::default();
    let heard = Instant::now();
    assert_eq!(step(&mut watch, Some(heard), true), None);
    advance(Duration::from_millis(2999)).await;
    assert_eq!(step(&mut watch, Some(heard), true), None, "not yet three seconds");
    advance(Duration::from_millis(1)).await;
    assert_eq!(step(&mut watch, Some(heard), true), Some(Transition::Stale { silent: STALE }));
    for _ in 0..20 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(step(&mut watch, Some(heard), true), None, "still stale: no second report");
        assert!(watch.is_stale());
    }
    let heard = Instant::now();
    advance(Duration::from_millis(200)).await;
    let recovered = step(&mut watch, Some(heard), true);
    assert_eq!(
        recovered,
        Some(Transition::Recovered { after: Duration::from_millis(20_200), reason: Recovery::Events })
    );
    assert!(!watch.is_stale());
    assert_eq!(step(&mut watch, Some(heard), true), None, "recovered once");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_expected_outside_a_session() {
    let mut watch = Watch::default();
    let heard = Instant::now();
    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        assert_eq!(step(&mut watch, Some(heard), false), None);
    }
    assert!(!watch.is_stale());
}

#[tokio::test(start_paused = true)]
async fn a_session_that_opens_gives_the_source_the_full_period() {
    let mut watch = Watch::default();
    // Last heard from overnight.
    let heard = Instant::now();
    advance(Duration::from_secs(3600)).await;
    assert_eq!(step(&mut watch, Some(heard), false), None);
    // The market opens: silence counts from now, not from the overnight event.
    assert_eq!(step(&mut watch, Some(heard), true), None);
    advance(Duration::from_secs(2)).await;
    assert_eq!(step(&mut watch, Some(heard), true), None);
    advance(Duration::from_secs(1)).await;
    assert_eq!(step(&mut watch, Some(heard), true), Some(Transition::Stale { silent: STALE }));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_never_delivered_goes_stale() {
    let mut watch = Watch::default();
    assert_eq!(step(&mut watch, None, true), None);
    advance(STALE).await;
    assert_eq!(step(&mut watch, None, true), Some(Transition::Stale { silent: STALE }));
}

#[tokio::test(start_paused = true)]
async fn the_session_closing_resolves_a_stale_source() {
    let mut watch = Watch::default();
    assert_eq!(step(&mut watch, None, true), None);
    advance(Duration::from_secs(5)).await;
    assert!(matches!(step(&mut watch, None, true), Some(Transition::Stale { .. })));
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        step(&mut watch, None, false),
        Some(Transition::Recovered { after: Duration::from_secs(1), reason: Recovery::NotExpected })
    );
    assert_eq!(step(&mut watch, None, false), None);
    // The next session starts a new count.
    assert_eq!(step(&mut watch, None, true), None);
}
