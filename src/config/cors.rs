//! Browser access (`http::cors`): which origins may call the API and open WebSockets, which
//! request headers a browser may send, and which response headers its scripts may read.

use anyhow::bail;
use http::{HeaderName, HeaderValue};

/// Request headers a browser may send by default: the API's own (`authorization`,
/// `x-api-key`, `idempotency-key`), the media types (`content-type`, `accept`: a long `Accept`
/// is not CORS-safelisted), and W3C Trace Context and Baggage, which browser tracing
/// (OpenTelemetry web, Sentry, Datadog RUM) adds to every request it instruments.
pub const DEFAULT_ALLOW_HEADERS: [&str; 8] =
    ["content-type", "accept", "authorization", "x-api-key", "idempotency-key", "traceparent", "tracestate", "baggage"];

/// Response headers a browser's scripts may read by default (beyond the CORS-safelisted
/// ones): the request's trace id, the plan limits' state, and when to retry.
pub const DEFAULT_EXPOSE_HEADERS: [&str; 4] = ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsSettings {
    /// `FINQL_CORS_ORIGINS`: comma-separated origins (`https://app.example.com`) allowed to
    /// call the API from a browser and to open WebSockets from one; `*` allows every origin
    /// (safe for finql, whose credentials are headers, never cookies). Empty (the default)
    /// means same-origin only over HTTP, and WebSocket upgrades from any origin (as before
    /// this setting checked them).
    pub origins: Vec<String>,
    /// `FINQL_CORS_ALLOW_HEADERS`: comma-separated request headers a browser may send (the
    /// preflight's `Access-Control-Allow-Headers`). Replaces the default list
    /// ([`DEFAULT_ALLOW_HEADERS`]); to add one (`sentry-trace`), restate the defaults with it.
    pub allow_headers: Vec<String>,
    /// `FINQL_CORS_EXPOSE_HEADERS`: comma-separated response headers a browser's scripts may
    /// read (`Access-Control-Expose-Headers`). Replaces the default list
    /// ([`DEFAULT_EXPOSE_HEADERS`]).
    pub expose_headers: Vec<String>,
}

impl Default for CorsSettings {
    fn default() -> Self {
        let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        Self {
            origins: Vec::new(),
            allow_headers: owned(&DEFAULT_ALLOW_HEADERS),
            expose_headers: owned(&DEFAULT_EXPOSE_HEADERS),
        }
    }
}

impl CorsSettings {
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let origins = list(get, "FINQL_CORS_ORIGINS").unwrap_or_default();
        for origin in &origins {
            if origin != "*" && (HeaderValue::from_str(origin).is_err() || !origin.contains("://")) {
                bail!("FINQL_CORS_ORIGINS: `{origin}` is not an origin (scheme://host[:port]) nor `*`");
            }
        }
        if origins.len() > 1 && origins.iter().any(|o| o == "*") {
            bail!("FINQL_CORS_ORIGINS: `*` allows every origin and cannot be listed with others");
        }
        let headers = |key: &str, default: Vec<String>| -> anyhow::Result<Vec<String>> {
            let Some(names) = list(get, key) else { return Ok(default) };
            names
                .into_iter()
                .map(|name| match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(header) => Ok(header.as_str().to_owned()),
                    Err(_) => bail!("{key}: `{name}` is not a header name"),
                })
                .collect()
        };
        Ok(Self {
            origins,
            allow_headers: headers("FINQL_CORS_ALLOW_HEADERS", defaults.allow_headers)?,
            expose_headers: headers("FINQL_CORS_EXPOSE_HEADERS", defaults.expose_headers)?,
        })
    }

    /// Whether every origin is allowed (`FINQL_CORS_ORIGINS=*`).
    pub fn any_origin(&self) -> bool {
        self.origins.iter().any(|o| o == "*")
    }
}

/// A comma-separated variable's items (trimmed, empty ones dropped); `None` when unset.
fn list(get: &impl Fn(&str) -> Option<String>, key: &str) -> Option<Vec<String>> {
    get(key).map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<CorsSettings> {
        CorsSettings::from_lookup(&crate::config::test_lookup(vars))
    }

    #[test]
    fn defaults_overrides_and_refusals() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults, CorsSettings::default());
        assert!(defaults.allow_headers.contains(&"traceparent".to_owned()));
        assert!(defaults.expose_headers.contains(&"x-request-id".to_owned()));
        let set = settings(&[
            ("FINQL_CORS_ORIGINS", "https://app.example.com, http://localhost:3000"),
            ("FINQL_CORS_ALLOW_HEADERS", "Content-Type, Sentry-Trace"),
            ("FINQL_CORS_EXPOSE_HEADERS", "x-request-id"),
        ])
        .unwrap();
        assert_eq!(set.origins, ["https://app.example.com", "http://localhost:3000"]);
        assert_eq!(set.allow_headers, ["content-type", "sentry-trace"], "header names are lower-cased");
        assert_eq!(set.expose_headers, ["x-request-id"]);
        assert!(!set.any_origin());
        assert!(settings(&[("FINQL_CORS_ORIGINS", "*")]).unwrap().any_origin());
        for bad in [
            ("FINQL_CORS_ORIGINS", "app.example.com"),
            ("FINQL_CORS_ORIGINS", "*, https://app.example.com"),
            ("FINQL_CORS_ALLOW_HEADERS", "content type"),
            ("FINQL_CORS_EXPOSE_HEADERS", "x:y"),
        ] {
            let err = settings(&[bad]).unwrap_err().to_string();
            assert!(err.contains(bad.0), "{err}");
        }
    }
}
