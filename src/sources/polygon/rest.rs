//! The HTTP side of the Polygon adapter: the shared client (`sources::http`: quota, retries,
//! trace context) with Polygon's bearer key, its status codes and envelope, and its cursor
//! pages.
//!
//! - **Envelope.** Success is `status` `OK`, `DELAYED` (a delayed plan) or `success` (the
//!   legacy v1 paths), or no envelope at all (market status). Errors are matched on the HTTP
//!   code and `status`, never on their text (it changed with the rebrand): 401 and 403
//!   (`NOT_AUTHORIZED`: the key, or a plan without this data) are `Unauthorized`, 404 is
//!   `NotFound`, any other 4xx `Invalid`; 429 and 5xx are retried by `sources::http`.
//! - **Pages.** `next_url` is absolute and carries no key: its path and query are kept and
//!   re-aimed at the configured base, with the key in the header (as client-python does), so a
//!   page never leaves for another host and a test's fake server serves every page.
//! - Each call is a client span (`polygon.rest`, with its path: the ticker is in it, as in
//!   every Polygon path, and the symbols belong to the audit too).

use reqwest::{StatusCode, header};
use serde_json::Value;

use super::PolygonSource;
use crate::{market::SourceError, sources::http::Attempt};

const UNAUTHORIZED: &str = "Polygon rejected the key or the plan does not include this data (check POLYGON_API_KEY)";

impl PolygonSource {
    /// One GET of `path` (from the base) with retries; the answer's body.
    #[tracing::instrument(name = "polygon.rest", skip_all, fields(otel.kind = "client", source = "polygon", url.path = path))]
    pub(super) async fn call(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        self.rest.get(&self.base_url, path, query, &self.headers, read).await
    }

    /// The pages of a list endpoint from `path` with `query`, each page's `results` appended in
    /// order, until `enough` items are in or `max_pages` were read.
    pub(super) async fn pages(
        &self,
        path: &str,
        query: &[(&str, String)],
        enough: usize,
        max_pages: usize,
    ) -> Result<Vec<Value>, SourceError> {
        let mut body = self.call(path, query).await?;
        let mut items = Vec::new();
        for page in 1.. {
            items.extend(results(&mut body));
            if items.len() >= enough {
                break;
            }
            let Some(next) = next_page(&body) else { break };
            if page >= max_pages {
                tracing::warn!(source = "polygon", path, pages = page, "stopped following pages at the bound");
                break;
            }
            body = self.call(&next, &[]).await?;
        }
        Ok(items)
    }
}

/// One answer that is neither a 429 nor a 5xx (`sources::http` retries those).
fn read(status: StatusCode, body: &[u8]) -> Result<Value, Attempt> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if status.is_success() {
        let body = parsed.ok_or_else(|| Attempt::Fail(SourceError::Invalid("Polygon's answer is not JSON".into())))?;
        return open_envelope(body);
    }
    let message = parsed.as_ref().map(error_text).unwrap_or_default();
    Err(Attempt::Fail(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SourceError::Unauthorized(format!("{UNAUTHORIZED}: {message}"))
        }
        StatusCode::NOT_FOUND => SourceError::NotFound(format!("Polygon answered 404: {message}")),
        other => SourceError::Invalid(format!("Polygon answered HTTP {}: {message}", other.as_u16())),
    }))
}

/// A success's body, or the error a 200 may still carry (`status: ERROR`).
pub(super) fn open_envelope(body: Value) -> Result<Value, Attempt> {
    match body.get("status").and_then(Value::as_str) {
        // No envelope (`/v1/marketstatus/now`: its `status` would be a market's, not a string
        // of these) or a success.
        None | Some("OK" | "DELAYED" | "success") => Ok(body),
        Some("NOT_AUTHORIZED") => {
            Err(Attempt::Fail(SourceError::Unauthorized(format!("{UNAUTHORIZED}: {}", error_text(&body)))))
        }
        Some("NOT_FOUND") => Err(Attempt::Fail(SourceError::NotFound(format!("Polygon: {}", error_text(&body))))),
        Some(other) => {
            Err(Attempt::Fail(SourceError::Invalid(format!("Polygon status {other}: {}", error_text(&body)))))
        }
    }
}

/// An error body's text: `error`, else `message`.
fn error_text(body: &Value) -> String {
    ["error", "message"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_str))
        .unwrap_or("no message")
        .chars()
        .take(300)
        .collect()
}

/// A body's `results` as items: an array's, a lone object as one, none when absent (Polygon
/// leaves the key out when there is no data).
pub(super) fn results(body: &mut Value) -> Vec<Value> {
    match body.get_mut("results").map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

/// The path and query of `next_url`, to be sent to the configured base.
pub(super) fn next_page(body: &Value) -> Option<String> {
    let next = body.get("next_url")?.as_str()?;
    let url = url::Url::parse(next).ok()?;
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// The bearer key header every call sends, marked sensitive.
pub(super) fn headers(key: &str) -> anyhow::Result<header::HeaderMap> {
    let mut value = header::HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| anyhow::anyhow!("the Polygon API key contains characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    let mut headers = header::HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    Ok(headers)
}
