//! The throttling policy of the authentication mutations (see the module docs of `throttle`).

use std::{future::Future, net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};

use super::{Decision, Limiter, address, backoff::Backoff, gcra::Quota};
use crate::error::{AppError, AppResult};

/// Which limits apply. Read from the environment by `config.rs` (variable names below); each
/// `None` is a limit switched off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Per account (normalised email), on `login`: `FINQL_LOGIN_FREE_FAILURES` (default 5)
    /// attempts, then `FINQL_LOGIN_BACKOFF_BASE_MS` (default 1000; 0 switches this off) doubling
    /// up to `FINQL_LOGIN_BACKOFF_MAX_SECS` (default 900), the count kept
    /// `FINQL_LOGIN_FAILURE_MEMORY_SECS` (default 86400) after the last block.
    pub login_backoff: Option<Backoff>,
    /// Per client address, on `login`: `FINQL_LOGIN_PER_ADDR_PER_MIN` (default 30; 0 = off),
    /// `FINQL_LOGIN_PER_ADDR_BURST` (default 10).
    pub login_per_address: Option<Quota>,
    /// Per client address, on `signUp`: `FINQL_SIGNUP_PER_ADDR_PER_HOUR` (default 5; 0 = off),
    /// `FINQL_SIGNUP_PER_ADDR_BURST` (default 5).
    pub signup_per_address: Option<Quota>,
    /// Per client address, on `refreshToken`: `FINQL_REFRESH_PER_ADDR_PER_MIN` (default 60;
    /// 0 = off), `FINQL_REFRESH_PER_ADDR_BURST` (default 30).
    pub refresh_per_address: Option<Quota>,
}

/// The defaults: what a public deployment wants. A person mistyping a password a few times
/// never notices; a script guessing gets about 15 tries an hour per account; an address gets
/// half a login a second (an office behind one NAT logging in at 9:00 still fits in the burst
/// and the refill); five accounts an hour per address is more than any household creates;
/// refreshes come once per access-token lifetime per session, so 60 a minute per address is
/// a whole office's worth.
pub mod defaults {
    pub const LOGIN_FREE_FAILURES: u32 = 5;
    pub const LOGIN_BACKOFF_BASE_MS: u64 = 1000;
    pub const LOGIN_BACKOFF_MAX_SECS: u64 = 15 * 60;
    /// A day: long enough that a slow attacker cannot wait for a fresh set of free attempts.
    pub const LOGIN_FAILURE_MEMORY_SECS: u64 = 24 * 3600;
    pub const LOGIN_PER_ADDR_PER_MIN: u32 = 30;
    pub const LOGIN_PER_ADDR_BURST: u32 = 10;
    pub const SIGNUP_PER_ADDR_PER_HOUR: u32 = 5;
    pub const SIGNUP_PER_ADDR_BURST: u32 = 5;
    pub const REFRESH_PER_ADDR_PER_MIN: u32 = 60;
    pub const REFRESH_PER_ADDR_BURST: u32 = 30;
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        use defaults::*;
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            login_backoff: Some(Backoff {
                free: LOGIN_FREE_FAILURES,
                base: Duration::from_millis(LOGIN_BACKOFF_BASE_MS),
                max: Duration::from_secs(LOGIN_BACKOFF_MAX_SECS),
                memory: Duration::from_secs(LOGIN_FAILURE_MEMORY_SECS),
            }),
            login_per_address: Quota::per(MINUTE, LOGIN_PER_ADDR_PER_MIN, LOGIN_PER_ADDR_BURST),
            signup_per_address: Quota::per(60 * MINUTE, SIGNUP_PER_ADDR_PER_HOUR, SIGNUP_PER_ADDR_BURST),
            refresh_per_address: Quota::per(MINUTE, REFRESH_PER_ADDR_PER_MIN, REFRESH_PER_ADDR_BURST),
        }
    }
}

/// Applies [`ThrottleSettings`] with a [`Limiter`]. Cheap to clone.
#[derive(Clone)]
pub struct AuthThrottle {
    limiter: Arc<dyn Limiter>,
    settings: ThrottleSettings,
    /// Key for hashing emails and addresses into limiter keys.
    salt: [u8; 32],
}

impl AuthThrottle {
    /// `secret` keys the hashes of emails and addresses: it must be the same on every replica
    /// (the JWT secret is).
    pub fn new(limiter: Arc<dyn Limiter>, settings: ThrottleSettings, secret: &[u8]) -> Self {
        let salt = Sha256::new().chain_update(b"finql throttle keys\0").chain_update(secret).finalize().into();
        Self { limiter, settings, salt }
    }

    /// The limiter, for other policies (rate limits per tenant) to share.
    pub fn limiter(&self) -> &Arc<dyn Limiter> {
        &self.limiter
    }

    /// Runs `attempt` (a login) unless the address or the account is throttled; a success
    /// clears the account's failures.
    pub async fn login<T>(
        &self,
        email: &str,
        addr: Option<IpAddr>,
        attempt: impl Future<Output = AppResult<T>>,
    ) -> AppResult<T> {
        self.per_address("login", addr, self.settings.login_per_address).await?;
        // The same normalisation as `Email::parse`, applied to any input: a malformed or
        // unknown email is throttled exactly like a known one.
        let account =
            self.settings.login_backoff.map(|policy| (policy, self.key("login", &email.trim().to_lowercase())));
        if let Some((policy, key)) = &account {
            let decision = self.limiter.attempt(key, *policy).await;
            if !decision.allowed {
                tracing::debug!(limit = "login per account", retry_after = ?decision.retry_after, "throttled");
                counted("login_per_account");
                return Err(limited(decision));
            }
        }
        let result = attempt.await;
        if let (Ok(_), Some((_, key))) = (&result, &account) {
            self.limiter.forget(key).await;
        }
        result
    }

    /// Runs `attempt` (a sign-up) unless the address is over its sign-up rate.
    pub async fn sign_up<T>(&self, addr: Option<IpAddr>, attempt: impl Future<Output = AppResult<T>>) -> AppResult<T> {
        self.per_address("signup", addr, self.settings.signup_per_address).await?;
        attempt.await
    }

    /// Runs `attempt` (a token refresh) unless the address is over its refresh rate.
    pub async fn refresh<T>(&self, addr: Option<IpAddr>, attempt: impl Future<Output = AppResult<T>>) -> AppResult<T> {
        self.per_address("refresh", addr, self.settings.refresh_per_address).await?;
        attempt.await
    }

    async fn per_address(&self, action: &'static str, addr: Option<IpAddr>, quota: Option<Quota>) -> AppResult<()> {
        // No address: an in-process caller, not a client on the network.
        let (Some(quota), Some(addr)) = (quota, addr) else { return Ok(()) };
        let key = self.key(&format!("{action}:addr"), &address::bucket(addr));
        let decision = self.limiter.acquire(&key, quota, 1).await;
        if decision.allowed {
            return Ok(());
        }
        tracing::debug!(limit = action, scope = "address", retry_after = ?decision.retry_after, "throttled");
        counted(match action {
            "login" => "login_per_address",
            "signup" => "signup_per_address",
            _ => "refresh_per_address",
        });
        Err(limited(decision))
    }

    /// `{kind}:{keyed hash of value}`: 128 bits of hash are plenty to keep keys apart.
    fn key(&self, kind: &str, value: &str) -> String {
        let digest =
            Sha256::new().chain_update(self.salt).chain_update(kind).chain_update(b"\0").chain_update(value).finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{kind}:{hex}")
    }
}

/// Counts a throttled authentication in `finql_rate_limited_total`: the caller is not known
/// yet (it is signing in), so its tenant is `-`, as for every anonymous caller.
fn counted(policy: &'static str) {
    metrics::counter!("finql_rate_limited_total", "tenant" => "-", "policy" => policy).increment(1);
}

/// `RATE_LIMITED` with `retryAfter` in whole seconds, rounded up (a client that waits that
/// long is never refused again for the same reason).
fn limited(decision: Decision) -> AppError {
    let micros = decision.retry_after.as_micros();
    let secs = u64::try_from(micros.div_ceil(1_000_000)).unwrap_or(u64::MAX).max(1);
    AppError::RateLimited { retry_after_secs: secs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::memory::{
        MemoryLimiter,
        tests::{ManualClock, manual},
    };

    fn throttle() -> (AuthThrottle, Arc<ManualClock>) {
        let (limiter, clock) = manual();
        (AuthThrottle::new(Arc::new(limiter), ThrottleSettings::default(), b"secret"), clock)
    }

    fn code(result: &AppResult<()>) -> Option<&'static str> {
        result.as_ref().err().map(|e| e.code().as_str())
    }

    #[tokio::test]
    async fn failures_slow_the_account_and_a_success_clears_them() {
        let (t, clock) = throttle();
        // No address: this is about the account alone (12 attempts exceed an address's burst).
        let addr = None;
        let wrong = || async { Err::<(), _>(AppError::Unauthenticated("invalid email or password".into())) };
        for _ in 0..5 {
            assert_eq!(code(&t.login("Ann@X.com", addr, wrong()).await), Some("UNAUTHENTICATED"));
        }
        // Case and spaces do not make a new account key; the right password is refused too,
        // and is never even tried (the future is not polled).
        let refused: AppResult<()> =
            t.login(" ann@x.COM ", addr, async { panic!("checked a password while throttled") }).await;
        assert!(matches!(refused, Err(AppError::RateLimited { retry_after_secs: 1 })), "{refused:?}");
        clock.advance(Duration::from_secs(1));
        assert!(t.login("ann@x.com", addr, async { Ok(()) }).await.is_ok());
        for _ in 0..5 {
            assert_eq!(code(&t.login("ann@x.com", addr, wrong()).await), Some("UNAUTHENTICATED"), "count reset");
        }
    }

    #[tokio::test]
    async fn keys_hide_emails_and_differ_per_secret() {
        let (t, _) = throttle();
        let key = t.key("login", "ann@x.com");
        assert!(!key.contains("ann"), "{key}");
        let other = AuthThrottle::new(Arc::new(MemoryLimiter::new()), ThrottleSettings::default(), b"other");
        assert_ne!(key, other.key("login", "ann@x.com"));
        assert_ne!(key, t.key("signup", "ann@x.com"));
    }

    #[tokio::test]
    async fn sign_ups_are_capped_per_address_not_globally() {
        let (t, _) = throttle();
        let one = Some("192.0.2.1".parse().unwrap());
        let two = Some("192.0.2.2".parse().unwrap());
        for _ in 0..5 {
            assert!(t.sign_up(one, async { Ok(()) }).await.is_ok());
        }
        let refused = t.sign_up(one, async { Ok(()) }).await;
        // 5 an hour: the next one in 12 minutes.
        assert!(matches!(refused, Err(AppError::RateLimited { retry_after_secs: 720 })), "{refused:?}");
        assert!(t.sign_up(two, async { Ok(()) }).await.is_ok());
        assert!(t.sign_up(None, async { Ok(()) }).await.is_ok(), "in-process callers have no address");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let at = |us| match limited(Decision::from_us(false, us, 0)) {
            AppError::RateLimited { retry_after_secs } => retry_after_secs,
            _ => unreachable!(),
        };
        assert_eq!((at(1), at(1_000_000), at(1_000_001), at(0)), (1, 1, 2, 1));
    }
}
