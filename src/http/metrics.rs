//! `GET /metrics`: the Prometheus text exposition (`crate::metrics`). On `FINQL_ADDR` unless
//! `FINQL_METRICS_ADDR` gives it a listener of its own ([`router`]), which keeps tenant names
//! and traffic figures off the port the public load balancer reaches.

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{resilience::breaker::BreakerState, state::AppState};

/// The media type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Redis as the shared quote cache's breaker sees it (no call made here: a scrape must not
    // wait on Redis). Absent without `REDIS_URL`.
    if let Some(redis) = state.market.redis_health() {
        let up = matches!(redis.state, BreakerState::Closed { .. });
        metrics::gauge!("finql_redis_up").set(if up { 1.0 } else { 0.0 });
    }
    let body = state.metrics.render(&state.db);
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

/// The metrics listener's router (`FINQL_METRICS_ADDR`): `/metrics` and nothing else.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}
