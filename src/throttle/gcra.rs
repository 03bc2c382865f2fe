//! GCRA (the generic cell rate algorithm): a rate limit as one number per key.
//!
//! A quota lets `burst` requests through at once and then one every `interval`. Instead of a
//! counter per window (which lets twice the rate through across a window boundary) or a log of
//! timestamps (memory per request), GCRA keeps the *theoretical arrival time* (TAT): when the
//! bucket would be empty again if every accepted request had arrived exactly on schedule. A
//! request of cost `c` is accepted when `max(TAT, now) + c·interval` lies no further than
//! `burst·interval` ahead of now; the new TAT is that sum. One integer per key, updated in
//! O(1), exact at any rate: the same arithmetic runs here (in-process) and in the Redis Lua
//! script (`redis.rs`), which is why it is written once as a pure function of `now`.
//!
//! Times are microseconds on the limiter's clock, so rates of thousands per second (the tenancy
//! plans) keep their precision.

use std::time::Duration;

/// A rate: `burst` requests at once, then one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The emission interval: the time one request "costs".
    pub interval: Duration,
    /// Requests allowed at once, on an idle key.
    pub burst: u32,
}

impl Quota {
    /// `count` requests per `period`, `burst` at once. `None` when `count` is 0: no limit.
    pub fn per(period: Duration, count: u32, burst: u32) -> Option<Self> {
        if count == 0 {
            return None;
        }
        // At least 1 µs: a zero interval would make every request free.
        let interval = (period / count).max(Duration::from_micros(1));
        Some(Self { interval, burst: burst.max(1) })
    }

    pub(super) fn interval_us(&self) -> u64 {
        micros(self.interval)
    }
}

/// What one GCRA step decided, and the state to keep when it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub allowed: bool,
    /// How long until a request of this cost would be accepted (0 when accepted).
    pub retry_after_us: u64,
    /// Requests of cost 1 still accepted right now (after this one).
    pub remaining: u32,
    /// The TAT to store (unchanged when refused), and how long to keep it: once now passes
    /// the TAT, the key is idle and forgetting it changes nothing.
    pub tat_us: u64,
    pub ttl_us: u64,
}

/// One request of `cost` units at `now_us` against a key whose stored TAT is `tat_us`.
pub fn step(tat_us: Option<u64>, now_us: u64, quota: Quota, cost: u32) -> Step {
    let interval = quota.interval_us();
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let limit = interval.saturating_mul(u64::from(quota.burst));
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    let ahead = new_tat - now_us;
    if ahead > limit {
        return Step { allowed: false, retry_after_us: ahead - limit, remaining: 0, tat_us: tat, ttl_us: tat - now_us };
    }
    let remaining = u32::try_from((limit - ahead) / interval).unwrap_or(u32::MAX);
    Step { allowed: true, retry_after_us: 0, remaining, tat_us: new_tat, ttl_us: ahead }
}

/// Several buckets at once, all or nothing (see `Limiter::acquire_all`): each bucket's step,
/// and whether all of them accepted. When one refused, the others are stepped with cost 0
/// (what they hold without this request) and nothing is to be stored.
pub fn step_all(tats: &[Option<u64>], now_us: u64, quotas: &[(Quota, u32)]) -> (bool, Vec<Step>) {
    let steps: Vec<Step> =
        tats.iter().zip(quotas).map(|(tat, (quota, cost))| step(*tat, now_us, *quota, *cost)).collect();
    if steps.iter().all(|s| s.allowed) {
        return (true, steps);
    }
    let steps = steps
        .into_iter()
        .zip(tats.iter().zip(quotas))
        .map(|(s, (tat, (quota, _)))| if s.allowed { step(*tat, now_us, *quota, 0) } else { s })
        .collect();
    (false, steps)
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn quota(per_minute: u32, burst: u32) -> Quota {
        Quota::per(Duration::from_secs(60), per_minute, burst).unwrap()
    }

    /// Runs `n` requests at `now`, threading the state; returns how many were accepted.
    fn run(tat: &mut Option<u64>, now: u64, quota: Quota, n: usize) -> usize {
        let mut accepted = 0;
        for _ in 0..n {
            let s = step(*tat, now, quota, 1);
            if s.allowed {
                *tat = Some(s.tat_us);
                accepted += 1;
            }
        }
        accepted
    }

    #[test]
    fn zero_count_means_no_limit() {
        assert_eq!(Quota::per(Duration::from_secs(60), 0, 10), None);
    }

    #[test]
    fn burst_then_one_per_interval() {
        let q = quota(30, 10); // one every 2 s
        let mut tat = None;
        assert_eq!(run(&mut tat, 0, q, 50), 10, "the burst, at once");
        let refused = step(tat, 0, q, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_us, 2 * SEC);
        assert_eq!(run(&mut tat, 2 * SEC - 1, q, 5), 0, "a microsecond early is early");
        assert_eq!(run(&mut tat, 2 * SEC, q, 5), 1);
        assert_eq!(run(&mut tat, 10 * SEC, q, 50), 4, "8 s later: four more intervals");
    }

    #[test]
    fn exact_over_a_long_window() {
        // Over 10 minutes of constant hammering, a 30/min quota accepts burst + 30 per minute.
        let q = quota(30, 10);
        let mut tat = None;
        let mut accepted = 0;
        for ms in (0..600_000u64).step_by(100) {
            accepted += run(&mut tat, ms * 1000, q, 3);
        }
        assert_eq!(accepted, 10 + 300 - 1, "burst + one per 2 s (the last interval not yet due)");
    }

    #[test]
    fn remaining_counts_down_and_idle_keys_expire() {
        let q = quota(60, 3);
        let first = step(None, 0, q, 1);
        assert_eq!((first.allowed, first.remaining, first.ttl_us), (true, 2, SEC));
        let second = step(Some(first.tat_us), 0, q, 1);
        assert_eq!((second.remaining, second.ttl_us), (1, 2 * SEC));
        // Once the TAT is in the past, the key is as good as new.
        let later = step(Some(second.tat_us), 100 * SEC, q, 1);
        assert_eq!(later, step(None, 100 * SEC, q, 1));
    }

    #[test]
    fn cost_takes_several_units_and_refusal_keeps_state() {
        let q = quota(60, 5);
        let big = step(None, 0, q, 4);
        assert!(big.allowed);
        assert_eq!(big.remaining, 1);
        let refused = step(Some(big.tat_us), 0, q, 2);
        assert!(!refused.allowed);
        assert_eq!(refused.tat_us, big.tat_us, "a refused request costs nothing");
        assert_eq!(refused.retry_after_us, SEC);
    }

    #[test]
    fn several_buckets_take_all_or_nothing() {
        let tenant = quota(600, 10); // one every 100 ms
        let key = quota(60, 2); // one every second
        let (mut t, mut k) = (None, None);
        for _ in 0..2 {
            let (ok, steps) = step_all(&[t, k], 0, &[(tenant, 1), (key, 1)]);
            assert!(ok);
            (t, k) = (Some(steps[0].tat_us), Some(steps[1].tat_us));
        }
        let (ok, steps) = step_all(&[t, k], 0, &[(tenant, 1), (key, 1)]);
        assert!(!ok, "the key is out");
        assert!(steps[0].allowed && !steps[1].allowed);
        assert_eq!(steps[0].tat_us, t.unwrap(), "the tenant's allowance is not spent by a refused request");
        assert_eq!(steps[0].remaining, 8);
        assert_eq!(steps[1].retry_after_us, SEC);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let q = Quota { interval: Duration::from_secs(u64::MAX / 2), burst: u32::MAX };
        let s = step(Some(u64::MAX - 1), u64::MAX - 2, q, u32::MAX);
        assert!(!s.allowed || s.tat_us >= u64::MAX - 2);
        let tiny = Quota::per(Duration::from_secs(1), u32::MAX, 1).unwrap();
        assert_eq!(tiny.interval, Duration::from_micros(1));
    }
}
