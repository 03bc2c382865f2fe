//! Query bombs: documents that are small to send and huge to execute or to parse, replayed over
//! every transport. Each must be refused before execution, with `BAD_USER_INPUT` and a
//! `reason`, within 50 ms; the server must keep serving. Also here: one authentication
//! mutation per request, the request deadline against a silent upstream, and methods GraphQL
//! does not use.
//!
//! Transport behaviour does not depend on the database, so these run on SQLite, except the
//! sign-up flood, which checks that no account was written.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header::ALLOW};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
    sources::itick::fake_rest::{FakeItick, TOKEN},
};

/// The issue's bound on refusing a bomb. Measured from the client around the whole HTTP (or
/// WebSocket) exchange, on a debug build sharing its cores with other tests: the best of
/// `TRIES`, so one scheduling hiccup does not fail the test while a slow guard still does.
const REFUSAL_BOUND: Duration = Duration::from_millis(50);
const TRIES: usize = 3;

/// The sizes of the doubling bomb replayed: just past the default field limit, the size that
/// took 1.4 s and 794 MB, and one that no server could expand.
const BOMB_LEVELS: [usize; 3] = [10, 22, 30];

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// `levels` fragments, each spreading the next twice: `2^levels` `__typename`s once expanded.
fn bomb(levels: usize) -> String {
    let mut doc = String::from("{ ...F0 }");
    for level in 0..levels {
        let next = level + 1;
        doc.push_str(&format!(" fragment F{level} on Query {{ ...F{next} ...F{next} }}"));
    }
    doc.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
    doc
}

/// `levels` fragments, each spreading the next once.
fn chain(levels: usize) -> String {
    let mut doc = String::from("{ ...F0 }");
    for level in 0..levels {
        doc.push_str(&format!(" fragment F{level} on Query {{ ...F{} }}", level + 1));
    }
    doc.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
    doc
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"].as_str().unwrap_or_else(|| panic!("no reason in {body}"))
}

/// A refusal before execution: `BAD_USER_INPUT`, `reason`, and no `data` at all; 200, as every
/// GraphQL request error under `application/json` (GraphQL-over-HTTP; 400 under
/// `application/graphql-response+json`, see `http::graphql_response_json_statuses_follow_the_spec`).
fn assert_refused(status: u16, body: &Value, expected_reason: &str) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(reason(body), expected_reason, "{body}");
    assert!(body.get("data").is_none(), "nothing executed: {body}");
}

/// Runs `attempt` `TRIES` times: the fastest time and the last answer.
async fn best_of<F, Fut, T>(mut attempt: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..TRIES {
        let started = Instant::now();
        let answer = attempt().await;
        best = best.min(started.elapsed());
        last = Some(answer);
    }
    (best, last.expect("TRIES > 0"))
}

async fn post(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app.client.post(app.url("/graphql")).json(body).send().await.expect("request");
    (response.status().as_u16(), response.json().await.expect("JSON body"))
}

/// POSTs `{"query": query}`, serialised before the clock starts (a large body takes the client
/// longer to serialise than the server to refuse).
fn json_body(query: &str) -> bytes::Bytes {
    serde_json::to_vec(&json!({ "query": query })).expect("serialisable").into()
}

async fn post_body(app: &TestApp, body: &bytes::Bytes) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.json().await.expect("JSON body"))
}

async fn get(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app.client.get(app.url("/graphql")).query(&[("query", query)]).send().await.expect("request");
    (response.status().as_u16(), response.json().await.expect("JSON body"))
}

/// The answer to one `subscribe` on a fresh connection, timed from the `subscribe`.
async fn over_websocket(app: &TestApp, query: &str) -> (Duration, Value) {
    let mut ws = Ws::connect(app, TRANSPORT_WS).await;
    ws.init(None).await;
    let started = Instant::now();
    ws.subscribe("1", query).await;
    let message = ws.next_json().await;
    (started.elapsed(), message)
}

async fn still_serving(app: &TestApp) {
    let data = app.data(None, "{ __typename }", json!({})).await;
    assert_eq!(data["__typename"], "Query");
}

/// The bombs over POST, GET and WebSocket, refused with a code in time, every time (a refused
/// document is not cached: the second and third tries are refused again, not served).
async fn bombs_are_refused_over_every_transport(app: &TestApp) {
    for levels in BOMB_LEVELS {
        let query = bomb(levels);
        let query_body = json_body(&query);
        let (elapsed, (status, body)) = best_of(|| post_body(app, &query_body)).await;
        assert_refused(status, &body, "TOO_MANY_FIELDS");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("(limit 1000)"), "{body}");
        assert!(elapsed < REFUSAL_BOUND, "POST, {levels} levels: refused in {elapsed:?}");

        let (elapsed, (status, body)) = best_of(|| get(app, &query)).await;
        assert_refused(status, &body, "TOO_MANY_FIELDS");
        assert!(elapsed < REFUSAL_BOUND, "GET, {levels} levels: refused in {elapsed:?}");

        let mut elapsed = Duration::MAX;
        let mut message = Value::Null;
        for _ in 0..TRIES {
            let (took, answer) = over_websocket(app, &query).await;
            elapsed = elapsed.min(took);
            message = answer;
        }
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{message}");
        assert_eq!(message["payload"][0]["extensions"]["reason"], "TOO_MANY_FIELDS", "{message}");
        assert!(elapsed < REFUSAL_BOUND, "WebSocket, {levels} levels: refused in {elapsed:?}");
    }
    still_serving(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bombs_are_refused_quickly_over_post_get_and_websocket() {
    let app = app_with(&[]).await;
    bombs_are_refused_over_every_transport(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bombs_are_refused_in_production_too() {
    let app = app_with(&[("FINQL_ENV", "production")]).await;
    bombs_are_refused_over_every_transport(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_inside_a_batch_refuses_the_whole_batch() {
    let app = app_with(&[]).await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": bomb(22) }]);
    let (status, body) = post(&app, &batch).await;
    assert_refused(status, &body, "TOO_MANY_FIELDS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bomb_within_the_limits_executes() {
    let app = app_with(&[]).await;
    // 2^9 = 512 fields: under the limit, and cheap; the fields merge into one.
    let data = app.data(None, &bomb(9), json!({})).await;
    assert_eq!(data, json!({ "__typename": "Query" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_flat_documents_are_refused_by_tokens_or_fields() {
    let app = app_with(&[("FINQL_MAX_BODY_BYTES", "2000000")]).await;
    let wide = format!("{{ {} }}", "__typename ".repeat(50_000));
    let wide_body = json_body(&wide);
    let (elapsed, (status, body)) = best_of(|| post_body(&app, &wide_body)).await;
    assert_refused(status, &body, "TOO_MANY_TOKENS");
    assert!(elapsed < REFUSAL_BOUND, "refused in {elapsed:?}");
    // Under the token limit, the field limit still holds.
    let (status, body) = post(&app, &json!({ "query": format!("{{ {} }}", "__typename ".repeat(1500)) })).await;
    assert_refused(status, &body, "TOO_MANY_FIELDS");
    assert_eq!(body["errors"][0]["message"], "query selects 1500 fields once its fragments are expanded (limit 1000)");
    still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_of_200k_tokens_is_refused_before_parsing() {
    let app = app_with(&[("FINQL_MAX_BODY_BYTES", "1000000")]).await;
    let huge = format!("{{ {} }}", "a ".repeat(200_000));
    assert!(huge.len() < 1_000_000, "under the body limit");
    let huge_body = json_body(&huge);
    let (elapsed, (status, body)) = best_of(|| post_body(&app, &huge_body)).await;
    assert_refused(status, &body, "TOO_MANY_TOKENS");
    assert_eq!(body["errors"][0]["message"], "query has more than 10000 tokens (names, values and punctuation)");
    assert!(elapsed < REFUSAL_BOUND, "refused in {elapsed:?}");
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.subscribe("1", &huge).await;
    let message = ws.next_json().await;
    assert_eq!(message["payload"][0]["extensions"]["reason"], "TOO_MANY_TOKENS", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_inside_a_doubled_fragment_count_twice() {
    let app = app_with(&[]).await;
    let aliases: String = (0..20).map(|i| format!("a{i}: __typename ")).collect();
    let fragment = format!("fragment F on Query {{ {aliases} }}");
    let (status, body) = post(&app, &json!({ "query": format!("{{ ...F ...F }} {fragment}") })).await;
    assert_refused(status, &body, "TOO_MANY_ALIASES");
    assert_eq!(body["errors"][0]["message"], "query uses 40 aliases (limit 30)");
    let once = app.data(None, &format!("{{ ...F }} {fragment}"), json!({})).await;
    assert_eq!(once.as_object().map(|fields| fields.len()), Some(20), "{once}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_is_measured_through_spreads() {
    let app = app_with(&[]).await;
    // `ofType` 20 times, one per fragment: no selection set is deeper than 2 in the text.
    let mut query = String::from(r#"{ __type(name: "Query") { ...T0 } }"#);
    for level in 0..20 {
        query.push_str(&format!(" fragment T{level} on __Type {{ ofType {{ ...T{} }} }}", level + 1));
    }
    query.push_str(" fragment T20 on __Type { name }");
    let (status, body) = post(&app, &json!({ "query": query })).await;
    assert_refused(status, &body, "QUERY_TOO_DEEP");
    assert_eq!(body["errors"][0]["message"], "query is nested too deep (limit 16)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_spread_chains_are_refused_without_overflowing_the_stack() {
    // A chain within the nesting limit executes.
    let app = app_with(&[("FINQL_MAX_TOKENS", "200000"), ("FINQL_MAX_BODY_BYTES", "2000000")]).await;
    let data = app.data(None, &chain(30), json!({})).await;
    assert_eq!(data, json!({ "__typename": "Query" }));
    // 10,000 fragments deep: flat text the parser accepts, too deep once expanded.
    let deep = chain(10_000);
    let deep_body = json_body(&deep);
    let (elapsed, (status, body)) = best_of(|| post_body(&app, &deep_body)).await;
    assert_refused(status, &body, "QUERY_TOO_DEEP");
    assert_eq!(body["errors"][0]["message"], "selections nest 10001 levels deep through fragments (limit 32)");
    // Generous: this one is parsed (the token limit is raised for it), 10,000 fragments.
    assert!(elapsed < Duration::from_secs(2), "refused in {elapsed:?}");
    still_serving(&app).await;
    // With the default limits the same text never reaches the parser.
    let app = app_with(&[("FINQL_MAX_BODY_BYTES", "2000000")]).await;
    let (status, body) = post(&app, &json!({ "query": chain(10_000) })).await;
    assert_refused(status, &body, "TOO_MANY_TOKENS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_cycles_are_refused() {
    let app = app_with(&[]).await;
    let cycle = "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...C } \
                 fragment C on Query { ...A }";
    let cycle_body = json_body(cycle);
    let (elapsed, (status, body)) = best_of(|| post_body(&app, &cycle_body)).await;
    assert_refused(status, &body, "FRAGMENT_CYCLE");
    assert!(elapsed < REFUSAL_BOUND, "refused in {elapsed:?}");
    let (_, message) = over_websocket(&app, "{ ...A } fragment A on Query { ...A }").await;
    assert_eq!(message["payload"][0]["extensions"]["reason"], "FRAGMENT_CYCLE", "{message}");
}

const LOGIN: &str = r#"login(email: "victim@example.com", password: "guess") { accessToken }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_per_request_whether_aliased_batched_or_in_fragments() {
    let app = app_with(&[]).await;
    let aliased: String = (0..30).map(|i| format!("g{i}: {LOGIN} ")).collect();
    let (status, body) = post(&app, &json!({ "query": format!("mutation {{ {aliased} }}") })).await;
    assert_refused(status, &body, "TOO_MANY_AUTH_OPERATIONS");
    assert_eq!(
        body["errors"][0]["message"],
        "a request may hold one `login`, `signUp` or `refreshToken` mutation, not 30"
    );
    // A batch of ten requests of one login each: 10 guesses in one request.
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": format!("mutation {{ {LOGIN} }}") })).collect();
    let (status, body) = post(&app, &Value::Array(batch)).await;
    assert_refused(status, &body, "TOO_MANY_AUTH_OPERATIONS");
    // Through a fragment, and mixed with refreshToken.
    let fragment = format!(
        "mutation {{ ...Guess refreshToken(token: \"t\") {{ accessToken }} }} fragment Guess on Mutation {{ {LOGIN} }}"
    );
    let (status, body) = post(&app, &json!({ "query": fragment })).await;
    assert_refused(status, &body, "TOO_MANY_AUTH_OPERATIONS");
    // Over WebSocket, per document.
    let (_, message) = over_websocket(&app, &format!("mutation {{ a: {LOGIN} b: {LOGIN} }}")).await;
    assert_eq!(message["payload"][0]["extensions"]["reason"], "TOO_MANY_AUTH_OPERATIONS", "{message}");
    // One login, alone or beside other operations, is an ordinary (failed) login.
    let batch = json!([{ "query": format!("mutation {{ {LOGIN} }}") }, { "query": "{ __typename }" }]);
    let (status, body) = post(&app, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body[0]), "UNAUTHENTICATED", "{body}");
    assert_eq!(body[1]["data"]["__typename"], "Query", "{body}");
}

async fn aliased_sign_ups_create_no_account(app: TestApp) {
    let emails: Vec<String> =
        (0..30).map(|i| format!("flood-{i}-{}@example.com", uuid::Uuid::new_v4().simple())).collect();
    let sign_ups: String = emails
        .iter()
        .enumerate()
        .map(|(i, email)| {
            format!(
                r#"s{i}: signUp(input: {{email: "{email}", password: "{PASSWORD}", fullName: "Flood"}}) {{ accessToken }} "#
            )
        })
        .collect();
    let (status, body) = post(&app, &json!({ "query": format!("mutation {{ {sign_ups} }}") })).await;
    assert_refused(status, &body, "TOO_MANY_AUTH_OPERATIONS");
    for email in &emails {
        assert_no_account(&app, email).await;
    }
    // One sign-up per request still works.
    let user = app.new_user().await;
    assert!(!user.access_token.is_empty());
}

crate::backend_tests!(aliased_sign_ups_create_no_account);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_graphql_does_not_use_answer_405_with_a_json_body() {
    let app = app_with(&[]).await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = app
            .client
            .request(method.clone(), app.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.headers().get(ALLOW).and_then(|v| v.to_str().ok()), Some("GET, POST"), "{method}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{method}: {body}");
    }
    for (method, path) in [(reqwest::Method::POST, "/health"), (reqwest::Method::DELETE, "/ready")] {
        let response = app.client.request(method.clone(), app.url(path)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let allow = response.headers().get(ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(allow.contains("GET") && !allow.contains(method.as_str()), "{method} {path}: Allow {allow}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{method} {path}: {body}");
    }
}

/// The request deadline against an upstream that accepts the request and never answers, with
/// an upstream timeout far longer than the deadline: the deadline alone ends the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_ends_requests_waiting_on_a_silent_upstream() {
    let fake = FakeItick::start().await;
    fake.set_delay(Duration::from_secs(3600));
    let base = fake.base_url();
    let app = app_with(&[
        ("FINQL_MARKET_SOURCE", "itick"),
        ("ITICK_BASE_URL", base.as_str()),
        ("ITICK_TOKEN", TOKEN),
        ("ITICK_TIMEOUT_MS", "600000"),
        ("FINQL_REQUEST_TIMEOUT_MS", "300"),
    ])
    .await;
    let deadline = Duration::from_millis(300);
    // A bound far from the deadline, for a loaded machine; the point is "not the upstream's
    // ten minutes" (ITICK_TIMEOUT_MS).
    let late = Duration::from_secs(15);
    let quotes = r#"{ quotes(symbols: ["AAPL.US"]) { last } }"#;

    let started = Instant::now();
    let (status, body) = post(&app, &json!({ "query": quotes })).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert_eq!(error_code(&body), "TIMEOUT", "{body}");
    assert_eq!(body["errors"][0]["message"], "request exceeded its time limit of 300 ms");
    assert!(body.get("data").is_none(), "{body}");
    assert!(elapsed >= deadline && elapsed < late, "answered after {elapsed:?}");
    assert!(fake.calls("/stock/quotes") + fake.calls("/stock/quote") >= 1, "the upstream was asked");

    let started = Instant::now();
    let (status, body) = get(&app, quotes).await;
    assert_eq!((status, error_code(&body)), (504, "TIMEOUT"), "{body}");
    assert!(started.elapsed() < late);

    // A batch shares one deadline: what finished keeps its result.
    let started = Instant::now();
    let (status, body) = post(&app, &json!([{ "query": quotes }, { "query": "{ __typename }" }])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body[0]), "TIMEOUT", "{body}");
    assert_eq!(body[1]["data"]["__typename"], "Query", "{body}");
    assert!(started.elapsed() < late);

    let (elapsed, message) = over_websocket(&app, quotes).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "TIMEOUT", "{message}");
    assert!(elapsed >= deadline && elapsed < late, "answered after {elapsed:?}");
    still_serving(&app).await;
}

/// Subscriptions are meant to last: the deadline does not end them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_outlive_the_deadline() {
    let app = app_with(&[("FINQL_REQUEST_TIMEOUT_MS", "1000"), ("FINQL_SIM_TICKS_PER_SEC", "10")]).await;
    let user = app.new_user().await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    let started = Instant::now();
    ws.subscribe("live", r#"subscription { quotes(symbols: ["CRYPTO:BTCUSDT"]) { symbol last } }"#).await;
    // The simulated market moves once a second and only changes are pushed: on a loaded
    // machine a second can pass without one, so watch well past the deadline and stop at the
    // first update after it.
    let watch = Duration::from_millis(6000);
    let mut after_deadline = 0;
    while let Some(remaining) = watch.checked_sub(started.elapsed())
        && after_deadline == 0
    {
        let Ok(frame) = tokio::time::timeout(remaining, ws.next_json()).await else { break };
        match frame["type"].as_str() {
            Some("ping") => continue,
            Some("next") => assert_eq!(frame["payload"]["data"]["quotes"]["symbol"], "CRYPTO:BTCUSDT", "{frame}"),
            _ => panic!("the subscription ended: {frame}"),
        }
        if started.elapsed() > Duration::from_millis(1100) {
            after_deadline += 1;
        }
    }
    assert!(after_deadline > 0, "updates keep coming after the 1000 ms deadline");
}
