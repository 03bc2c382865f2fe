//! GraphQL over HTTP (`finql::http`): content types, methods, `Accept` negotiation, malformed
//! requests, body and batch limits, query limits, production hardening, probes, and graceful
//! shutdown; `caching` is `Cache-Control`, ETags and compression; `ws` is GraphQL over
//! WebSocket, `handshake` its upgrade read byte for byte, `cors` what browsers on other
//! origins may do.
//!
//! Transport behaviour does not depend on the database, so these run on SQLite only.

mod caching;
mod cors;
mod handshake;
mod persisted;
pub(crate) mod ws;

use reqwest::{
    StatusCode,
    header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderMap, LOCATION},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

async fn app() -> TestApp {
    app_with(&[]).await
}

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// A 40-character secret: production refuses short ones.
const PRODUCTION_SECRET: &str = "production-secret-0123456789abcdef012345";

async fn production_app() -> TestApp {
    app_with(&[("FINQL_ENV", "production"), ("JWT_SECRET", PRODUCTION_SECRET)]).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn content_type(&self) -> &str {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    Reply { status, headers, body }
}

/// POSTs `body` as-is with the given content type and `Accept`.
async fn post(
    app: &TestApp,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app.client.post(app.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    reply(request.send().await.expect("request reaches the server")).await
}

async fn post_json(app: &TestApp, accept: Option<&str>, body: &Value) -> Reply {
    post(app, Some("application/json"), accept, body.to_string()).await
}

/// GET /graphql with URL-encoded parameters.
async fn get(app: &TestApp, params: &[(&str, &str)]) -> Reply {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    reply(app.client.get(app.url(&format!("/graphql?{query}"))).send().await.expect("request reaches the server")).await
}

/// Every error in a response (or in each response of a batch) carries `extensions.code`.
fn assert_coded(body: &Value) {
    let responses = match body {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        single => vec![single],
    };
    for response in responses {
        if let Some(errors) = response.get("errors") {
            let errors = errors.as_array().unwrap_or_else(|| panic!("errors is a list: {body}"));
            assert!(!errors.is_empty(), "an errors list is never empty: {body}");
            for err in errors {
                assert!(err["extensions"]["code"].is_string(), "error without extensions.code: {err}");
            }
        }
    }
}

/// A refused request: the status, a coded error, and the first error's message.
fn assert_rejected(reply: &Reply, status: StatusCode) -> String {
    assert_refused_as(reply, status, "BAD_USER_INPUT")
}

/// Like `assert_rejected`, with the expected code.
fn assert_refused_as(reply: &Reply, status: StatusCode, code: &str) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_coded(&reply.body);
    assert_eq!(error_code(&reply.body), code, "{}", reply.body);
    assert!(reply.body.get("data").is_none_or(Value::is_null), "nothing executed: {}", reply.body);
    reply.body["errors"][0]["message"].as_str().expect("a message").to_owned()
}

fn assert_no_internals(body: &Value) {
    let text = body.to_string();
    for leak in ["Error(", "Error {", "kind:", "panicked", "serde", "sqlx", "SELECT", "src/", ".rs:"] {
        assert!(!text.contains(leak), "response leaks `{leak}`: {text}");
    }
}

fn sign_up_request(email: &str) -> Value {
    json!({
        "query": "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
        "variables": { "input": { "email": email, "password": PASSWORD, "fullName": "Mallory" } },
    })
}

/// A request written by hand on a fresh TCP connection, so that no header is added by a client
/// library (reqwest always sends `Accept`). Returns the head (lower-cased) and the body.
async fn raw_request(app: &TestApp, request: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_post_is_415_and_not_executed() {
    let app = app().await;
    let cases = [
        (Some("text/plain"), "text-plain@example.com"),
        (Some("application/x-www-form-urlencoded"), "form@example.com"),
        (Some("multipart/form-data; boundary=XyZ"), "multipart@example.com"),
        (None, "no-content-type@example.com"),
    ];
    for (content_type, email) in cases {
        let json = sign_up_request(email).to_string();
        let body = if content_type.is_some_and(|c| c.starts_with("multipart")) {
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{json}\r\n--XyZ--\r\n")
        } else {
            json
        };
        let reply = post(&app, content_type, None, body).await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {}", reply.body);
        assert_coded(&reply.body);
        assert_no_account(&app, email).await;
    }
    // The control: the same mutation as JSON does create the account.
    let reply = post_json(&app, None, &sign_up_request("json@example.com")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["data"]["signUp"]["accessToken"].is_string(), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_a_query() {
    let app = app().await;
    let reply = get(&app, &[("query", "{__typename}")]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // `extensions.cost`: the estimate the plan's budget paid (a scalar costs nothing);
    // `extensions.traceId`: the request's, as in `x-request-id`.
    assert_eq!(reply.body["extensions"]["traceId"].as_str(), reply.headers["x-request-id"].to_str().ok());
    assert_eq!(untraced(reply.body), json!({ "data": { "__typename": "Query" }, "extensions": { "cost": 0 } }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_mutation_is_405_allowing_post_and_not_executed() {
    let app = app().await;
    let mutation = format!(
        r#"mutation {{ signUp(input: {{ email: "get@example.com", password: "{PASSWORD}", fullName: "G" }}) {{
            accessToken
        }} }}"#
    );
    let reply = get(&app, &[("query", &mutation)]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{}", reply.body);
    assert_eq!(reply.headers.get(ALLOW).and_then(|v| v.to_str().ok()), Some("POST"));
    assert_coded(&reply.body);
    assert_no_account(&app, "get@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_invalid_variables_is_400() {
    let app = app().await;
    let query = "query($first: Int) { transactions(first: $first) { totalCount } }";
    for variables in ["{not json", "[1]", "\"first\""] {
        let reply = get(&app, &[("query", query), ("variables", variables)]).await;
        assert_rejected(&reply, StatusCode::BAD_REQUEST);
        assert_no_internals(&reply.body);
    }
    // The control: valid variables in the URL work.
    let reply = get(&app, &[("query", query), ("variables", r#"{"first":1}"#)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(error_code(&reply.body), "UNAUTHENTICATED", "the query ran: {}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_graphql_response_json_gets_that_type() {
    let app = app().await;
    let reply = post_json(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": "{ __typename }" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with(GRAPHQL_RESPONSE_JSON), "{}", reply.content_type());
    assert_eq!(reply.body["data"]["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_application_json_gets_application_json() {
    let app = app().await;
    let reply = post_json(&app, Some("application/json"), &json!({ "query": "{ __typename }" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/json"), "{}", reply.content_type());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accept_gets_application_json() {
    let app = app().await;
    let body = r#"{"query":"{ __typename }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (head, body) = raw_request(&app, &request).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("\r\naccept:"), "the request had no Accept");
    assert!(head.contains("\r\ncontent-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_q_values_pick_the_preferred_type() {
    let app = app().await;
    let query = json!({ "query": "{ __typename }" });
    let cases = [
        ("application/json;q=0.9, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0.1, application/json", "application/json"),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("text/html, */*;q=0.1", "application/json"),
    ];
    for (accept, expected) in cases {
        let reply = post_json(&app, Some(accept), &query).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept}");
        assert!(reply.content_type().starts_with(expected), "{accept}: got {}", reply.content_type());
    }
    let refused = post_json(&app, Some("application/json;q=0, text/html"), &query).await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE, "q=0 means not acceptable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_text_html_only_is_406() {
    let app = app().await;
    let reply = post_json(&app, Some("text/html"), &json!({ "query": "{ __typename }" })).await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{}", reply.body);
    assert_coded(&reply.body);
}

/// With `application/graphql-response+json`, a request that fails before execution is 400;
/// one that executes (even with field errors) is 200. With `application/json`, both are 200
/// (the GraphQL-over-HTTP spec's SHOULD, which the graphql-http audit checks). The codes say
/// whose fault it was: a document that does not parse or validate is a client bug, a variable
/// of the wrong type is bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_response_json_statuses_follow_the_spec() {
    let app = app().await;
    let variable = json!({
        "query": "query($first: Int) { transactions(first: $first) { totalCount } }",
        "variables": { "first": "ten" },
    });
    for (accept, status) in [(Some(GRAPHQL_RESPONSE_JSON), StatusCode::BAD_REQUEST), (None, StatusCode::OK)] {
        let syntax = post_json(&app, accept, &json!({ "query": "{ me { id }" })).await;
        assert_refused_as(&syntax, status, "GRAPHQL_PARSE_FAILED");
        let validation = post_json(&app, accept, &json!({ "query": "{ noSuchField }" })).await;
        assert_refused_as(&validation, status, "GRAPHQL_VALIDATION_FAILED");
        let literal =
            post_json(&app, accept, &json!({ "query": r#"{ transactions(first: "ten") { totalCount } }"# })).await;
        assert_refused_as(&literal, status, "GRAPHQL_VALIDATION_FAILED");
        let coercion = post_json(&app, accept, &variable).await;
        assert_refused_as(&coercion, status, "BAD_USER_INPUT");
        // An edge limit refuses the document the same way, with its own `reason`.
        let limited = post_json(&app, accept, &json!({ "query": nested(40) })).await;
        assert_refused_as(&limited, status, "BAD_USER_INPUT");
        assert_eq!(limited.body["errors"][0]["extensions"]["reason"], "QUERY_TOO_DEEP");
    }
    let accept = Some(GRAPHQL_RESPONSE_JSON);
    let field_error = post_json(&app, accept, &json!({ "query": "{ me { id } }" })).await;
    assert_eq!(field_error.status, StatusCode::OK, "{}", field_error.body);
    assert_coded(&field_error.body);
    assert_eq!(error_code(&field_error.body), "UNAUTHENTICATED");
    assert_eq!(field_error.body["errors"][0]["path"], json!(["me"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_json_is_400_without_debug_text() {
    let app = app().await;
    for body in ["{", "{\"query\": }", "not json at all", "{\"query\":\"{ __typename }\"} trailing"] {
        let reply = post(&app, Some("application/json"), None, body).await;
        let message = assert_rejected(&reply, StatusCode::BAD_REQUEST);
        assert!(!message.contains('\n'), "one line: {message}");
        assert_no_internals(&reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_is_not_an_object_is_400() {
    let app = app().await;
    for body in [json!("{ __typename }"), json!(42), json!(null), json!(true), json!([1, 2])] {
        let reply = post_json(&app, None, &body).await;
        assert_rejected(&reply, StatusCode::BAD_REQUEST);
        assert_no_internals(&reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_query_is_400() {
    let app = app().await;
    for body in [json!({}), json!({ "query": "" }), json!({ "variables": {} }), json!({ "query": 7 })] {
        let reply = post_json(&app, None, &body).await;
        assert_rejected(&reply, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_error_is_a_parse_failure_with_one_line_message() {
    let app = app().await;
    let reply = post_json(&app, None, &json!({ "query": "{ me { id }" })).await;
    let message = assert_refused_as(&reply, StatusCode::OK, "GRAPHQL_PARSE_FAILED");
    assert!(message.starts_with("syntax error: "), "{message}");
    assert!(!message.contains('\n'), "one line: {message:?}");
    assert_no_internals(&reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_with_a_graphql_error() {
    let app = app_with(&[("FINQL_MAX_BODY_BYTES", "2048")]).await;
    let small = post_json(&app, None, &json!({ "query": "{ __typename }" })).await;
    assert_eq!(small.status, StatusCode::OK, "a body under the limit is served: {}", small.body);
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(4096) } });
    let reply = post_json(&app, None, &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.body);
    assert!(reply.content_type().contains("json"), "{}", reply.content_type());
    assert_coded(&reply.body);
    assert!(reply.body["errors"][0]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_of_two_gets_two_responses() {
    let app = app().await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ me { id } }" }]);
    let reply = post_json(&app, None, &batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let responses = reply.body.as_array().expect("an array of responses");
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["data"]["__typename"], "Query");
    assert_eq!(error_code(&responses[1]), "UNAUTHENTICATED");
    assert_coded(&reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_above_the_limit_is_400() {
    let app = app_with(&[("FINQL_MAX_BATCH", "2")]).await;
    let two = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    assert_eq!(post_json(&app, None, &two).await.status, StatusCode::OK, "a batch at the limit is served");
    let three = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    assert_rejected(&post_json(&app, None, &three).await, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_disabled_rejects_any_array() {
    let app = app_with(&[("FINQL_MAX_BATCH", "0")]).await;
    let one = json!([{ "query": "{ __typename }" }]);
    assert_rejected(&post_json(&app, None, &one).await, StatusCode::BAD_REQUEST);
    let single = post_json(&app, None, &json!({ "query": "{ __typename }" })).await;
    assert_eq!(single.status, StatusCode::OK, "single requests still work: {}", single.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_batch_is_400() {
    let app = app().await;
    assert_rejected(&post_json(&app, None, &json!([])).await, StatusCode::BAD_REQUEST);
}

/// The first error's `extensions.reason`, after checking the request was refused as a whole.
async fn limit_reason(app: &TestApp, query: &str) -> String {
    let reply = post_json(app, None, &json!({ "query": query })).await;
    // A GraphQL request error: 200 under `application/json`.
    assert_rejected(&reply, StatusCode::OK);
    reply.body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {}", reply.body))
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_deep_query_is_rejected() {
    let app = app_with(&[("FINQL_MAX_DEPTH", "3")]).await;
    let reason = limit_reason(&app, "{ __schema { types { fields { type { ofType { name } } } } } }").await;
    assert_eq!(reason, "QUERY_TOO_DEEP");
    let shallow = app.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(shallow["data"]["__schema"]["queryType"]["name"], "Query", "depth 3 is allowed: {shallow}");
}

/// `{ me { me { ... } } }`, `levels` deep: valid syntax, invalid schema, and far too deep.
fn nested(levels: usize) -> String {
    format!("{}{}", "{ me ".repeat(levels), "}".repeat(levels))
}

/// Nesting beyond async-graphql's recursion limit (32) is reported as too deep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_past_the_recursion_limit_is_too_deep() {
    let app = app().await;
    assert_eq!(limit_reason(&app, &nested(40)).await, "QUERY_TOO_DEEP");
}

/// Past the parser's own nesting limit (64 selection sets), the parser fails first and the
/// guard reports a "syntax error: invalid syntax" with no `reason`, though the syntax is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_past_the_parser_limit_is_too_deep() {
    let app = app().await;
    assert_eq!(limit_reason(&app, &nested(100)).await, "QUERY_TOO_DEEP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurdly_deep_document_is_refused_without_crashing() {
    let app = app().await;
    let reply = post_json(&app, None, &json!({ "query": nested(5000) })).await;
    assert_rejected(&reply, StatusCode::OK);
    assert_no_internals(&reply.body);
    let health = app.client.get(app.url("/health")).send().await.expect("the server is still up");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_complex_query_is_rejected() {
    let app = app_with(&[("FINQL_MAX_COMPLEXITY", "5")]).await;
    let reason =
        limit_reason(&app, "{ me { id email fullName createdAt } transactions { totalCount nodes { id amount } } }")
            .await;
    assert_eq!(reason, "QUERY_TOO_COMPLEX");
    // A query within the limit executes (and fails only for want of a token).
    let simple = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&simple), "UNAUTHENTICATED", "{simple}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_aliases_are_rejected() {
    let app = app_with(&[("FINQL_MAX_ALIASES", "3")]).await;
    let reason = limit_reason(&app, "{ a: __typename b: __typename c: __typename d: __typename }").await;
    assert_eq!(reason, "TOO_MANY_ALIASES");
    let three = app.data(None, "{ a: __typename b: __typename c: __typename }", json!({})).await;
    assert_eq!(three, json!({ "a": "Query", "b": "Query", "c": "Query" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_does_not_reveal_the_schema() {
    let app = production_app().await;
    for query in
        ["{ __schema { queryType { name } types { name } } }", r#"{ __type(name: "Query") { fields { name } } }"#]
    {
        let reply = post_json(&app, None, &json!({ "query": query })).await;
        assert_coded(&reply.body);
        let text = reply.body.to_string();
        for leak in ["\"Query\"", "\"User\"", "transactions", "\"me\""] {
            assert!(!text.contains(leak), "introspection leaks {leak} in production: {text}");
        }
    }
    let typename = app.data(None, "{ __typename }", json!({})).await;
    assert_eq!(typename["__typename"], "Query", "`__typename` is not introspection and still works");
}

/// async-graphql's `disable_introspection()` makes `__schema` resolve to `null` with no error
/// (a non-null field, `__Schema!`, silently null): the client is not told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_rejects_introspection_with_an_error() {
    let app = production_app().await;
    let reply = post_json(&app, None, &json!({ "query": "{ __schema { queryType { name } } }" })).await;
    assert_coded(&reply.body);
    assert!(reply.body["errors"].as_array().is_some_and(|e| !e.is_empty()), "introspection must fail: {}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_disables_field_suggestions() {
    let app = production_app().await;
    for query in ["{ mee { id } }", "{ transactionz { totalCount } }"] {
        let reply = post_json(&app, None, &json!({ "query": query })).await;
        let message = assert_refused_as(&reply, StatusCode::OK, "GRAPHQL_VALIDATION_FAILED");
        assert!(!message.contains("Did you mean"), "no suggestions in production: {message}");
        assert!(!reply.body.to_string().contains("\"transactions\""), "{}", reply.body);
    }
}

/// The control for `production_disables_field_suggestions`: the same typo gets a suggestion in
/// development. (async-graphql suggests only close names: `mee` is too short to get `me`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_suggests_fields() {
    let app = app().await;
    let reply = post_json(&app, None, &json!({ "query": "{ transactionz { totalCount } }" })).await;
    let message = assert_refused_as(&reply, StatusCode::OK, "GRAPHQL_VALIDATION_FAILED");
    assert!(message.contains("Did you mean"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_has_no_graphiql() {
    let app = production_app().await;
    for path in ["/graphiql", "/"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_serves_graphiql_and_redirects_root() {
    let app = app().await;
    let response = app.client.get(app.url("/graphiql")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(response.text().await.unwrap().to_ascii_lowercase().contains("<html"));

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(app.url("/")).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/graphiql"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_ok() {
    let app = app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "status": "ok" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_ok_with_a_database() {
    let app = app().await;
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_json() {
    let app = app().await;
    let reply = reply(app.client.get(app.url("/no/such/route")).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.content_type().starts_with("application/json"), "{}", reply.content_type());
    assert_coded(&reply.body);
    assert_eq!(error_code(&reply.body), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_over_post_is_400() {
    let app = app().await;
    let reply = post_json(&app, None, &json!({ "query": "subscription { x }" })).await;
    assert_rejected(&reply, StatusCode::BAD_REQUEST);
    let reply = post_json(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": "subscription { x }" })).await;
    assert_rejected(&reply, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_stops_accepting_connections() {
    let app = app().await;
    let addr = app.addr;
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), StatusCode::OK);
    app.shutdown().await.expect("the server stops cleanly");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "{addr} still accepts connections");
}

/// graphql-js's `getIntrospectionQuery()` (all options on), as GraphiQL and code generators
/// send it: its deepest path is 15 levels. The default limits must let it through.
const FULL_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_introspection_query_passes_the_default_limits() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let data = app.data(None, FULL_INTROSPECTION, serde_json::json!({})).await;
    let types = data["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "Transaction"), "the schema describes Transaction");
}
