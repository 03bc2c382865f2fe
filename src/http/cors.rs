//! CORS and origins: what a browser may do from a page on another origin.
//!
//! - Every `OPTIONS` request is a preflight and is answered `204 No Content`, whatever is
//!   configured: with the allowed methods (GET, POST), headers (`FINQL_CORS_ALLOW_HEADERS`)
//!   and a 10-minute `Access-Control-Max-Age`, and `Access-Control-Allow-Origin` only for an
//!   origin in `FINQL_CORS_ORIGINS`. With no origins configured the answer is still a correct
//!   preflight, without `Access-Control-Allow-Origin`: the browser refuses the cross-origin
//!   request itself, which is the intent, instead of reporting a 405 the page cannot explain.
//!   204 rather than tower-http's 200: a preflight has no body, and 204 is what the Fetch
//!   standard's examples and most servers send.
//! - Responses to an allowed origin carry `Access-Control-Expose-Headers`
//!   (`FINQL_CORS_EXPOSE_HEADERS`; by default `x-request-id`, `RateLimit`, `RateLimit-Policy`
//!   and `Retry-After`, so a page can report the trace id and back off as told).
//! - WebSocket upgrades are not covered by CORS (a browser opens a socket to any origin and
//!   sends its own `Origin`), so when `FINQL_CORS_ORIGINS` is set the upgrade is checked here
//!   (`websocket_origin_allowed`): a browser's upgrade from an origin not in the list, and
//!   not the server's own (GraphiQL), is refused with 403 before upgrading. Clients that are
//!   not browsers send no `Origin` and are let through: the check protects browsers' users
//!   from pages that would use the API in their name, which only browsers can be made to do.

use std::time::Duration;

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsSettings;

/// How long a browser may reuse a preflight's answer: one preflight per 10 minutes per
/// resource instead of one per request (browsers cap it: Chromium at 2 hours, Firefox 24).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `settings` (always installed: preflights are answered either way).
pub fn layer(settings: &CorsSettings) -> CorsLayer {
    let origin = if settings.any_origin() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(settings.origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let names = |list: &[String]| -> Vec<HeaderName> {
        list.iter().filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok()).collect()
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(names(&settings.allow_headers))
        .expose_headers(names(&settings.expose_headers))
        .max_age(PREFLIGHT_MAX_AGE)
}

/// Turns the CORS layer's preflight answer (an empty 200) into 204 No Content. Runs outside
/// the CORS layer.
pub async fn preflight_no_content(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// Whether a WebSocket upgrade with these headers may proceed: no `Origin` (not a browser),
/// no origins configured, `*`, an origin in the list, or the server's own origin (its
/// `Host`). `Err` carries the refused origin.
pub fn websocket_origin_allowed(settings: &CorsSettings, headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    if settings.origins.is_empty() || settings.any_origin() {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or_default();
    if settings.origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
        return Ok(());
    }
    // Same origin: the page was served by this server (GraphiQL). Compared by authority, the
    // scheme is the proxy's business (TLS usually ends before finql).
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (authority, host) {
        (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(origin.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap())).collect()
    }

    #[test]
    fn websocket_origins() {
        let listed = CorsSettings { origins: vec!["https://app.example.com".into()], ..CorsSettings::default() };
        let host = (header::HOST, "api.example.com");
        let from = |origin: &str| headers(&[(header::ORIGIN, origin), host.clone()]);
        assert!(
            websocket_origin_allowed(&listed, &headers(std::slice::from_ref(&host))).is_ok(),
            "no Origin: not a browser"
        );
        assert!(websocket_origin_allowed(&listed, &from("https://app.example.com")).is_ok());
        assert!(websocket_origin_allowed(&listed, &from("https://api.example.com")).is_ok(), "same origin");
        assert_eq!(
            websocket_origin_allowed(&listed, &from("https://evil.example")),
            Err("https://evil.example".to_owned())
        );
        assert!(websocket_origin_allowed(&listed, &from("null")).is_err(), "a sandboxed page");
        let unset = CorsSettings::default();
        assert!(websocket_origin_allowed(&unset, &from("https://evil.example")).is_ok(), "not checked when unset");
        let any = CorsSettings { origins: vec!["*".into()], ..CorsSettings::default() };
        assert!(websocket_origin_allowed(&any, &from("https://evil.example")).is_ok());
    }
}
