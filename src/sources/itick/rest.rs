//! The HTTP side of the iTick REST adapter: the shared client (`sources::http`: quota, retries,
//! trace context) with iTick's token header, status codes and `{code, msg, data}` envelope.
//! What `data` means is `parse`'s.
//!
//! Each call is a client span (`itick.rest`, with its path, never the query: the path says what
//! was asked, the symbols belong to the audit).

use reqwest::{StatusCode, header};
use serde_json::Value;

use super::ItickSource;
use crate::{market::SourceError, sources::http::Attempt};

const UNAUTHORIZED: &str = "iTick rejected the token (check ITICK_TOKEN)";

impl ItickSource {
    /// One GET with retries; returns the envelope's `data`.
    #[tracing::instrument(name = "itick.rest", skip_all, fields(otel.kind = "client", source = "itick", url.path = path))]
    pub(super) async fn call(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        self.rest.get(&self.base_url, path, query, &self.headers, |status, body| read(status, body, path)).await
    }
}

/// One answer that is neither a 429 nor a 5xx (`sources::http` retries those).
fn read(status: StatusCode, body: &[u8], path: &str) -> Result<Value, Attempt> {
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(Attempt::Fail(SourceError::Unauthorized(UNAUTHORIZED.to_owned())));
    }
    if status == StatusCode::NOT_FOUND {
        return Err(Attempt::Fail(SourceError::NotFound(format!("iTick answered 404 for {path}"))));
    }
    if !status.is_success() {
        return Err(Attempt::Fail(SourceError::Unavailable(format!("iTick answered HTTP {}", status.as_u16()))));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| Attempt::Fail(SourceError::Invalid(format!("iTick's answer is not JSON: {e}"))))?;
    open_envelope(body)
}

/// The token header every call sends (checked to be a valid header value when the source is made).
pub(super) fn headers(token: &str) -> anyhow::Result<header::HeaderMap> {
    let mut headers = header::HeaderMap::new();
    let mut value = header::HeaderValue::from_str(token)
        .map_err(|_| anyhow::anyhow!("the iTick token contains characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    headers.insert("token", value);
    Ok(headers)
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
