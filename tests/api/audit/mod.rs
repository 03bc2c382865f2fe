//! The audit trail: a record per GraphQL operation with its fields, symbols, outcome, codes,
//! bytes and trace id (HTTP, batches, WebSocket subscriptions' start and end), read back by
//! tenant admins through `tenant { auditLog }` (their own tenant only, filters, pages);
//! requests unharmed by a full buffer; retention; `finql audit` (in `cli`).

mod cli;

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{PATIENCE, TestApp, error_code, poll, within},
    http::ws::{TRANSPORT_WS, Ws},
};

backend_tests!(
    a_query_is_recorded_with_its_fields_symbols_and_trace_id,
    each_operation_of_a_batch_has_its_own_record,
    tenants_see_only_their_own_records,
    filters_and_pages_narrow_the_log,
    retention_deletes_old_records,
);

const DESK: &str = r#"query Desk($s: [String!]!) {
    q: quotes(symbols: $s) { last ...Px __typename }
    security(symbol: "aapl.us") { name }
}
fragment Px on Quote { high ... on Quote { low } }"#;

const LOG: &str = r#"query Log($filter: AuditLogFilter, $first: Int, $after: String) {
    tenant { auditLog(first: $first, after: $after, filter: $filter) {
        edges { cursor node {
            id at traceId principal event transport operationType operationName documentHash
            fields symbols outcome errorCodes durationMs responseBytes
        } }
        pageInfo { hasNextPage endCursor }
    } }
}"#;

/// The visible part of a key (`fq_<prefix>_…`).
fn prefix(key: &str) -> String {
    key.split('_').nth(1).unwrap().to_owned()
}

/// The records `admin` sees with `filter`, newest first.
async fn audit_log(app: &TestApp, admin: &str, filter: Value) -> Vec<Value> {
    let (status, _, body) = app.gql_key(admin, LOG, json!({ "filter": filter, "first": 100 })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let edges = body["data"]["tenant"]["auditLog"]["edges"].as_array().unwrap();
    edges.iter().map(|edge| edge["node"].clone()).collect()
}

/// Waits until `admin` sees `count` records with `filter` (the writer batches them).
async fn records(app: &TestApp, admin: &str, filter: Value, count: usize) -> Vec<Value> {
    let mut found = Vec::new();
    let waited = poll(PATIENCE, async || {
        found = audit_log(app, admin, filter.clone()).await;
        found.len() >= count
    })
    .await;
    assert!(waited.is_some(), "expected {count} records for {filter}, found {found:#?}");
    assert_eq!(found.len(), count, "{found:#?}");
    found
}

async fn a_query_is_recorded_with_its_fields_symbols_and_trace_id(app: TestApp) {
    let admin = app.tenant_key("audit-fields", "pro", "market,admin").await;
    let variables = json!({ "s": ["700.hk", "0700.HK", "CRYPTO:btcusdt"] });
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("X-API-Key", &admin)
        .json(&json!({ "query": DESK, "variables": variables }))
        .send()
        .await
        .unwrap();
    let trace_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert!(parsed.get("errors").is_none(), "{parsed}");

    let record = records(&app, &admin, json!({ "operationName": "Desk" }), 1).await.remove(0);
    assert_eq!(record["traceId"], trace_id.as_str());
    assert_eq!(record["principal"], format!("key:{}", prefix(&admin)));
    assert_eq!(record["event"], "request");
    assert_eq!(record["transport"], "http");
    assert_eq!(record["operationType"], "query");
    assert_eq!(record["documentHash"], finql::audit::document::document_hash(DESK));
    // Aliases resolved, fragments expanded, `__typename` left out, sorted.
    assert_eq!(record["fields"], json!(["quotes.high", "quotes.last", "quotes.low", "security.name"]));
    // From the variables and the literal, canonical and deduplicated.
    assert_eq!(record["symbols"], json!(["700.HK", "AAPL.US", "CRYPTO:BTCUSDT"]));
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["errorCodes"], json!([]));
    assert_eq!(record["responseBytes"], body.len());
    assert!(record["durationMs"].as_f64().unwrap() > 0.0, "{record}");
}

async fn each_operation_of_a_batch_has_its_own_record(app: TestApp) {
    let admin = app.tenant_key("audit-batch", "pro", "market,admin").await;
    let batch = json!([
        { "query": "query Good { quote(symbol: \"AAPL.US\") { last } }" },
        { "query": "query Bad { quote(symbol: \"not a symbol\") { last } }" },
    ]);
    let response = app.client.post(app.url("/graphql")).header("X-API-Key", &admin).json(&batch).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    let sizes: Vec<usize> = body.as_array().unwrap().iter().map(|item| item.to_string().len()).collect();
    assert_eq!(error_code(&body[1]), "BAD_USER_INPUT", "{body}");

    let good = records(&app, &admin, json!({ "operationName": "Good" }), 1).await.remove(0);
    let bad = records(&app, &admin, json!({ "operationName": "Bad" }), 1).await.remove(0);
    assert_eq!((good["outcome"].as_str(), bad["outcome"].as_str()), (Some("ok"), Some("error")));
    assert_eq!(bad["errorCodes"], json!(["BAD_USER_INPUT"]));
    assert_eq!(good["symbols"], json!(["AAPL.US"]));
    assert_eq!(bad["symbols"], json!([]), "not a symbol: nothing was read");
    assert_eq!(good["traceId"], bad["traceId"], "one request, one trace");
    // Each its own item's bytes (serde_json's compact form, as the server writes it).
    assert_eq!(
        (good["responseBytes"].as_u64(), bad["responseBytes"].as_u64()),
        (Some(sizes[0] as u64), Some(sizes[1] as u64))
    );
}

async fn tenants_see_only_their_own_records(app: TestApp) {
    let admin_a = app.tenant_key("audit-a", "pro", "market,admin").await;
    let admin_b = app.tenant_key("audit-b", "pro", "market,admin").await;
    let member_a = app.tenant_key("audit-a", "pro", "market").await;
    for (key, name) in [(&admin_a, "FromA"), (&member_a, "FromA"), (&admin_b, "FromB")] {
        let query = format!("query {name} {{ quote(symbol: \"MSFT.US\") {{ last }} }}");
        assert_eq!(app.gql_key(key, &query, json!({})).await.0, 200);
    }
    // Anonymous callers are audited under no tenant: nobody's admin sees them.
    let anonymous = app.gql(None, "query FromNobody { quote(symbol: \"MSFT.US\") { last } }", json!({})).await;
    assert!(anonymous.get("errors").is_none(), "{anonymous}");

    let a = records(&app, &admin_a, json!({ "symbol": "MSFT.US" }), 2).await;
    let principals: Vec<&str> = a.iter().map(|r| r["principal"].as_str().unwrap()).collect();
    let mut expected = vec![format!("key:{}", prefix(&admin_a)), format!("key:{}", prefix(&member_a))];
    let mut seen: Vec<String> = principals.iter().map(|p| (*p).to_owned()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    let b = records(&app, &admin_b, json!({ "symbol": "MSFT.US" }), 1).await;
    assert_eq!(b[0]["operationName"], "FromB");
    // The anonymous record exists (operators see it), in no tenant's log.
    within(PATIENCE, "the anonymous record is written", async || {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let rows = entity::audit_log::Entity::find()
            .filter(entity::audit_log::Column::OperationName.eq("FromNobody"))
            .all(&app.state.db)
            .await
            .unwrap();
        rows.len() == 1 && rows[0].tenant_id.is_none() && rows[0].principal == "anonymous"
    })
    .await;
    for admin in [&admin_a, &admin_b] {
        assert!(audit_log(&app, admin, json!({ "operationName": "FromNobody" })).await.is_empty());
    }
    // A key without the admin scope reads no audit log.
    let (_, _, body) = app.gql_key(&member_a, LOG, json!({ "first": 10 })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

async fn filters_and_pages_narrow_the_log(app: TestApp) {
    let admin = app.tenant_key("audit-pages", "pro", "market,admin").await;
    let reader = app.tenant_key("audit-pages", "pro", "market").await;
    for symbol in ["AAPL.US", "MSFT.US", "AAPL.US"] {
        let query = format!("query Read {{ quote(symbol: \"{symbol}\") {{ last }} }}");
        assert_eq!(app.gql_key(&reader, &query, json!({})).await.0, 200);
    }
    let reader_principal = format!("key:{}", prefix(&reader));
    records(&app, &admin, json!({ "principal": reader_principal }), 3).await;
    // The symbol filter is canonical: `aapl.us` is `AAPL.US`.
    let aapl = records(&app, &admin, json!({ "symbol": "aapl.us", "principal": reader_principal }), 2).await;
    assert!(aapl.iter().all(|r| r["symbols"] == json!(["AAPL.US"])), "{aapl:#?}");
    let future = records(&app, &admin, json!({ "from": "2100-01-01T00:00:00Z" }), 0).await;
    assert!(future.is_empty());

    // Pages of one, newest first, ending.
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let variables = json!({ "filter": { "principal": reader_principal }, "first": 1, "after": after });
        let (_, _, body) = app.gql_key(&admin, LOG, variables).await;
        let connection = &body["data"]["tenant"]["auditLog"];
        let edges = connection["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(edges.len(), 1, "{body}");
        seen.push(edges[0]["node"].clone());
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = Some(connection["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 3);
    let times: Vec<&str> = seen.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let (_, _, body) = app.gql_key(&admin, LOG, json!({ "first": 10, "after": "garbage" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

mod a_full_buffer_drops_records_not_requests {
    use crate::helpers::{Backend, spawn_app};

    /// A buffer of 4 records: full as soon as the writer stalls.
    const SMALL_BUFFER: (&str, &str) = ("FINQL_AUDIT_BUFFER", "4");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_full_buffer_drops_records_not_requests(spawn_app(Backend::Sqlite, &[SMALL_BUFFER]).await.unwrap())
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match spawn_app(Backend::Postgres, &[SMALL_BUFFER]).await {
            Some(app) => super::a_full_buffer_drops_records_not_requests(app).await,
            None => eprintln!("skipped: TEST_DATABASE_URL is not set"),
        }
    }
}

async fn a_full_buffer_drops_records_not_requests(app: TestApp) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    // Stall the writer: hold a write lock on the table from a transaction of our own (SQLite:
    // the database's write lock; PostgreSQL: an exclusive lock on audit_log).
    let lock = app.state.db.begin().await.unwrap();
    match app.backend {
        crate::helpers::Backend::Sqlite => lock.execute_unprepared("DELETE FROM audit_log WHERE 1 = 0").await,
        crate::helpers::Backend::Postgres => lock.execute_unprepared("LOCK TABLE audit_log IN EXCLUSIVE MODE").await,
    }
    .unwrap();
    let dropped_before = app.state.audit.dropped_total();
    let mut requests = 0;
    let waited = poll(PATIENCE, async || {
        let started = std::time::Instant::now();
        let body = app.gql(None, "{ quote(symbol: \"AAPL.US\") { last } }", json!({})).await;
        assert!(body.get("errors").is_none(), "requests still succeed: {body}");
        assert!(started.elapsed() < Duration::from_secs(2), "requests do not wait for the audit");
        requests += 1;
        app.state.audit.dropped_total() > dropped_before
    })
    .await;
    assert!(waited.is_some(), "nothing was dropped after {requests} requests with the writer stalled");
    lock.rollback().await.unwrap();
    // Once the database answers again, records are written again.
    let before = count_records(&app).await;
    app.gql(None, "query AfterTheStall { quote(symbol: \"AAPL.US\") { last } }", json!({})).await;
    within(PATIENCE, "records are written again", async || count_records(&app).await > before).await;
}

async fn count_records(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::audit_log::Entity::find().count(&app.state.db).await.unwrap()
}

async fn retention_deletes_old_records(app: TestApp) {
    app.gql(None, "{ quote(symbol: \"AAPL.US\") { last } }", json!({})).await;
    within(PATIENCE, "the record is written", async || count_records(&app).await > 0).await;
    let now = chrono::Utc::now();
    // Within the retention (90 days by default): kept.
    assert_eq!(app.state.audit.purge(now).await.unwrap(), 0);
    assert!(count_records(&app).await > 0);
    // 91 days on, everything written so far is past it.
    let written = count_records(&app).await;
    let deleted = app.state.audit.purge(now + chrono::TimeDelta::days(91)).await.unwrap();
    assert!(deleted >= written, "deleted {deleted} of {written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_recorded_when_they_start_and_when_they_end() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, &[]).await.unwrap();
    let admin = app.tenant_key("audit-live", "pro", "market,live,admin").await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&admin)).await;
    let subscription = "subscription Ticker { quotes(symbols: [\"CRYPTO:BTCUSDT\"]) { last symbol } }";
    ws.subscribe("1", subscription).await;
    let filter = json!({ "operationName": "Ticker" });
    let start = records(&app, &admin, filter.clone(), 1).await.remove(0);
    assert_eq!(start["event"], "subscription_start");
    assert_eq!(start["transport"], "ws");
    assert_eq!(start["operationType"], "subscription");
    assert_eq!(start["fields"], json!(["quotes.last", "quotes.symbol"]));
    assert_eq!(start["symbols"], json!(["CRYPTO:BTCUSDT"]));
    assert_eq!(start["outcome"], "ok");
    // Data flows; then the client stops it.
    let bytes = loop {
        let message = ws.next_json().await;
        if message["type"] == "next" && message["id"] == "1" {
            break message.to_string().len();
        }
    };
    ws.send_json(json!({ "type": "complete", "id": "1" })).await;
    let both = records(&app, &admin, filter, 2).await;
    let end = both.iter().find(|r| r["event"] == "subscription_end").unwrap_or_else(|| panic!("{both:#?}"));
    assert_eq!(end["fields"], start["fields"]);
    assert_eq!(end["documentHash"], start["documentHash"]);
    assert_eq!(end["outcome"], "ok");
    assert!(end["responseBytes"].as_u64().unwrap() >= bytes as u64, "{end}");
    assert!(end["durationMs"].as_f64().unwrap() > 0.0, "{end}");
}

/// `FINQL_AUDIT_LOG=json`: the finql binary writes each record as one JSON line, its fields at
/// the top level, beside its JSON logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_also_json_log_lines_when_asked() {
    // The test's own HTTP client needs the process's TLS provider (no app is built here).
    finql::sources::http::install_crypto_provider();
    let process = crate::helpers::process::FinqlProcess::start(&[("FINQL_AUDIT_LOG", "json")]).await;
    let query = "query Logged { quote(symbol: \"AAPL.US\") { last } }";
    let response = reqwest::Client::new()
        .post(format!("http://{}/graphql", process.addr))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let trace_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(response.status(), 200);
    let mut line = Value::Null;
    within(PATIENCE, "the audit log line", async || {
        let logs = process.logs();
        let found = logs
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["target"] == "finql::audit" && l["operationName"] == "Logged");
        line = found.unwrap_or(Value::Null);
        !line.is_null()
    })
    .await;
    assert_eq!(line["traceId"], trace_id.as_str());
    assert_eq!(line["principal"], "anonymous");
    assert_eq!(line["tenantId"], Value::Null);
    assert_eq!(line["fields"], json!(["quote.last"]));
    assert_eq!(line["symbols"], json!(["AAPL.US"]));
    assert_eq!(line["outcome"], "ok");
    assert_eq!(line["level"], "INFO");
    process.kill().await;
}

/// A request whose credentials cannot be checked (the database's one connection is taken, so
/// the key lookup times out) is refused with a 503, and still audited: refused, as an unknown
/// caller, under its trace id, with the operation it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_credentials_cannot_be_checked_is_audited() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
    let app =
        crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, &[("FINQL_DB_MAX_CONNECTIONS", "1")]).await.unwrap();
    // Never used before: its lookup is not cached, it needs the database.
    let key = app.tenant_key("audit-outage", "pro", "market").await;
    let held = app.state.db.begin().await.unwrap();
    let (status, headers, body) =
        app.gql_key(&key, "query Blind { quote(symbol: \"AAPL.US\") { last } }", json!({})).await;
    held.rollback().await.unwrap();
    assert_eq!(status, 503, "{body}");
    let trace_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let mut found = None;
    within(PATIENCE, "the refusal is written", async || {
        found = entity::audit_log::Entity::find()
            .filter(entity::audit_log::Column::TraceId.eq(trace_id.clone()))
            .one(&app.state.db)
            .await
            .unwrap();
        found.is_some()
    })
    .await;
    let record = found.unwrap();
    assert_eq!(record.principal, "anonymous");
    assert_eq!(record.tenant_id, None);
    assert_eq!(record.outcome, "refused");
    assert_eq!(record.operation_name.as_deref(), Some("Blind"));
    assert!(record.error_codes.contains(error_code(&body)), "{} vs {body}", record.error_codes);
}

/// `FINQL_AUDIT=off`: operations are answered and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_off_writes_nothing() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, &[("FINQL_AUDIT", "off")]).await.unwrap();
    let admin = app.tenant_key("audit-off", "pro", "market,admin").await;
    let (status, _, body) = app.gql_key(&admin, "{ quote(symbol: \"AAPL.US\") { last } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // Closing drains the writer: had a record been taken, it would be in the table now.
    app.state.audit.close().await;
    assert_eq!(count_records(&app).await, 0);
}

/// A request that names a persisted document is recorded under the id it sent (APQ's hash,
/// `documentId`'s payload): the document's SHA-256, as for its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_document_is_recorded_under_its_id() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, &[]).await.unwrap();
    let admin = app.tenant_key("audit-persisted", "pro", "market,admin").await;
    let query = "query Persisted { quote(symbol: \"AAPL.US\") { last } }";
    let hash = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(query.as_bytes()));
    let apq = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    for request in [
        json!({ "query": query, "extensions": apq }),
        json!({ "extensions": apq }),
        json!({ "documentId": format!("sha256:{hash}") }),
    ] {
        let response = app.client.post(app.url("/graphql")).header("X-API-Key", &admin).json(&request).send().await;
        let body: Value = response.unwrap().json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
    }
    for record in records(&app, &admin, json!({ "operationName": "Persisted" }), 3).await {
        assert_eq!(record["documentHash"], hash.as_str(), "{record}");
        assert_eq!(record["fields"], json!(["quote.last"]), "{record}");
    }
}
