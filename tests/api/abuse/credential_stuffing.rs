//! Credential stuffing and sign-up floods, replayed: many guesses for one account, guesses
//! spread over many accounts from one address, concurrent guesses, guesses split across two
//! replicas, a Redis that goes away, and forged `X-Forwarded-For`.
//!
//! Each test sets its own limits (the suite's default switches the per-address rates off), and
//! counts what reached the password check by the answers: `UNAUTHENTICATED` was checked,
//! `RATE_LIMITED` was refused before.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    helpers::process::FinqlProcess,
    helpers::{Backend, PASSWORD, TestApp, error_code, spawn_app, untraced},
    live::replicas::fakes::RedisProxy,
};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }";

/// A test on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
                    super::$name(crate::helpers::Backend::Postgres).await;
                } else {
                    eprintln!("skipped: TEST_DATABASE_URL is not set");
                }
            }
        }
    )+};
}

on_both_backends!(
    wrong_passwords_are_throttled_after_the_free_ones_alike_for_unknown_emails,
    the_right_password_waits_out_the_delay_and_then_clears_it,
    concurrent_guesses_do_not_slip_past_the_count,
    one_address_is_capped_across_many_accounts,
    sign_ups_are_capped_per_address,
    forwarded_for_counts_only_from_a_trusted_proxy,
);

async fn app(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(backend, overrides).await.expect("backend available")
}

/// A client whose connections come from `source` (any 127.0.0.0/8 address works on loopback).
fn client_from(source: &str) -> reqwest::Client {
    let source: IpAddr = source.parse().unwrap();
    reqwest::Client::builder().local_address(source).timeout(Duration::from_secs(30)).build().unwrap()
}

async fn post(app: &TestApp, client: &reqwest::Client, query: &str, variables: Value, xff: Option<&str>) -> Value {
    let mut request = client.post(app.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("the server answers").json().await.expect("a JSON body")
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, LOGIN, json!({ "e": email, "p": password })).await
}

async fn sign_up(app: &TestApp, client: &reqwest::Client, email: &str, xff: Option<&str>) -> Value {
    post(app, client, SIGN_UP, json!({ "i": { "email": email, "password": PASSWORD, "fullName": "M" } }), xff).await
}

fn unique_email() -> String {
    format!("victim-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn retry_after(body: &Value) -> u64 {
    body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap_or_else(|| panic!("no retryAfter in {body}"))
}

/// Counts the answers by code.
fn tally<'a>(bodies: impl IntoIterator<Item = &'a Value>) -> (usize, usize) {
    let (mut checked, mut limited) = (0, 0);
    for body in bodies {
        match error_code(body) {
            "UNAUTHENTICATED" => checked += 1,
            "RATE_LIMITED" => limited += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (checked, limited)
}

/// 200 wrong passwords for one account (the reported attack): 5 reach the password check, the
/// other 195 are refused before it, quickly, with `retryAfter`; and an email with no account
/// gets the very same answers, so throttling tells nothing about who has an account.
async fn wrong_passwords_are_throttled_after_the_free_ones_alike_for_unknown_emails(backend: Backend) {
    let app = app(backend, &[("FINQL_LOGIN_FREE_FAILURES", "5"), ("FINQL_LOGIN_BACKOFF_BASE_MS", "60000")]).await;
    let victim = app.new_user().await;
    let unknown = unique_email();
    let (mut known_bodies, mut unknown_bodies) = (Vec::new(), Vec::new());
    let (mut checked_time, mut limited_time) = (Duration::ZERO, Duration::ZERO);
    for i in 0..200 {
        let started = Instant::now();
        let known = login(&app, &victim.email, &format!("guess {i}")).await;
        if i < 5 {
            checked_time += started.elapsed()
        } else {
            limited_time += started.elapsed()
        }
        known_bodies.push(known);
        unknown_bodies.push(login(&app, &unknown, &format!("guess {i}")).await);
    }
    assert_eq!(tally(&known_bodies), (5, 195));
    assert!(known_bodies[..5].iter().all(|b| error_code(b) == "UNAUTHENTICATED"), "the free ones come first");
    for body in &known_bodies[5..] {
        let wait = retry_after(body);
        assert!((1..=60).contains(&wait), "retryAfter {wait} within the 60 s delay: {body}");
    }
    // Identical for the unknown email, but for the seconds left to wait (and the trace id,
    // each request's own).
    let timeless = |body: &Value| {
        let mut body = untraced(body.clone());
        if let Some(ext) = body["errors"][0]["extensions"].as_object_mut() {
            ext.remove("retryAfter");
        }
        body["errors"][0]["message"] =
            json!(body["errors"][0]["message"].as_str().map(|m| m.replace(char::is_numeric, "")));
        body
    };
    for (known, unknown) in known_bodies.iter().zip(&unknown_bodies) {
        assert_eq!(timeless(known), timeless(unknown));
    }
    // A refused attempt costs no password hash: far cheaper than a checked one.
    let (checked_avg, limited_avg) = (checked_time / 5, limited_time / 195);
    assert!(limited_avg * 3 < checked_avg, "refused {limited_avg:?} vs checked {checked_avg:?} per attempt");
}

/// During the delay even the right password is refused (the password is not even checked);
/// once it is over, the right password works and clears the count.
async fn the_right_password_waits_out_the_delay_and_then_clears_it(backend: Backend) {
    let app = app(backend, &[("FINQL_LOGIN_FREE_FAILURES", "3"), ("FINQL_LOGIN_BACKOFF_BASE_MS", "1000")]).await;
    let user = app.new_user().await;
    for _ in 0..3 {
        assert_eq!(error_code(&login(&app, &user.email, "wrong password").await), "UNAUTHENTICATED");
    }
    let refused = login(&app, &user.email, PASSWORD).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(retry_after(&refused), 1);
    assert!(refused["data"].is_null());
    // Real time: the 1 s delay is the behaviour under test, and trying early would extend it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let accepted = login(&app, &user.email, PASSWORD).await;
    assert!(accepted["data"]["login"]["accessToken"].is_string(), "{accepted}");
    // The success cleared the count: three free attempts again.
    for _ in 0..3 {
        assert_eq!(error_code(&login(&app, &user.email, "wrong password").await), "UNAUTHENTICATED");
    }
    assert_eq!(error_code(&login(&app, &user.email, "wrong password").await), "RATE_LIMITED");
}

/// 50 guesses for one account at once (what "one login per request" cannot stop): the count
/// is taken before the password check, so no more than the free attempts reach it.
async fn concurrent_guesses_do_not_slip_past_the_count(backend: Backend) {
    let app = app(backend, &[("FINQL_LOGIN_FREE_FAILURES", "5"), ("FINQL_LOGIN_BACKOFF_BASE_MS", "60000")]).await;
    let victim = app.new_user().await;
    let guesses = (0..50).map(|i| {
        let (app, email) = (&app, victim.email.clone());
        async move { login(app, &email, &format!("guess {i}")).await }
    });
    let bodies = futures::future::join_all(guesses).await;
    let (checked, limited) = tally(&bodies);
    assert_eq!((checked, limited), (5, 45), "exactly the free attempts reached the password check");
}

/// One address guessing one password each for many accounts (no account ever fails twice):
/// the address rate stops it, and another address is unaffected.
async fn one_address_is_capped_across_many_accounts(backend: Backend) {
    // One login a minute after the burst: the 40 attempts (each an Argon2 check) end well
    // within the minute even on a loaded machine, so no refill lands among them.
    let app = app(backend, &[("FINQL_LOGIN_PER_ADDR_PER_MIN", "1"), ("FINQL_LOGIN_PER_ADDR_BURST", "10")]).await;
    let attacker = client_from("127.0.0.1");
    let mut bodies = Vec::new();
    for _ in 0..40 {
        bodies.push(post(&app, &attacker, LOGIN, json!({ "e": unique_email(), "p": "Summer2024!" }), None).await);
    }
    assert_eq!(tally(&bodies), (10, 30), "the burst, then nothing within the same minute");
    let refused = bodies.last().unwrap();
    assert!((1..=60).contains(&retry_after(refused)), "one login a minute: {refused}");
    let neighbour = client_from("127.0.0.2");
    let body = post(&app, &neighbour, LOGIN, json!({ "e": unique_email(), "p": "x" }), None).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "another address has its own allowance: {body}");
}

/// 30 sign-ups from one address (the reported flood made 30 accounts in 0.5 s): 5 accounts,
/// then `RATE_LIMITED` for the rest of the hour, also for an email that exists (so "already
/// exists" can be learned only at that rate).
async fn sign_ups_are_capped_per_address(backend: Backend) {
    let app = app(backend, &[("FINQL_SIGNUP_PER_ADDR_PER_HOUR", "5"), ("FINQL_SIGNUP_PER_ADDR_BURST", "5")]).await;
    let flooder = client_from("127.0.0.1");
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..30 {
        let email = unique_email();
        let body = sign_up(&app, &flooder, &email, None).await;
        if body["data"]["signUp"]["accessToken"].is_string() {
            created.push(email);
        } else {
            assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
            assert!((700..=720).contains(&retry_after(&body)), "5 an hour: one every 12 minutes: {body}");
            refused.push(body);
        }
    }
    assert_eq!((created.len(), refused.len()), (5, 25));
    let existing = sign_up(&app, &flooder, &created[0], None).await;
    assert_eq!(error_code(&existing), "RATE_LIMITED", "{existing}");
    assert_eq!(user_count(&app).await, 5, "a refused sign-up creates nothing");
    let other = sign_up(&app, &client_from("127.0.0.2"), &unique_email(), None).await;
    assert!(other["data"]["signUp"]["accessToken"].is_string(), "another address may still sign up: {other}");
}

async fn user_count(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::user::Entity::find().count(&app.state.db).await.expect("count users")
}

/// Behind a trusted proxy, the client is the right-most untrusted `X-Forwarded-For` entry
/// (what the client itself wrote at the start is ignored); from any other peer the header is
/// ignored, so forging it buys no fresh allowance.
async fn forwarded_for_counts_only_from_a_trusted_proxy(backend: Backend) {
    let app = app(
        backend,
        &[
            ("FINQL_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("FINQL_SIGNUP_PER_ADDR_PER_HOUR", "1"),
            ("FINQL_SIGNUP_PER_ADDR_BURST", "1"),
        ],
    )
    .await;
    let proxy = client_from("127.0.0.1");
    let created = |body: &Value| body["data"]["signUp"]["accessToken"].is_string();
    let first = sign_up(&app, &proxy, &unique_email(), Some("203.0.113.1")).await;
    assert!(created(&first), "{first}");
    // The same client again, with a forged address prepended: the proxy's entry counts.
    let again = sign_up(&app, &proxy, &unique_email(), Some("198.51.100.77, 203.0.113.1")).await;
    assert_eq!(error_code(&again), "RATE_LIMITED", "{again}");
    let second_client = sign_up(&app, &proxy, &unique_email(), Some("203.0.113.2")).await;
    assert!(created(&second_client), "another client behind the proxy: {second_client}");
    // An untrusted peer forging the header: counted as itself every time.
    let direct = client_from("127.0.0.3");
    assert!(created(&sign_up(&app, &direct, &unique_email(), Some("203.0.113.3")).await));
    let forged = sign_up(&app, &direct, &unique_email(), Some("203.0.113.4")).await;
    assert_eq!(error_code(&forged), "RATE_LIMITED", "a forged header from an untrusted peer is ignored: {forged}");
}

/// Two replicas on one Redis (`TEST_REDIS_URL`): failures on one throttle the account on the
/// other, and concurrent guesses split across both still stop at the free attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_shared_by_replicas_through_redis() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("FINQL_LOGIN_FREE_FAILURES", "5"),
        ("FINQL_LOGIN_BACKOFF_BASE_MS", "60000"),
        ("FINQL_SIGNUP_PER_ADDR_PER_HOUR", "4"),
        ("FINQL_SIGNUP_PER_ADDR_BURST", "4"),
    ];
    let a = app(Backend::Sqlite, &vars).await;
    let b = app(Backend::Sqlite, &vars).await;
    let email = unique_email();
    for _ in 0..5 {
        assert_eq!(error_code(&login(&a, &email, "guess").await), "UNAUTHENTICATED");
    }
    let on_b = login(&b, &email, "guess").await;
    assert_eq!(error_code(&on_b), "RATE_LIMITED", "failures on A throttle B: {on_b}");
    assert!(retry_after(&on_b) > 50, "{on_b}");

    // 60 guesses at once for a fresh account, alternating replicas.
    let email = unique_email();
    let guesses = (0..60).map(|i| {
        let (server, email) = (if i % 2 == 0 { &a } else { &b }, email.clone());
        async move { login(server, &email, "guess").await }
    });
    let bodies = futures::future::join_all(guesses).await;
    // One count across both replicas. A Redis answer later than its 250 ms bound (a replica
    // starved of CPU) is decided locally, which may let one more through: "a few", not 60.
    let (checked, limited) = tally(&bodies);
    assert!((5..=7).contains(&checked) && checked + limited == 60, "{checked} reached the password check");

    // The address's sign-up allowance is one, wherever it is spent.
    let client = client_from("127.0.0.1");
    for server in [&a, &b, &a, &b] {
        let body = sign_up(server, &client, &unique_email(), None).await;
        assert!(body["data"]["signUp"]["accessToken"].is_string(), "{body}");
    }
    let refused = sign_up(&b, &client, &unique_email(), None).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert!((880..=900).contains(&retry_after(&refused)), "4 an hour: one every 15 minutes: {refused}");
    assert_eq!(error_code(&sign_up(&a, &client, &unique_email(), None).await), "RATE_LIMITED");
}

/// Redis gone (cut behind a proxy): logins neither hang nor go unthrottled; each replica then
/// limits on its own until Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_logins_answer_quickly_and_are_still_throttled() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let proxy = RedisProxy::start(&redis).await;
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let app = app(
        Backend::Sqlite,
        &[
            ("REDIS_URL", proxy.url.as_str()),
            ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
            ("FINQL_LOGIN_FREE_FAILURES", "3"),
            ("FINQL_LOGIN_BACKOFF_BASE_MS", "60000"),
        ],
    )
    .await;
    let user = app.new_user().await;
    proxy.cut();
    let mut bodies = Vec::new();
    for _ in 0..8 {
        let started = Instant::now();
        bodies.push(login(&app, &user.email, "guess").await);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "a login waited {took:?} on a dead Redis");
    }
    assert_eq!(tally(&bodies), (3, 5), "throttled in process while Redis is gone");
    let refused = login(&app, &user.email, PASSWORD).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    proxy.restore();
}

/// Logins sent over a WebSocket count against the same address as HTTP ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_over_websocket_count_against_the_address() {
    use crate::http::ws::{TRANSPORT_WS, Ws};
    let app =
        app(Backend::Sqlite, &[("FINQL_LOGIN_PER_ADDR_PER_MIN", "30"), ("FINQL_LOGIN_PER_ADDR_BURST", "3")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    let mut bodies = Vec::new();
    for i in 0..5 {
        let id = i.to_string();
        let query =
            format!(r#"mutation {{ login(email: "{}", password: "guess") {{ accessToken }} }}"#, unique_email());
        ws.subscribe(&id, &query).await;
        let next = ws.next_json().await;
        assert_eq!((next["type"].as_str(), next["id"].as_str()), (Some("next"), Some(id.as_str())), "{next}");
        bodies.push(next["payload"].clone());
        assert_eq!(ws.next_json().await["type"], "complete");
    }
    assert_eq!(tally(&bodies), (3, 2));
    let over_http = login(&app, &unique_email(), "guess").await;
    assert_eq!(error_code(&over_http), "RATE_LIMITED", "one allowance per address: {over_http}");
}

/// The same as replicas really run: two `finql` processes sharing nothing but Redis (each has a
/// SQLite file of its own, so the guessed email exists on neither, which must not matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_holds_across_two_finql_processes() {
    let Some(redis) = crate::helpers::test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("FINQL_LOGIN_BACKOFF_BASE_MS", "60000"),
    ];
    let (a, b) = tokio::join!(FinqlProcess::start(&vars), FinqlProcess::start(&vars));
    // reqwest's TLS needs a crypto provider even for plain HTTP; finql installs the same one.
    finql::sources::http::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let login_on = |process: &FinqlProcess, email: String| {
        let request = client
            .post(format!("http://{}/graphql", process.addr))
            .json(&json!({ "query": LOGIN, "variables": { "e": email, "p": "guess" } }));
        async move { request.send().await.expect("answers").json::<Value>().await.expect("JSON") }
    };
    let email = unique_email();
    // The default five free attempts, alternating processes: all reach the password check.
    for i in 0..5 {
        let process = if i % 2 == 0 { &a } else { &b };
        assert_eq!(error_code(&login_on(process, email.clone()).await), "UNAUTHENTICATED");
    }
    for process in [&a, &b] {
        let body = login_on(process, email.clone()).await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "the sixth guess, on either process: {body}\n{}", process.logs());
        assert!(retry_after(&body) > 50, "{body}");
    }
}

/// A refusal also says when to come back at the HTTP level (`Retry-After`, as a 429 would),
/// equal to `extensions.retryAfter`; the status stays 200, as for any executed GraphQL request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_retry_after() {
    let app =
        app(Backend::Sqlite, &[("FINQL_LOGIN_FREE_FAILURES", "1"), ("FINQL_LOGIN_BACKOFF_BASE_MS", "30000")]).await;
    let email = unique_email();
    let request = || {
        app.client.post(app.url("/graphql")).json(&json!({ "query": LOGIN, "variables": { "e": email, "p": "guess" } }))
    };
    let first = request().send().await.unwrap();
    assert!(first.headers().get("retry-after").is_none(), "a checked attempt has no Retry-After");
    let refused = request().send().await.unwrap();
    assert_eq!(refused.status(), 200);
    let header: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert_eq!(header, retry_after(&body), "{body}");
    assert!((25..=30).contains(&header), "{header}");
}
