//! The HTTP edge: routes, middleware, and the GraphQL transports.

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde_json::json;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use tracing::Instrument;

use crate::{error::ErrorCode, state::AppState, telemetry};

/// `Cache-Control` by data tier, strong ETags and 304s for GraphQL over GET; compression.
pub mod caching;
/// CORS (preflights, allowed and exposed headers) and the WebSocket upgrade's origin check.
pub mod cors;
/// Self-hosted GraphiQL (no CDN).
pub mod graphiql;
/// GraphQL over HTTP (POST and GET), done to the GraphQL-over-HTTP spec.
pub mod graphql;
/// `/health` (alive), `/ready` (database reachable; each dependency's state), and the container
/// probe.
pub mod health;
/// `GET /metrics` (Prometheus text), here or on `FINQL_METRICS_ADDR`.
pub mod metrics;
/// The accept loop around hyper: header, body and idle timeouts, the connection cap and its
/// probe reserve, the open-files limit, graceful drain.
pub mod server;
/// GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`.
pub mod ws;

/// The request's W3C trace id (32 hex digits), on the request once the edge has decided it
/// (`telemetry::trace`) and on every response. Everything after the edge reads the trace id
/// from here.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post).fallback(graphql_method_not_allowed))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready));
    if state.config.metrics && state.config.metrics_addr.is_none() {
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
        .layer(caching::compression())
        .layer(axum::middleware::map_response(caching::tag_encoding))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("panic in an HTTP handler");
            error_body(StatusCode::INTERNAL_SERVER_ERROR, "internal error", ErrorCode::Internal)
        }))
        .layer(cors::layer(&state.config.cors))
        // Outside the CORS layer: its preflight answer becomes a 204.
        .layer(axum::middleware::from_fn(cors::preflight_no_content));
    if state.config.metrics {
        // Counts every answer, refusals too (inside the trace layers: its timing is the handler's).
        router = router.layer(axum::middleware::from_fn(crate::metrics::http::track));
    }
    router
        // Inside the request's span (`trace`): logs a failure (5xx) with the request's trace id.
        .layer(TraceLayer::new_for_http().make_span_with(|_: &axum::http::Request<_>| tracing::Span::current()))
        .layer(axum::middleware::from_fn(trace))
        .with_state(state)
}

/// Runs every request in its span, with its trace id (from a valid incoming `traceparent`, or
/// new) as `x-request-id` on the request and the response. A client's own `x-request-id` is
/// replaced: the trace id is the one name of a request, in logs, errors, spans and the audit.
async fn trace(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (span, trace_id) = telemetry::trace::http_span(request.method(), request.uri().path(), request.headers());
    let id = HeaderValue::from_str(&trace_id.to_string()).ok();
    match &id {
        Some(id) => request.headers_mut().insert(REQUEST_ID.clone(), id.clone()),
        None => request.headers_mut().remove(&REQUEST_ID),
    };
    let mut response = next.run(request).instrument(span.clone()).await;
    telemetry::trace::record_status(&span, response.status());
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID.clone(), id);
    }
    response
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
