//! `finql_http_requests_total{route, status}` and `finql_http_request_duration_seconds{route}`.
//!
//! The route is the matched path template (`/graphql`, `/health`), which axum puts on the
//! request before a route's layers run (`Router::layer` wraps each route): a bounded set. A path
//! that matched no route is `unmatched`, whatever it was, so a scanner walking random paths
//! cannot grow the label set. The duration runs to the response's head (a WebSocket: to its
//! 101); a streamed body is not waited for.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics::SharedString;

/// The `route` of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Counts and times every request (an axum `from_fn` middleware).
pub async fn track(request: Request, next: Next) -> Response {
    let route: SharedString = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned().into(),
        None => UNMATCHED.into(),
    };
    let start = Instant::now();
    let response = next.run(request).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = SharedString::from(response.status().as_u16().to_string());
    metrics::counter!("finql_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("finql_http_request_duration_seconds", "route" => route).record(elapsed);
    response
}
