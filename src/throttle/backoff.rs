//! Exponential delay after repeated failures: the per-account brake on password guessing.
//!
//! The state of a key is two numbers: `attempts` (counted since the last success) and
//! `blocked_until`. An attempt is *counted when it starts*, not when it fails: counting
//! failures afterwards would let 50 concurrent guesses all pass the check before the first
//! one failed. So a check is also a reservation: the `free`-th attempt (and each after it) sets
//! the delay before the next one may start: `base`, then `2·base`, `4·base`… up to `max`. A
//! success clears the key (`Limiter::forget`); a refused attempt changes nothing, so an
//! attacker hammering a blocked account does not lengthen the real owner's wait beyond the
//! current delay. The count is remembered for `memory` after the block ends, so waiting a
//! little does not buy a fresh set of free attempts.
//!
//! Like `gcra`, a pure function of `now` so that the in-process limiter and the Redis script
//! share one definition (the script mirrors it line by line).

use std::time::Duration;

use super::gcra::micros;

/// How failures slow down further attempts on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts allowed without any delay.
    pub free: u32,
    /// The first delay (after the `free`-th attempt); each further attempt doubles it.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How long the count is kept after the current block ends.
    pub memory: Duration,
}

/// What a key remembers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub attempts: u32,
    pub blocked_until_us: u64,
}

/// The outcome of one attempt, and the state to keep when it was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub allowed: bool,
    /// Until the next attempt may start (0 when this one was allowed).
    pub retry_after_us: u64,
    /// Attempts left before delays begin.
    pub remaining: u32,
    pub state: State,
    /// How long to keep `state`.
    pub ttl_us: u64,
}

impl Backoff {
    /// The wait imposed after the `attempts`-th counted attempt.
    pub fn delay_after_us(&self, attempts: u32) -> u64 {
        if attempts < self.free.max(1) {
            return 0;
        }
        let doublings = (attempts - self.free.max(1)).min(63);
        micros(self.base).saturating_mul(1u64 << doublings).min(micros(self.max))
    }

    /// One attempt at `now_us` on a key in `state`.
    pub fn step(&self, state: Option<State>, now_us: u64) -> Step {
        let state = state.unwrap_or_default();
        if now_us < state.blocked_until_us {
            return Step {
                allowed: false,
                retry_after_us: state.blocked_until_us - now_us,
                remaining: 0,
                state,
                ttl_us: state.blocked_until_us - now_us + micros(self.memory),
            };
        }
        let attempts = state.attempts.saturating_add(1);
        let delay = self.delay_after_us(attempts);
        Step {
            allowed: true,
            retry_after_us: 0,
            remaining: self.free.saturating_sub(attempts),
            state: State { attempts, blocked_until_us: now_us.saturating_add(delay) },
            ttl_us: delay.saturating_add(micros(self.memory)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn policy() -> Backoff {
        Backoff {
            free: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(900),
            memory: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn free_attempts_then_doubling_delays_capped() {
        let p = policy();
        let delays: Vec<u64> = (1..=20).map(|n| p.delay_after_us(n) / SEC).collect();
        assert_eq!(delays[..4], [0, 0, 0, 0]);
        assert_eq!(delays[4..15], [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
        assert!(delays[15..].iter().all(|d| *d == 900));
        assert_eq!(p.delay_after_us(u32::MAX), 900 * SEC, "no overflow");
    }

    #[test]
    fn attempts_in_a_burst_stop_after_the_free_ones() {
        // 50 attempts at the same instant: the check is a reservation, so exactly `free` pass.
        let p = policy();
        let mut state = None;
        let mut passed = 0;
        for _ in 0..50 {
            let s = p.step(state, 0);
            if s.allowed {
                passed += 1;
                state = Some(s.state);
            }
        }
        assert_eq!(passed, 5);
        let blocked = p.step(state, 0);
        assert_eq!((blocked.allowed, blocked.retry_after_us), (false, SEC));
    }

    #[test]
    fn waiting_out_each_delay_doubles_the_next() {
        let p = policy();
        let mut state = None;
        let mut now = 0;
        for _ in 0..5 {
            state = Some(p.step(state, now).state);
        }
        for expected in [1, 2, 4, 8] {
            let early = p.step(state, now + expected * SEC - 1);
            assert!(!early.allowed);
            assert_eq!(early.retry_after_us, 1);
            assert_eq!(early.state, state.unwrap(), "a refused attempt changes nothing");
            now += expected * SEC;
            let on_time = p.step(state, now);
            assert!(on_time.allowed);
            state = Some(on_time.state);
        }
        assert_eq!(p.step(state, now).retry_after_us, 16 * SEC);
    }

    #[test]
    fn the_count_outlives_the_block_by_its_memory() {
        let p = policy();
        let s = p.step(Some(State { attempts: 4, blocked_until_us: 0 }), 0);
        assert_eq!(s.state.blocked_until_us, SEC);
        assert_eq!(s.ttl_us, SEC + 86_400 * SEC);
        assert_eq!(s.remaining, 0);
        assert_eq!(p.step(None, 0).remaining, 4);
    }

    #[test]
    fn zero_free_attempts_delays_from_the_first() {
        let p = Backoff { free: 0, ..policy() };
        assert_eq!(p.delay_after_us(1), SEC);
    }
}
