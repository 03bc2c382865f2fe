//! The one retry policy of every provider: exponential backoff with "equal jitter", from the
//! `backon` crate.
//!
//! The `n`-th wait (from 0) is uniform in `[c/2, c)` with `c = min(max, min * 2^n)`. Half of it
//! is jitter, so clients cut off together (every replica after an upstream outage, every
//! connection after a network blip) spread their retries instead of arriving in lockstep; the
//! other half is a floor, so a wait is never zero and a server that fails at once cannot be
//! hammered in a tight loop. (The iTick REST client used to draw full jitter, `[0, c)`, whose
//! zero waits are exactly that loop; its stream drew equal jitter. Both use this now.)
//!
//! backon's jitter adds up to one more delay on top of its delay (`[d, 2d)`), so the builder
//! is given half the bounds: the waits come out in `[c/2, c)` as above. Callers that know
//! better (a `Retry-After` header, a request's deadline) override or stop the sequence
//! themselves; this is only the default spacing.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Waits between attempts: the first about `min` (in `[min/2, min)`), doubling up to `max` (in
/// `[max/2, max)`); endless unless `times` bounds the number of retries.
pub fn backoff(min: Duration, max: Duration, times: Option<usize>) -> ExponentialBackoff {
    let max = max.max(min);
    let builder =
        ExponentialBuilder::default().with_min_delay(min / 2).with_max_delay(max / 2).with_factor(2.0).with_jitter();
    match times {
        Some(times) => builder.with_max_times(times),
        None => builder.without_max_times(),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_jitter_within_bounds_and_never_zero() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(60));
        for _ in 0..50 {
            for (n, wait) in backoff(min, max, None).take(40).enumerate() {
                let ceiling = min.saturating_mul(1u32 << n.min(20)).min(max);
                // backon computes in f32: allow it a microsecond of rounding.
                let slack = Duration::from_micros(1);
                assert!(
                    wait + slack >= ceiling / 2 && wait <= ceiling + slack,
                    "wait {n}: {wait:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn grows_then_stays_at_the_cap() {
        let waits: Vec<Duration> = backoff(Duration::from_millis(100), Duration::from_secs(2), None).take(12).collect();
        assert!(waits[0] < Duration::from_millis(100));
        assert!(waits[3] >= Duration::from_millis(400), "doubles: {waits:?}");
        assert!(waits[11] >= Duration::from_secs(1) && waits[11] <= Duration::from_secs(2), "capped: {waits:?}");
    }

    #[test]
    fn bounded_when_asked() {
        assert_eq!(backoff(Duration::from_millis(1), Duration::from_millis(8), Some(3)).count(), 3);
        // A minimum above the maximum is taken as the maximum too.
        let wait = backoff(Duration::from_secs(1), Duration::ZERO, None).next().unwrap();
        assert!(wait + Duration::from_micros(1) >= Duration::from_millis(500) && wait <= Duration::from_secs(1));
    }
}
