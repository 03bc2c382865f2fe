//! The HTTP side of the iTick REST adapter: one GET with the client-side quota, retries and the
//! `{code, msg, data}` envelope. What `data` means is `parse`'s.
//!
//! - **Quota.** iTick counts calls per minute per key, so the client keeps every call of the
//!   instance (retries included) under `requests_per_minute` with a GCRA limiter (`governor`):
//!   a burst of a tenth of the quota, then the rest spread over the minute, so that no 60 s
//!   window ever holds more than the quota (see [`quota`]). A call waits for its permit at most
//!   its attempt timeout (and never past the request's deadline), else it answers `Unavailable`
//!   at once. After a 429 the burst allowance is spent: whoever else shares the key is using it.
//! - **Retries.** 429, 5xx, timeouts and connection failures are retried up to `max_retries`
//!   times, waiting what `Retry-After` asks or else the providers' one backoff
//!   ([`crate::sources::retry`]), and only while the request's upstream budget
//!   (`market::health`) leaves time for the wait and another attempt.
//! - **Traces.** Each call is a client span (`itick.rest`, with its path, never the query: the
//!   path says what was asked, the symbols belong to the audit), and every attempt carries the
//!   request's W3C `traceparent` (`telemetry::trace::inject`).

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::Clock,
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

use super::{BACKOFF_BASE, BACKOFF_CAP, ItickSource};
use crate::{market::SourceError, sources::retry};

const UNAUTHORIZED: &str = "iTick rejected the token (check ITICK_TOKEN)";

/// The client-side limiter of one `ItickSource`.
pub(super) type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The limiter of `per_minute` calls a minute ([`quota`]).
pub(super) fn limiter(per_minute: u32) -> Limiter {
    RateLimiter::direct_with_clock(quota(per_minute), TokioClock { start: tokio::time::Instant::now() })
}

/// governor on tokio's clock: the quota is paced by the clock the waits sleep on, so a test that
/// pauses time (`tokio::time::pause`) paces it too.
#[derive(Clone, Debug)]
pub(super) struct TokioClock {
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

impl ItickSource {
    /// Waits for a permit of the client-side quota: at most the attempt timeout, and never past
    /// the request's deadline; `Unavailable` at once when the permit is further away than that.
    pub(super) async fn acquire(&self) -> Result<(), SourceError> {
        let mut latest = tokio::time::Instant::now() + self.timeout;
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
                    "client-side rate limit: the next iTick request slot is {} ms away",
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

    /// One GET with retries; returns the envelope's `data`.
    #[tracing::instrument(name = "itick.rest", skip_all, fields(otel.kind = "client", source = "itick", url.path = path))]
    pub(super) async fn call(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let url = format!("{}{path}", self.base_url);
        let mut last = String::new();
        let mut backoff = retry::backoff(BACKOFF_BASE, BACKOFF_CAP, None);
        for attempt in 0..=self.max_retries {
            self.acquire().await?;
            let (retry_after, why) = match self.attempt(&url, query).await {
                Ok(data) => return Ok(data),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry { after, why }) => (after, why),
            };
            last = why;
            if attempt == self.max_retries {
                break;
            }
            let delay = match retry_after {
                Some(after) if after > self.timeout => {
                    return Err(SourceError::Unavailable(format!(
                        "iTick {path}: {last}; asked to retry after {} s",
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
                    "iTick {path}: {last}; no time left in the budget to retry"
                )));
            }
            tracing::debug!(source = "itick", path, attempt, delay_ms = delay.as_millis() as u64, why = %last, "retrying");
            tokio::time::sleep(delay).await;
        }
        tracing::warn!(source = "itick", path, attempts = self.max_retries + 1, why = %last, "iTick unavailable");
        Err(SourceError::Unavailable(format!("iTick {path}: {last} (after {} attempts)", self.max_retries + 1)))
    }

    async fn attempt(&self, url: &str, query: &[(&str, String)]) -> Result<Value, Attempt> {
        let response = self
            .client
            .get(url)
            .header("token", self.token.expose().as_str())
            .header(header::ACCEPT, "application/json")
            .headers(trace_headers())
            .query(query)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Attempt::Fail(SourceError::Unauthorized(UNAUTHORIZED.to_owned())));
        }
        if status == StatusCode::NOT_FOUND {
            return Err(Attempt::Fail(SourceError::NotFound(format!(
                "iTick answered 404 for {}",
                response.url().path()
            ))));
        }
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
        if !status.is_success() {
            return Err(Attempt::Fail(SourceError::Unavailable(format!("iTick answered HTTP {}", status.as_u16()))));
        }
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fail(SourceError::Invalid(format!("iTick's answer is not JSON: {e}"))))?;
        open_envelope(body)
    }
}

/// The current span's `traceparent`, for the upstream to join its logs to ours.
fn trace_headers() -> header::HeaderMap {
    let mut headers = header::HeaderMap::new();
    crate::telemetry::trace::inject(&mut headers);
    headers
}

pub(super) enum Attempt {
    Retry { after: Option<Duration>, why: String },
    Fail(SourceError),
}

fn transport_error(e: &reqwest::Error) -> Attempt {
    if e.is_builder() {
        return Attempt::Fail(SourceError::Invalid(format!("cannot build the iTick request: {e}")));
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // reqwest's Display includes the URL and its query, never the headers (so not the token).
    Attempt::Retry { after: None, why: format!("{kind}: {e}") }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by APIs like this one; ignored).
pub(super) fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

// ---------------------------------------------------------------------------------------------
// Envelope and values
// ---------------------------------------------------------------------------------------------

/// `{"code": 0, "msg": …, "data": …}` -> `data`; other codes -> the error they mean.
pub(super) fn open_envelope(mut body: Value) -> Result<Value, Attempt> {
    let Some(object) = body.as_object_mut() else {
        return Err(Attempt::Fail(SourceError::Invalid("iTick's answer is not a JSON object".into())));
    };
    let code = match object.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(code) = code else {
        return Err(Attempt::Fail(SourceError::Invalid("iTick's answer has no numeric `code`".into())));
    };
    if code == 0 {
        return Ok(object.remove("data").unwrap_or(Value::Null));
    }
    let msg = match object.get("msg") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Err(envelope_error(code, &msg))
}

/// Classifies an envelope error. iTick's codes are only documented as `E001 not found`,
/// `E002 auth failed`, `E003 exceeding the maximum subscription limit`, inside `msg`; the numeric
/// `code` may also carry an HTTP-like status.
fn envelope_error(code: i64, msg: &str) -> Attempt {
    let lower = msg.to_ascii_lowercase();
    let shown = if msg.is_empty() { format!("error code {code}") } else { format!("{msg} (code {code})") };
    if lower.contains("e003") || lower.contains("subscription limit") {
        return Attempt::Fail(SourceError::Unavailable(format!("iTick: {shown}")));
    }
    if lower.contains("e002")
        || lower.contains("auth")
        || lower.contains("token")
        || lower.contains("forbidden")
        || lower.contains("permission")
        || code == 401
        || code == 403
    {
        return Attempt::Fail(SourceError::Unauthorized(format!("{UNAUTHORIZED}: {shown}")));
    }
    if lower.contains("e001") || lower.contains("not found") || lower.contains("not exist") || code == 404 {
        return Attempt::Fail(SourceError::NotFound(format!("iTick: {shown}")));
    }
    if code == 429 || lower.contains("too many") || lower.contains("rate limit") || lower.contains("frequen") {
        return Attempt::Retry { after: None, why: format!("rate limited: {shown}") };
    }
    Attempt::Fail(SourceError::Unavailable(format!("iTick: {shown}")))
}
