//! CORS (`http::cors`): preflights answered 204 whether or not origins are configured, the
//! allowed and exposed headers (defaults and `FINQL_CORS_ALLOW_HEADERS` /
//! `FINQL_CORS_EXPOSE_HEADERS`), and `Access-Control-Allow-Origin` only for a listed origin.

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::json;

use crate::helpers::*;

const APP_ORIGIN: &str = "https://app.example.com";

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// A browser's preflight for a POST from `origin` that sends `request_headers`.
/// `{ __typename }` POSTed from `APP_ORIGIN`, as a page there would.
async fn cross_origin_query(app: &TestApp) -> reqwest::Response {
    app.client
        .post(app.url("/graphql"))
        .header("Origin", APP_ORIGIN)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, origin: &str, request_headers: &str) -> (StatusCode, HeaderMap, String) {
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/graphql"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", request_headers)
        .send()
        .await
        .expect("the preflight reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
}

/// A comma-separated header's items, lower-cased.
fn items(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_origins_a_preflight_is_204_without_allow_origin() {
    let app = app_with(&[]).await;
    let (status, headers, body) = preflight(&app, APP_ORIGIN, "content-type, traceparent").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{headers:?}");
    assert_eq!(body, "");
    assert_eq!(header(&headers, "access-control-allow-origin"), None, "no origin is allowed");
    assert_eq!(items(&headers, "access-control-allow-methods"), ["get", "post"]);
    // An actual cross-origin request is served (same-origin policy is the browser's), without
    // the header that would let the page read it.
    let response = cross_origin_query(&app).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(response.headers(), "access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_origin_gets_the_default_headers_allowed_and_exposed() {
    let app = app_with(&[("FINQL_CORS_ORIGINS", APP_ORIGIN)]).await;
    let (status, headers, _) =
        preflight(&app, APP_ORIGIN, "content-type, authorization, traceparent, tracestate, baggage").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{headers:?}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP_ORIGIN));
    assert_eq!(header(&headers, "access-control-max-age"), Some("600"));
    assert_eq!(
        items(&headers, "access-control-allow-headers"),
        [
            "content-type",
            "accept",
            "authorization",
            "x-api-key",
            "idempotency-key",
            "traceparent",
            "tracestate",
            "baggage"
        ]
    );
    // Another origin: a preflight all the same, without the origin allowed.
    let (status, headers, _) = preflight(&app, "https://evil.example", "content-type").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    let response = cross_origin_query(&app).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some(APP_ORIGIN));
    assert_eq!(
        items(headers, "access-control-expose-headers"),
        ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"]
    );
    assert!(header(headers, "x-request-id").is_some(), "the exposed trace id is there to read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_exposed_headers_are_configurable() {
    let app = app_with(&[
        ("FINQL_CORS_ORIGINS", "*"),
        ("FINQL_CORS_ALLOW_HEADERS", "content-type, Sentry-Trace"),
        ("FINQL_CORS_EXPOSE_HEADERS", "x-request-id"),
    ])
    .await;
    let (status, headers, _) = preflight(&app, "https://anywhere.example", "content-type, sentry-trace").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert_eq!(items(&headers, "access-control-allow-headers"), ["content-type", "sentry-trace"]);
    let response = app
        .client
        .get(app.url("/graphql?query=%7B__typename%7D"))
        .header("Origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(items(response.headers(), "access-control-expose-headers"), ["x-request-id"]);
}
