//! finql's own database under pressure: a pool with no connection to give, and a client that
//! disconnects while its operation waits on the database.

use std::time::Duration;

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{Backend, TestApp, error_code, spawn_app, within};

const TOTAL: &str = "{ transactions(first: 1) { totalCount } }";

/// A pool of one connection, a short wait for it.
async fn one_connection(backend: Backend) -> Option<TestApp> {
    let pool =
        [("FINQL_DB_MAX_CONNECTIONS", "1"), ("FINQL_DB_MIN_CONNECTIONS", "1"), ("FINQL_DB_ACQUIRE_TIMEOUT_MS", "300")];
    spawn_app(backend, &pool).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_service_unavailable_with_a_retry_hint_sqlite() {
    an_exhausted_pool_is_service_unavailable_with_a_retry_hint(one_connection(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_service_unavailable_with_a_retry_hint_postgres() {
    match one_connection(Backend::Postgres).await {
        Some(app) => an_exhausted_pool_is_service_unavailable_with_a_retry_hint(app).await,
        None => eprintln!("skipped: TEST_DATABASE_URL is not set"),
    }
}

/// Every connection busy past `FINQL_DB_ACQUIRE_TIMEOUT_MS` is an overload the client can wait
/// out, not a server bug: `SERVICE_UNAVAILABLE` with `retryAfter` and `Retry-After`, never
/// `INTERNAL`, and nothing of the pool or the SQL in the message.
async fn an_exhausted_pool_is_service_unavailable_with_a_retry_hint(app: TestApp) {
    let user = app.new_user().await;
    assert_eq!(app.data(Some(&user.access_token), TOTAL, json!({})).await["transactions"]["totalCount"], 0);

    // The test takes the pool's only connection.
    let held = app.state.db.begin().await.expect("the pool's connection");
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.access_token)
        .json(&json!({ "query": TOTAL }))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["retryAfter"], 1, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
    let message = error["message"].as_str().unwrap().to_lowercase();
    assert!(!message.contains("pool") && !message.contains("sql") && !message.contains("timed out"), "{body}");

    // Given back, it serves again.
    held.rollback().await.unwrap();
    assert_eq!(app.data(Some(&user.access_token), TOTAL, json!({})).await["transactions"]["totalCount"], 0);
}

/// A client that disconnects while its mutation waits on the database does not cut the
/// operation off half-way: it runs to its end (the transaction is written), as it would have
/// for a client that stayed, and its connection goes back to the pool instead of being closed
/// mid-statement. PostgreSQL, where a table lock makes the wait observable (`pg_stat_activity`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_whose_client_disconnects_still_completes() {
    let Some(app) = spawn_app(Backend::Postgres, &[("FINQL_DB_MAX_CONNECTIONS", "2")]).await else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let user = app.new_user().await;
    let schema = app.state.config.database.schema.clone().expect("a PostgreSQL test has a schema");

    // Writers wait: the test holds a lock on the ledger's table in a transaction of its own.
    let url = std::env::var("TEST_DATABASE_URL").unwrap();
    let locker = sea_orm::Database::connect(&url).await.unwrap();
    let lock = locker.begin().await.unwrap();
    lock.execute_unprepared(&format!("LOCK TABLE \"{schema}\".transactions IN EXCLUSIVE MODE")).await.unwrap();

    // The mutation, sent by hand on a socket the test then closes without reading the answer.
    let body = json!({
        "query": r#"mutation { createTransaction(input: {amount: "12.34", kind: DEBIT, category: "left"}) { id } }"#,
    })
    .to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.addr,
        user.access_token,
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();

    // Once its INSERT waits on the lock, the client goes away.
    const WAITING: &str = "SELECT count(*)::bigint AS n FROM pg_stat_activity \
        WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"transactions\"%'";
    let inserts_waiting = async || {
        let row = locker
            .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, WAITING))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() >= 1
    };
    within(Duration::from_secs(10), "the INSERT waits on the lock", inserts_waiting).await;
    drop(socket);
    // The server sees the end of the socket at once (hyper polls it while the request runs);
    // this wait only makes sure it has before the lock goes, so that without the detached
    // execution the test would fail rather than pass by luck.
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.commit().await.unwrap();

    let ledger = async || {
        let data = app
            .data(Some(&user.access_token), "{ transactions(first: 5) { nodes { amount category } } }", json!({}))
            .await;
        data["transactions"]["nodes"] == json!([{ "amount": "12.34", "category": "left" }])
    };
    within(Duration::from_secs(10), "the mutation is written", ledger).await;
    locker.close().await.ok();
}
