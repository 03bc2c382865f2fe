//! The REST side every provider shares: one pooled HTTPS client, the client-side quota, the
//! retries and their bounds. What an answer means (envelope, error bodies, auth) stays with the
//! provider, which hands `RestClient::get` a function reading each answer.
//!
//! - **Quota.** Providers count calls per minute per key, so the client keeps every call of the
//!   instance (retries included) under `requests_per_minute` with a GCRA limiter (`governor`):
//!   a burst of a tenth of the quota, then the rest spread over the minute, so that no 60 s
//!   window ever holds more than the quota (see `quota`). A call waits for its permit at most
//!   its attempt timeout (and never past the request's deadline), else it answers `Unavailable`
//!   at once. After a 429 the burst allowance is spent: whoever else shares the key is using it.
//! - **Retries.** 429, 5xx, timeouts and connection failures are retried up to `max_retries`
//!   times, waiting what `Retry-After` asks or else the providers' one backoff
//!   (`sources::retry`), and only while the request's upstream budget
//!   (`market::health`) leaves time for the wait and another attempt.
//! - **Traces.** Every attempt carries the request's W3C `traceparent`
//!   (`telemetry::trace::inject`); the provider wraps the call in its client span.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::Clock,
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::{market::SourceError, sources::retry};

/// Retries wait about 100 ms, doubling up to 2 s: a 5xx or a dropped connection is usually gone
/// in a moment, and three retries then fit in a request's budget.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// How one REST client of a provider behaves.
#[derive(Clone, Debug)]
pub struct RestSettings {
    /// The provider's name, in logs and messages (`itick`, `polygon`).
    pub provider: &'static str,
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Client-side quota: at most this many calls in any 60 s window, retries included.
    pub requests_per_minute: u32,
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
}

/// What became of one attempt, as the provider's reader of answers says.
pub enum Attempt {
    /// Worth another try (after `after`, when the upstream said).
    Retry { after: Option<Duration>, why: String },
    /// Final.
    Fail(SourceError),
}

/// A provider's pooled client with its quota and retries.
pub struct RestClient {
    client: reqwest::Client,
    settings: RestSettings,
    limiter: Limiter,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl RestClient {
    pub fn new(settings: RestSettings) -> anyhow::Result<Self> {
        let provider = settings.provider;
        anyhow::ensure!(settings.requests_per_minute > 0, "the {provider} requests per minute must be at least 1");
        anyhow::ensure!(!settings.timeout.is_zero(), "the {provider} timeout must be positive");
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3).min(settings.timeout))
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("finql/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limiter = limiter(settings.requests_per_minute);
        Ok(Self { client, settings, limiter })
    }

    /// One GET of `base` + `path` with `query` and the provider's `headers`, retried as the
    /// module says; `read` turns each answer that is neither a 429 nor a 5xx (status, body)
    /// into its value, a final failure or a reason to retry.
    pub async fn get(
        &self,
        base: &str,
        path: &str,
        query: &[(&str, String)],
        headers: &header::HeaderMap,
        read: impl Fn(StatusCode, &[u8]) -> Result<Value, Attempt>,
    ) -> Result<Value, SourceError> {
        let provider = self.settings.provider;
        let url = format!("{base}{path}");
        // In messages and logs, the path without any query it carries (a next page's cursor).
        let path = path.split('?').next().unwrap_or_default();
        let mut last = String::new();
        let mut backoff = retry::backoff(BACKOFF_BASE, BACKOFF_CAP, None);
        for attempt in 0..=self.settings.max_retries {
            self.acquire().await?;
            let (retry_after, why) = match self.attempt(&url, query, headers, &read).await {
                Ok(data) => return Ok(data),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry { after, why }) => (after, why),
            };
            last = why;
            if attempt == self.settings.max_retries {
                break;
            }
            let delay = match retry_after {
                Some(after) if after > self.settings.timeout => {
                    return Err(SourceError::Unavailable(format!(
                        "{provider} {path}: {last}; asked to retry after {} s",
                        after.as_secs()
                    )));
                }
                Some(after) => after,
                None => backoff.next().unwrap_or(BACKOFF_CAP),
            };
            if let Some(deadline) = crate::market::health::deadline()
                && tokio::time::Instant::now() + delay >= deadline
            {
                return Err(SourceError::Unavailable(format!(
                    "{provider} {path}: {last}; no time left in the budget to retry"
                )));
            }
            tracing::debug!(source = provider, path, attempt, delay_ms = delay.as_millis() as u64, why = %last, "retrying");
            tokio::time::sleep(delay).await;
        }
        let attempts = self.settings.max_retries + 1;
        tracing::warn!(source = provider, path, attempts, why = %last, "upstream unavailable");
        Err(SourceError::Unavailable(format!("{provider} {path}: {last} (after {attempts} attempts)")))
    }

    async fn attempt(
        &self,
        url: &str,
        query: &[(&str, String)],
        headers: &header::HeaderMap,
        read: &impl Fn(StatusCode, &[u8]) -> Result<Value, Attempt>,
    ) -> Result<Value, Attempt> {
        let mut headers = headers.clone();
        headers.insert(header::ACCEPT, header::HeaderValue::from_static("application/json"));
        crate::telemetry::trace::inject(&mut headers);
        let response =
            self.client.get(url).headers(headers).query(query).send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Whoever else shares the quota is using it: stop bursting.
            self.drain();
            return Err(Attempt::Retry {
                after: retry_after(response.headers()),
                why: "HTTP 429 (rate limited)".into(),
            });
        }
        if status.is_server_error() {
            return Err(Attempt::Retry {
                after: retry_after(response.headers()),
                why: format!("HTTP {}", status.as_u16()),
            });
        }
        let body = response.bytes().await.map_err(|e| self.transport_error(&e))?;
        read(status, &body)
    }

    /// Waits for a permit of the client-side quota: at most the attempt timeout, and never past
    /// the request's deadline; `Unavailable` at once when the permit is further away than that.
    async fn acquire(&self) -> Result<(), SourceError> {
        let mut latest = tokio::time::Instant::now() + self.settings.timeout;
        if let Some(deadline) = crate::market::health::deadline() {
            latest = latest.min(deadline);
        }
        loop {
            let wait = match self.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until.wait_time_from(self.limiter.clock().now()),
            };
            // Without a reservation, waiters race for the next permit: each retries until its
            // own bound, never past it.
            if tokio::time::Instant::now() + wait > latest {
                return Err(SourceError::Unavailable(format!(
                    "client-side rate limit: the next {} request slot is {} ms away",
                    self.settings.provider,
                    wait.as_millis()
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Spends the burst allowance (after the upstream answered 429): later calls are paced.
    fn drain(&self) {
        while self.limiter.check().is_ok() {}
    }

    fn transport_error(&self, e: &reqwest::Error) -> Attempt {
        let provider = self.settings.provider;
        if e.is_builder() {
            return Attempt::Fail(SourceError::Invalid(format!("cannot build the {provider} request: {e}")));
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "transport error"
        };
        // reqwest's Display includes the URL and its query, never the headers: providers send
        // their keys as headers.
        Attempt::Retry { after: None, why: format!("{kind}: {e}") }
    }
}

/// reqwest is built with `rustls-no-provider`: the process must install a rustls crypto provider
/// (ring) before building any `reqwest::Client`, or the build panics. Idempotent; safe to call
/// from anywhere, any number of times.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `Retry-After` in seconds (the HTTP-date form is not used by APIs like these; ignored).
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Checks a provider's configured base URL: `http(s)://…`, without a trailing slash.
pub fn base_url(provider: &str, raw: &str) -> anyhow::Result<String> {
    let base = raw.trim().trim_end_matches('/').to_owned();
    let parsed = url::Url::parse(&base).map_err(|e| anyhow::anyhow!("invalid {provider} base URL `{base}`: {e}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "invalid {provider} base URL `{base}`: expected http:// or https://"
    );
    Ok(base)
}

/// The client-side limiter of one `RestClient`.
type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The limiter of `per_minute` calls a minute ([`quota`]).
fn limiter(per_minute: u32) -> Limiter {
    RateLimiter::direct_with_clock(quota(per_minute), TokioClock { start: tokio::time::Instant::now() })
}

/// governor on tokio's clock: the quota is paced by the clock the waits sleep on, so a test that
/// pauses time (`tokio::time::pause`) paces it too.
#[derive(Clone, Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    /// Time since the limiter was made (governor's relative instants, as its own fake clock).
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// At most `per_minute` calls in any 60 s window: a burst of a tenth of the quota (at least 1,
/// less than the whole when the quota allows), then one call every `60 s / (per_minute -
/// burst)`. GCRA admits at most `burst + 60 s / period = per_minute` calls in any 60 s. (A
/// burst of the whole quota plus a refill of the quota a minute would allow twice the quota in
/// the first minute.)
pub fn quota(per_minute: u32) -> Quota {
    let per_minute = per_minute.max(1);
    let burst = (per_minute / 10).clamp(1, (per_minute - 1).max(1));
    let paced = (per_minute - burst).max(1);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(60) / paced;
    Quota::with_period(period).unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN)).allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use governor::{RateLimiter, clock::FakeRelativeClock};

    use super::*;

    #[test]
    fn retry_after_seconds() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static(" 2 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    /// The quota under a clock the test moves: a greedy caller polling every 10 ms for two minutes.
    fn takes(per_minute: u32) -> Vec<u64> {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota(per_minute), clock.clone());
        let mut takes = Vec::new();
        for step in 0..12_000u64 {
            while limiter.check().is_ok() {
                takes.push(step * 10);
            }
            clock.advance(Duration::from_millis(10));
        }
        takes
    }

    #[test]
    fn quota_bursts_then_paces() {
        // 60 a minute: a burst of 6, then 54 a minute (one every 1.11 s).
        let takes = takes(60);
        assert_eq!(takes[..6], [0; 6]);
        assert_eq!(takes[6], 1_120, "the first paced call comes 60/54 s after the burst");
        assert_eq!(takes[7], 2_230);
    }

    #[test]
    fn quota_never_exceeds_requests_per_minute() {
        for per_minute in [1u32, 5, 60, 120, 600, 1200] {
            let takes = takes(per_minute);
            for (i, start) in takes.iter().enumerate() {
                let in_window = takes[i..].iter().take_while(|t| **t < start + 60_000).count();
                assert!(in_window <= per_minute as usize, "{per_minute}/min: {in_window} in a window");
            }
            // And it is not stingier than the quota: two minutes hold at least one full minute's worth.
            assert!(takes.len() as u32 > per_minute, "{per_minute}/min: only {} takes", takes.len());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_its_permit_at_most_its_timeout() {
        // A burst of 6, then one call every 60/54 s.
        let source = RestClient::new(RestSettings {
            provider: "test",
            timeout: Duration::from_secs(1),
            requests_per_minute: 60,
            max_retries: 0,
        })
        .unwrap();
        let start = tokio::time::Instant::now();
        for _ in 0..6 {
            source.acquire().await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        // The next permit is 1.11 s away, beyond the 1 s timeout: refused at once, not after waiting.
        assert!(matches!(source.acquire().await, Err(SourceError::Unavailable(_))));
        assert_eq!(start.elapsed(), Duration::ZERO);
        // 0.2 s later it is 0.91 s away: the call waits for it.
        tokio::time::advance(Duration::from_millis(200)).await;
        source.acquire().await.unwrap();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1_110) && waited < Duration::from_millis(1_130), "{waited:?}");
    }
}
