//! The HTTP edge: routes, middleware, and the GraphQL transports.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{error::ErrorCode, state::AppState};

/// Self-hosted GraphiQL (no CDN).
pub mod graphiql;
/// GraphQL over HTTP (POST and GET), done to the GraphQL-over-HTTP spec.
pub mod graphql;
/// `/health` (alive), `/ready` (database reachable), and the container probe.
pub mod health;
/// `GET /metrics` (Prometheus text), here or on `FINQL_METRICS_ADDR`.
pub mod metrics;
/// The accept loop around hyper: header, body and idle timeouts, the connection cap and its
/// probe reserve, the open-files limit, graceful drain.
pub mod server;
/// GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`.
pub mod ws;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post).fallback(graphql_method_not_allowed))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready));
    if state.config.metrics_addr.is_none() {
        router = router.route("/metrics", get(metrics::metrics));
    }
    // No playground (nor introspection) in production: it is a map of the API for attackers.
    if state.config.limits.introspection {
        router = router.route("/", get(|| async { Redirect::temporary("/graphiql") })).merge(graphiql::routes());
    }
    let mut router = router
        // Other methods on a known route: a JSON error like every other refusal, not an empty
        // body (axum adds `Allow` with the route's methods).
        .method_not_allowed_fallback(|| async {
            error_body(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route", ErrorCode::BadUserInput)
        })
        .fallback(|| async {
            error_body(StatusCode::NOT_FOUND, "no such route; GraphQL is at /graphql", ErrorCode::NotFound)
        })
        // The GraphQL handler reads the body itself; this caps it (413 above the limit).
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("panic in an HTTP handler");
            error_body(StatusCode::INTERNAL_SERVER_ERROR, "internal error", ErrorCode::Internal)
        }));
    if !state.config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> =
            state.config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
                // Browsers cache the preflight for 10 minutes instead of sending one per request.
                .max_age(Duration::from_secs(600)),
        );
    }
    router
        // Outermost but for the trace and request-id layers: counts every answer, refusals too.
        .layer(axum::middleware::from_fn(crate::metrics::http::track))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

/// PUT, DELETE, PATCH, … on `/graphql`: 405 with `Allow: GET, POST` (HEAD, which axum answers
/// as GET, is not advertised: GraphQL-over-HTTP defines GET and POST).
async fn graphql_method_not_allowed() -> Response {
    let mut response = error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "GraphQL requests are GET (queries) or POST",
        ErrorCode::BadUserInput,
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// A GraphQL-shaped error document for failures outside GraphQL execution.
pub fn error_body(status: StatusCode, message: &str, code: ErrorCode) -> Response {
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] })))
        .into_response()
}
