//! HTTP caching (`http::caching`): `Cache-Control` by data tier over GET, `private` for
//! credentials and personal data, `no-store` for errors, refusals and POST; strong ETags that
//! ignore the trace id, 304 on `If-None-Match`; brotli, zstd and gzip, and what compression
//! leaves alone (small answers, WebSocket upgrades).

use std::io::Read;

use reqwest::{
    StatusCode,
    header::{
        ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap,
        IF_NONE_MATCH, VARY,
    },
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;

const SECURITY: &str = r#"{ security(symbol: "AAPL.US") { symbol name currency } }"#;
/// Enough securities that the answer is well above the compression threshold (1 KiB).
const CATALOG: &str = "{ securities(first: 50) { nodes { symbol name currency lotSize } } }";

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, &[]).await.expect("SQLite is always available")
}

/// An answer as sent: status, headers, body bytes (still encoded, if they were).
struct Sent {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Sent {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }

    fn cache_control(&self) -> &str {
        self.header(CACHE_CONTROL).unwrap_or_else(|| panic!("no Cache-Control: {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }
}

/// GET /graphql?query=… with extra request headers.
async fn get_with(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> Sent {
    let url = url::Url::parse_with_params(&app.url("/graphql"), [("query", query)]).expect("a URL");
    let mut request = app.client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request reaches the server");
    let (status, headers) = (response.status(), response.headers().clone());
    Sent { status, headers, body: response.bytes().await.expect("a body").to_vec() }
}

async fn get(app: &TestApp, query: &str) -> Sent {
    get_with(app, query, &[]).await
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out).map(drop),
        "zstd" => zstd::stream::read::Decoder::new(body).expect("zstd").read_to_end(&mut out).map(drop),
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out).map(drop),
        other => panic!("unexpected coding {other}"),
    }
    .unwrap_or_else(|err| panic!("not valid {coding}: {err}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_has_its_cache_control_over_get() {
    let app = app().await;
    let closed =
        r#"{ klines(symbol: "AAPL.US", interval: ONE_DAY, limit: 3, before: "2024-03-01T00:00:00Z") { time close } }"#;
    let adjusted = r#"{ klines(symbol: "AAPL.US", interval: ONE_DAY, limit: 3, before: "2024-03-01T00:00:00Z", adjust: FORWARD) { time close } }"#;
    let cases = [
        (r#"{ quote(symbol: "AAPL.US") { last } }"#, "public, max-age=2"),
        (r#"{ orderBook(symbol: "AAPL.US") { bids { price } } }"#, "public, max-age=2"),
        (r#"{ klines(symbol: "AAPL.US", interval: ONE_DAY, limit: 3) { time close } }"#, "public, max-age=2"),
        (closed, "public, max-age=3600"),
        (adjusted, "public, max-age=300"),
        (SECURITY, "public, max-age=300"),
        (CATALOG, "public, max-age=300"),
        // The most restrictive of what the document selects.
        (r#"{ security(symbol: "AAPL.US") { symbol quote { last } } }"#, "public, max-age=2"),
        // Nothing hinted (`__typename` alone): the safe default.
        ("{ __typename }", "no-store"),
    ];
    for (query, expected) in cases {
        let sent = get(&app, query).await;
        assert_eq!(sent.status, StatusCode::OK, "{query}: {}", sent.json());
        assert!(sent.json().get("errors").is_none(), "{query}: {}", sent.json());
        assert_eq!(sent.cache_control(), expected, "{query}");
        let vary = sent.header(VARY).unwrap_or_default().to_ascii_lowercase();
        for name in ["accept", "accept-encoding", "authorization", "x-api-key"] {
            assert!(vary.split(',').any(|v| v.trim() == name), "{query}: Vary {vary} lacks {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_and_credentialed_answers_are_private() {
    let app = app().await;
    let user = app.new_user().await;
    let bearer = format!("Bearer {}", user.access_token);
    let key = app.tenant_key("caching", "pro", "market").await;
    let as_user = [(AUTHORIZATION.as_str(), bearer.as_str())];
    let cases = [
        ("{ me { email } }", &as_user[..], "private, no-store"),
        ("{ transactions(first: 5) { totalCount } }", &as_user[..], "private, no-store"),
        // Personal beside public: personal wins.
        (&format!("{{ me {{ email }} {} }}", &SECURITY[1..SECURITY.len() - 1]), &as_user[..], "private, no-store"),
        // Market data seen through a plan: the caller's own, never a shared cache's.
        (SECURITY, &as_user[..], "private, max-age=300"),
        (SECURITY, &[("x-api-key", key.as_str())][..], "private, max-age=300"),
    ];
    for (query, headers, expected) in cases {
        let sent = get_with(&app, query, headers).await;
        assert_eq!(sent.status, StatusCode::OK, "{query}");
        assert!(sent.json().get("errors").is_none(), "{query}: {}", sent.json());
        assert_eq!(sent.cache_control(), expected, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_refusals_and_post_are_no_store() {
    let app = app().await;
    // A field error (and an unauthenticated personal query): executed, 200, not storable.
    for query in [r#"{ quote(symbol: "NOPE.US") { last } }"#, "{ me { email } }"] {
        let sent = get(&app, query).await;
        assert_eq!(sent.status, StatusCode::OK);
        assert!(sent.json()["errors"].is_array(), "{query}: {}", sent.json());
        assert_eq!(sent.cache_control(), "no-store", "{query}");
        assert_eq!(sent.header(ETAG), None, "{query}");
    }
    // Refused before execution: a mutation over GET (405, as before) and a bad document.
    let mutation = r#"mutation { login(email: "a@example.com", password: "x") { accessToken } }"#;
    let sent = get(&app, mutation).await;
    assert_eq!(sent.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(sent.header("allow"), Some("POST"));
    assert_eq!(sent.cache_control(), "no-store");
    let sent = get(&app, "{ security(symbol: ").await;
    assert_eq!(error_code(&sent.json()), "GRAPHQL_PARSE_FAILED");
    assert_eq!(sent.cache_control(), "no-store");
    // POST is never cacheable, whatever it asks.
    let response = app.client.post(app.url("/graphql")).json(&json!({ "query": SECURITY })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(response.headers().get(ETAG).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_ignores_the_trace_id_and_if_none_match_answers_304() {
    let app = app().await;
    let first = get(&app, SECURITY).await;
    let second = get(&app, SECURITY).await;
    assert_ne!(first.header("x-request-id"), second.header("x-request-id"));
    assert_ne!(first.body, second.body, "each answer carries its own trace id");
    let etag = first.header(ETAG).expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10, "a strong tag: {etag}");
    assert_eq!(second.header(ETAG), Some(etag.as_str()), "equal data, equal tag");

    for sent_tag in [etag.clone(), format!("\"other\", W/{etag}"), "*".to_owned()] {
        let revalidated = get_with(&app, SECURITY, &[(IF_NONE_MATCH.as_str(), &sent_tag)]).await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED, "{sent_tag}");
        assert!(revalidated.body.is_empty(), "a 304 has no body");
        assert_eq!(revalidated.cache_control(), "public, max-age=300");
        assert!(revalidated.header(ETAG).is_some_and(|tag| tag.contains(etag.trim_matches('"'))), "{sent_tag}");
        assert_eq!(revalidated.header(CONTENT_TYPE), None);
    }
    let stale = get_with(&app, SECURITY, &[(IF_NONE_MATCH.as_str(), "\"stale\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.header(ETAG), Some(etag.as_str()));

    // Different data, or the same data as another media type: another tag.
    let other = get(&app, r#"{ security(symbol: "MSFT.US") { symbol name currency } }"#).await;
    assert_ne!(other.header(ETAG), Some(etag.as_str()));
    let as_graphql = get_with(&app, SECURITY, &[(ACCEPT.as_str(), "application/graphql-response+json")]).await;
    assert_eq!(untraced(as_graphql.json()), untraced(first.json()));
    assert_ne!(as_graphql.header(ETAG), Some(etag.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brotli_zstd_and_gzip_round_trip() {
    let app = app().await;
    let plain = get(&app, CATALOG).await;
    assert_eq!(plain.header(CONTENT_ENCODING), None, "no Accept-Encoding, no coding");
    assert!(plain.body.len() > 2048, "large enough to compress: {} bytes", plain.body.len());
    let etag = plain.header(ETAG).expect("an ETag").trim_matches('"').to_owned();
    for coding in ["br", "zstd", "gzip"] {
        let sent = get_with(&app, CATALOG, &[(ACCEPT_ENCODING.as_str(), coding)]).await;
        assert_eq!(sent.status, StatusCode::OK);
        assert_eq!(sent.header(CONTENT_ENCODING), Some(coding));
        assert!(sent.body.len() < plain.body.len() / 2, "{coding}: {} bytes", sent.body.len());
        let decoded: Value = serde_json::from_slice(&decode(coding, &sent.body)).expect("JSON once decoded");
        assert_eq!(untraced(decoded), untraced(plain.json()), "{coding}");
        assert!(sent.header(VARY).unwrap_or_default().to_ascii_lowercase().contains("accept-encoding"));
        // The coded representation has its own strong tag, which revalidates it.
        let tag = format!("\"{etag}-{coding}\"");
        assert_eq!(sent.header(ETAG), Some(tag.as_str()));
        let revalidated =
            get_with(&app, CATALOG, &[(ACCEPT_ENCODING.as_str(), coding), (IF_NONE_MATCH.as_str(), &tag)]).await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED, "{coding}");
        assert_eq!(revalidated.header(ETAG), Some(tag.as_str()));
    }
    // On a tie, zstd then brotli (a browser sends them all).
    let sent = get_with(&app, CATALOG, &[(ACCEPT_ENCODING.as_str(), "gzip, deflate, br, zstd")]).await;
    assert_eq!(sent.header(CONTENT_ENCODING), Some("zstd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_leaves_small_answers_and_websockets_alone() {
    let app = app().await;
    let small = get_with(&app, "{ __typename }", &[(ACCEPT_ENCODING.as_str(), "br, zstd, gzip")]).await;
    assert_eq!(small.status, StatusCode::OK);
    assert_eq!(small.header(CONTENT_ENCODING), None, "{} bytes", small.body.len());
    assert_eq!(small.json()["data"]["__typename"], "Query");

    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("Accept-Encoding", "br, zstd, gzip".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.expect("the upgrade succeeds");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(response.headers().get("content-encoding").is_none());
    use futures::{SinkExt, StreamExt};
    ws.send(r#"{"type":"connection_init"}"#.into()).await.unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("an answer in time");
    let ack: Value = serde_json::from_str(ack.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ack["type"], "connection_ack");

    // /metrics as Prometheus scrapes it: gzip, which decodes to the text format.
    let scrape = app.client.get(app.url("/metrics")).header(ACCEPT_ENCODING, "gzip").send().await.unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    let coding = scrape.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap().to_owned());
    let body = scrape.bytes().await.unwrap();
    let text = match coding.as_deref() {
        Some(coding) => decode(coding, &body),
        None => body.to_vec(),
    };
    assert!(String::from_utf8(text).unwrap().contains("# TYPE"), "Prometheus text");
}
