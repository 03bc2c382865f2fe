//! Test harness: `spawn_app` starts finql on port 0 against a fresh database; `TestApp` speaks
//! GraphQL to it; `backend_tests!` runs a test on SQLite and PostgreSQL; waits that poll. `process`
//! runs finql as its own OS process, `fake_server` serves the fake upstreams.

pub(crate) mod fake_server;
pub(crate) mod process;
pub(crate) mod shared_db;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The JWT secret every test server uses, so tests can mint (e.g. expired) tokens.
pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// `/metrics`' own listener, when the test set `FINQL_METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub backend: Backend,
    /// The server's state, to observe what the API cannot show (e.g. the live hub's topics).
    pub state: finql::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

/// A signed-up user.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// `User.id`, the global id.
    pub id: String,
    /// The account's UUID (what tokens carry as `sub`, and the database's key).
    pub uuid: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// Generates `mod <name> { sqlite, postgres }` test pairs for `async fn <name>(backend: Backend)`,
/// for tests that start their servers themselves (their own settings, a shared database, the
/// binary); each returns early, saying so, where its backend is not available.
#[macro_export]
macro_rules! each_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    )+};
}

/// Generates `mod <name> { sqlite, postgres }` test pairs for `async fn <name>(app: TestApp)`.
/// The PostgreSQL variant passes trivially (and says so) when `TEST_DATABASE_URL` is unset,
/// so the suite runs on a machine with nothing installed.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite, &[]).await;
                super::$name(app.expect("SQLite is always available")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::spawn_app($crate::helpers::Backend::Postgres, &[]).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("skipped: TEST_DATABASE_URL is not set"),
                }
            }
        }
    )+};
}

/// Starts a server. `None` for PostgreSQL when `TEST_DATABASE_URL` is unset. `overrides` are
/// extra configuration variables (e.g. `FINQL_MAX_BATCH`).
pub async fn spawn_app(backend: Backend, overrides: &[(&str, &str)]) -> Option<TestApp> {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("FINQL_ADDR".into(), "127.0.0.1:0".into());
    vars.insert("FINQL_DATA_DIR".into(), data_dir.path().display().to_string());
    vars.insert("JWT_SECRET".into(), JWT_SECRET.into());
    vars.insert("FINQL_DB_MAX_CONNECTIONS".into(), "5".into());
    // The suite signs up and logs in hundreds of times from 127.0.0.1: the per-address rates
    // are off here (the per-account backoff keeps its default). `abuse::credential_stuffing`
    // sets realistic values explicitly.
    for rate in ["FINQL_LOGIN_PER_ADDR_PER_MIN", "FINQL_SIGNUP_PER_ADDR_PER_HOUR", "FINQL_REFRESH_PER_ADDR_PER_MIN"] {
        vars.insert(rate.into(), "0".into());
    }
    // Most of the suite speaks to the API without credentials and is about something other than
    // plans: it runs under the generous `developer` plan. Tenancy tests set their own plans.
    vars.insert("FINQL_ANONYMOUS_PLAN".into(), "developer".into());
    match backend {
        Backend::Sqlite => {
            vars.insert("DATABASE_URL".into(), format!("sqlite://{}/test.db?mode=rwc", data_dir.path().display()));
        }
        Backend::Postgres => {
            let url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
            vars.insert("FINQL_DATABASE_SCHEMA".into(), new_postgres_schema().await);
            vars.insert("DATABASE_URL".into(), url);
        }
    }
    for (key, value) in overrides {
        vars.insert((*key).into(), (*value).into());
    }
    if std::env::var("TEST_LOG").is_ok() {
        let config = finql::Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
        finql::telemetry::init(&config);
    } else {
        // Traces as in production (trace ids, `traceparent` upstream), without the log output.
        finql::telemetry::init_quiet();
    }
    let config = finql::Config::from_lookup(|k| vars.get(k).cloned()).expect("test config is valid");
    let app = finql::App::build(config).await.expect("server builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let state = app.state().clone();
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = signal.await;
    }));
    Some(TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        backend,
        state,
        shutdown: Some(shutdown),
        server: Some(server),
        _data_dir: data_dir,
    })
}

/// `TEST_REDIS_URL`, or `None` when it is unset, having said that the calling test is skipped
/// (the suite runs on a machine with nothing installed).
pub fn test_redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: TEST_REDIS_URL is not set");
    }
    url
}

/// A login attempt with `email` fails as for an unknown account.
pub async fn assert_no_account(app: &TestApp, email: &str) {
    let body = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            json!({ "e": email, "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "the account must not exist: {body}");
}

/// Creates an empty schema of its own in `TEST_DATABASE_URL` (which must be set).
pub async fn new_postgres_schema() -> String {
    let url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&url).await.expect("connect to TEST_DATABASE_URL");
    admin.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\"")).await.expect("create test schema");
    admin.close().await.ok();
    schema
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// POSTs a GraphQL request as JSON and returns the response body. Panics on a non-JSON reply.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (_, body) = self.gql_status(token, query, variables).await;
        body
    }

    /// Like `gql`, with the HTTP status.
    pub async fn gql_status(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request =
            self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    /// Runs a query that must succeed and returns its `data`.
    pub async fn data(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Creates tenant `slug` on `plan` (through the service the CLI uses) and a key of it with
    /// `scopes` (`market,live,admin`); returns the key's secret.
    pub async fn tenant_key(&self, slug: &str, plan: &str, scopes: &str) -> String {
        let tenancy = &self.state.tenancy;
        let tenant = match tenancy.tenant_by_slug(slug).await.expect("read tenant") {
            Some(tenant) => tenant,
            None => tenancy.create_tenant(slug, slug, plan).await.expect("create tenant"),
        };
        let spec = finql::tenancy::service::KeySpec {
            name: format!("{slug} test key"),
            scopes: finql::identity::Scopes::parse(scopes).expect("scopes"),
            expires_at: None,
            rate: None,
            created_by: None,
        };
        tenancy.create_key(tenant.id, spec).await.expect("create key").secret
    }

    /// POSTs a GraphQL request with `X-API-Key: key`; returns status, headers and body.
    pub async fn gql_key(&self, key: &str, query: &str, variables: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .header("X-API-Key", key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.expect("JSON body");
        (status, headers, body)
    }

    pub async fn sign_up(&self, email: &str) -> TestUser {
        let data = self
            .data(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken user { id email } } }",
                json!({ "input": { "email": email, "password": PASSWORD, "fullName": "Test User" } }),
            )
            .await;
        let payload = &data["signUp"];
        let id = payload["user"]["id"].as_str().unwrap().to_owned();
        TestUser {
            uuid: global_key(&id, "User"),
            id,
            email: payload["user"]["email"].as_str().unwrap().to_owned(),
            access_token: payload["accessToken"].as_str().unwrap().to_owned(),
            refresh_token: payload["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    /// A user with a unique email.
    pub async fn new_user(&self) -> TestUser {
        self.sign_up(&format!("user-{}@example.com", uuid::Uuid::new_v4().simple())).await
    }

    /// Triggers graceful shutdown and waits for the server to stop.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }
}

/// A GraphQL response without its `extensions.traceId` (the request's or operation's W3C trace
/// id), which must be there: 32 hex digits. `extensions` goes when nothing else is in it.
pub fn untraced(mut response: Value) -> Value {
    let shown = response.to_string();
    let extensions = response["extensions"].as_object_mut().unwrap_or_else(|| panic!("no extensions: {shown}"));
    let trace_id = extensions.remove("traceId").unwrap_or_else(|| panic!("no extensions.traceId: {shown}"));
    let trace_id = trace_id.as_str().expect("a string").to_owned();
    assert!(trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()), "{trace_id}");
    if extensions.is_empty() {
        response.as_object_mut().unwrap().remove("extensions");
    }
    response
}

/// A GraphQL answer without what varies between runs or documents, to compare as exact JSON:
/// its `extensions` (trace id, cost) and the errors' `locations`.
pub fn stable(mut body: Value) -> Value {
    let object = body.as_object_mut().expect("a JSON object");
    object.remove("extensions");
    for error in object.get_mut("errors").and_then(Value::as_array_mut).into_iter().flatten() {
        error.as_object_mut().expect("an error object").remove("locations");
    }
    body
}

/// The key inside a global id (`Node.id`: base64 of `<Type>:<key>`), which must name a `type_name`.
pub fn global_key(id: &str, type_name: &str) -> String {
    use base64::Engine;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(id).unwrap_or_else(|_| panic!("not a global id: {id}"));
    let text = String::from_utf8(bytes).expect("UTF-8");
    let (ty, key) = text.split_once(':').unwrap_or_else(|| panic!("not a global id: {text}"));
    assert_eq!(ty, type_name, "{text}");
    key.to_owned()
}

/// The global id (`Node.id`) of the `type_name` object keyed `key`.
pub fn global_id(type_name: &str, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{type_name}:{key}"))
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// How long a test waits for something it expects before failing: long, so that a loaded
/// machine is never why a test fails (a passing test waits only as long as the thing takes).
/// A plan file (`FINQL_PLANS_FILE`) holding `plans`, TOML `[plans.NAME]` tables; it lives as
/// long as the returned folder. A file replaces the built-in plans: a test server needs the
/// file to hold its default and anonymous plans (`developer`), or to name others.
pub fn plans_file(plans: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plans.toml");
    std::fs::write(&path, plans).expect("plans file");
    let path = path.display().to_string();
    (dir, path)
}

pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often a condition is polled: short against anything the tests wait for.
const POLL: Duration = Duration::from_millis(10);

/// Polls `condition` until it holds, for at most `limit`: how long it took, or `None`.
///
/// Waiting in these tests is on what can be observed, never for a fixed time. Tests that drive
/// tokio timers within one runtime use the paused clock instead (the unit tests); these cannot:
/// they talk to a real server over real sockets, and the paused clock would fire the server's
/// own timeouts while the test waits for I/O.
pub async fn poll(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    loop {
        if condition().await {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `condition` until it holds; panics naming `what` if it does not within `limit`.
/// Returns how long it took.
pub async fn within(limit: Duration, what: &str, condition: impl AsyncFnMut() -> bool) -> Duration {
    poll(limit, condition).await.unwrap_or_else(|| panic!("timed out after {limit:?} waiting for: {what}"))
}

/// Polls `condition` until it holds; panics naming `what` after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(PATIENCE, what, async || condition()).await;
}
