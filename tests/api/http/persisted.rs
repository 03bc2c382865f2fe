//! Persisted documents (`persisted`): Apollo's APQ exactly as its persisted-query link
//! speaks it (a hash alone, `PERSISTED_QUERY_NOT_FOUND`, the hash with the text, then the hash
//! alone) over POST and GET; the appendix's `documentId`; registrations shared by two servers
//! through Redis; the safelist mode with either manifest format, over HTTP and WebSocket; and
//! the edge guards, which a persisted document passes like any other.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{GRAPHQL_RESPONSE_JSON, Reply, app_with, assert_refused_as, get, post_json};
use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
};

const QUOTE: &str = "query Quote($symbol: String!) {\n  quote(symbol: $symbol) {\n    symbol\n  }\n}";

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// `extensions` as Apollo's link sends them.
fn persisted_query(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// The link's first request, by POST: the hash, no `query`.
fn hash_only(query: &str) -> Value {
    json!({ "operationName": "Quote", "variables": { "symbol": "AAPL.US" }, "extensions": persisted_query(&sha256(query)) })
}

/// The link's retry: the same with the text.
fn with_text(query: &str) -> Value {
    let mut request = hash_only(query);
    request["query"] = json!(query);
    request
}

/// The link's first request with `useGETForHashedQueries`: its parameters in the URL.
async fn get_hash_only(app: &TestApp, query: &str) -> Reply {
    let extensions = persisted_query(&sha256(query)).to_string();
    get(app, &[("operationName", "Quote"), ("variables", r#"{"symbol":"AAPL.US"}"#), ("extensions", &extensions)]).await
}

fn assert_quote(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    assert_eq!(reply.body["data"]["quote"]["symbol"], "AAPL.US", "{}", reply.body);
}

/// Apollo's `PersistedQueryNotFound`: 200 under `application/json`, the link's cue to send the
/// text.
fn assert_not_found(reply: &Reply) {
    assert_refused_as(reply, StatusCode::OK, "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(reply.body["errors"][0]["message"], "PersistedQueryNotFound");
}

/// A refused request's `extensions.reason`, after its status and code.
fn reason(reply: &Reply, status: StatusCode) -> String {
    assert_refused_as(reply, status, "BAD_USER_INPUT");
    reply.body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {}", reply.body))
        .into()
}

fn document_id(query: &str) -> String {
    format!("sha256:{}", sha256(query))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apq_over_post_as_apollos_link_does_it() {
    let app = app_with(&[]).await;
    assert_not_found(&post_json(&app, None, &hash_only(QUOTE)).await);
    // Under the newer media type, a request error's status: 400 (the link reads the body then).
    let strict = post_json(&app, Some(GRAPHQL_RESPONSE_JSON), &hash_only(QUOTE)).await;
    assert_refused_as(&strict, StatusCode::BAD_REQUEST, "PERSISTED_QUERY_NOT_FOUND");
    assert_quote(&post_json(&app, None, &with_text(QUOTE)).await);
    assert_quote(&post_json(&app, None, &hash_only(QUOTE)).await);
    // Registering again is harmless.
    assert_quote(&post_json(&app, None, &with_text(QUOTE)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apq_over_get_as_apollos_link_does_it() {
    let app = app_with(&[]).await;
    assert_not_found(&get_hash_only(&app, QUOTE).await);
    // The link sends the text by POST.
    assert_quote(&post_json(&app, None, &with_text(QUOTE)).await);
    assert_quote(&get_hash_only(&app, QUOTE).await);
    // And GET may register too, as Apollo Server allows.
    let other = QUOTE.replace("symbol\n  }", "symbol last\n  }");
    let extensions = persisted_query(&sha256(&other)).to_string();
    let reply =
        get(&app, &[("query", &other), ("variables", r#"{"symbol":"AAPL.US"}"#), ("extensions", &extensions)]).await;
    assert_quote(&reply);
    assert_quote(&get_hash_only(&app, &other).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_that_is_not_the_texts_is_refused_and_registers_nothing() {
    let app = app_with(&[]).await;
    let mut forged = with_text(QUOTE);
    forged["extensions"] = persisted_query(&sha256("{ me { id } }"));
    let reply = post_json(&app, None, &forged).await;
    assert_eq!(reason(&reply, StatusCode::BAD_REQUEST), "PERSISTED_QUERY_HASH_MISMATCH");
    assert_eq!(reply.body["errors"][0]["message"], "provided sha does not match query");
    let mut me = hash_only(QUOTE);
    me["extensions"] = persisted_query(&sha256("{ me { id } }"));
    assert_not_found(&post_json(&app, None, &me).await);
    let mut version = with_text(QUOTE);
    version["extensions"]["persistedQuery"]["version"] = json!(2);
    assert_eq!(
        reason(&post_json(&app, None, &version).await, StatusCode::BAD_REQUEST),
        "PERSISTED_QUERY_VERSION_UNSUPPORTED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_id_runs_a_stored_document_by_post_and_get() {
    let app = app_with(&[]).await;
    let by_id = json!({ "documentId": document_id(QUOTE), "variables": { "symbol": "AAPL.US" } });
    let unknown = post_json(&app, None, &by_id).await;
    assert_refused_as(&unknown, StatusCode::OK, "PERSISTED_QUERY_NOT_FOUND");
    assert!(unknown.body["errors"][0]["message"].as_str().unwrap().contains(&document_id(QUOTE)), "{}", unknown.body);
    assert_quote(&post_json(&app, None, &with_text(QUOTE)).await);
    assert_quote(&post_json(&app, None, &by_id).await);
    let id = document_id(QUOTE);
    assert_quote(&get(&app, &[("documentId", &id), ("variables", r#"{"symbol":"AAPL.US"}"#)]).await);
    // The bare hash is read as the same SHA-256 (graphql-codegen's clients send it).
    assert_quote(&get(&app, &[("documentId", &sha256(QUOTE)), ("variables", r#"{"symbol":"AAPL.US"}"#)]).await);
    for malformed in [format!("md5:{}", sha256(QUOTE)), "sha256:abc".into(), id.to_ascii_uppercase()] {
        let reply = get(&app, &[("documentId", &malformed)]).await;
        assert_eq!(reason(&reply, StatusCode::BAD_REQUEST), "DOCUMENT_ID_MALFORMED", "{malformed}");
    }
    let both = json!({ "documentId": id, "query": QUOTE });
    reason_less_400(&post_json(&app, None, &both).await);
}

/// A malformed request without a `reason`.
fn reason_less_400(reply: &Reply) {
    assert_refused_as(reply, StatusCode::BAD_REQUEST, "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_document_is_refused() {
    let app = app_with(&[("FINQL_PERSISTED_MAX_BYTES", "64")]).await;
    let reply = post_json(&app, None, &with_text(QUOTE)).await;
    assert_eq!(reason(&reply, StatusCode::OK), "PERSISTED_DOCUMENT_TOO_LARGE");
    assert_not_found(&post_json(&app, None, &hash_only(QUOTE)).await);
    let small = "query Quote { __typename }";
    let reply = post_json(&app, None, &with_text(small)).await;
    assert_eq!(reply.body["data"]["__typename"], "Query", "{}", reply.body);
}

/// The same edge limits as for a text: a document that fails them is refused and never kept,
/// and a stored one is checked again wherever it runs; a mutation is no more a GET's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_apply_to_persisted_documents() {
    let app = app_with(&[("FINQL_MAX_ALIASES", "2")]).await;
    let aliased = "query Quote { a: __typename b: __typename c: __typename }";
    let reply = post_json(&app, None, &with_text(aliased)).await;
    assert_eq!(reason(&reply, StatusCode::OK), "TOO_MANY_ALIASES");
    assert_not_found(&post_json(&app, None, &hash_only(aliased)).await);

    let logout = "mutation Logout { logout(refreshToken: \"nope\") }";
    let (_dir, manifest) = manifest_file(&json!({ sha256(aliased): aliased, sha256(logout): logout }));
    let app = app_with(&[("FINQL_MAX_ALIASES", "2"), ("FINQL_PERSISTED_MANIFEST", &manifest)]).await;
    let reply = post_json(&app, None, &json!({ "documentId": document_id(aliased) })).await;
    assert_eq!(reason(&reply, StatusCode::OK), "TOO_MANY_ALIASES");
    // A mutation named in a GET is still refused (the appendix: 405).
    let reply = get(&app, &[("documentId", &document_id(logout))]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_shared_by_replicas_through_redis() {
    let Some(redis) = test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [("REDIS_URL", redis.as_str()), ("FINQL_CACHE_NAMESPACE", namespace.as_str())];
    let a = app_with(&vars).await;
    let b = app_with(&vars).await;
    assert_not_found(&post_json(&b, None, &hash_only(QUOTE)).await);
    assert_quote(&post_json(&a, None, &with_text(QUOTE)).await);
    assert_quote(&post_json(&b, None, &hash_only(QUOTE)).await);
    assert_quote(&get(&b, &[("documentId", &document_id(QUOTE)), ("variables", r#"{"symbol":"AAPL.US"}"#)]).await);
    // Kept with the TTL, and listed for the cap.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{namespace}:persisted:doc:{}", sha256(QUOTE));
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(ttl > 86_000_000 && ttl <= 86_400_000, "{ttl}");
    let listed: i64 =
        redis::cmd("ZCARD").arg(format!("{namespace}:persisted:index")).query_async(&mut conn).await.unwrap();
    assert_eq!(listed, 1);
}

/// Registering past `FINQL_PERSISTED_MAX_SHARED` forgets the oldest: endless registrations
/// cannot grow Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_store_holds_at_most_its_cap() {
    let Some(redis) = test_redis_url() else { return };
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("FINQL_CACHE_NAMESPACE", namespace.as_str()),
        ("FINQL_PERSISTED_MAX_SHARED", "2"),
    ];
    let a = app_with(&vars).await;
    let documents: Vec<String> = (0..5).map(|i| format!("query Quote {{ n{i}: __typename }}")).collect();
    for document in &documents {
        assert_eq!(post_json(&a, None, &with_text(document)).await.status, StatusCode::OK);
    }
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{namespace}:persisted:doc:*")).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let b = app_with(&vars).await;
    let mut known = 0;
    for document in &documents {
        known += usize::from(post_json(&b, None, &hash_only(document)).await.body.get("errors").is_none());
    }
    assert_eq!(known, 2, "another replica knows the documents kept");
}

/// A manifest file of `contents`; it lives as long as the returned folder.
fn manifest_file(contents: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, contents.to_string()).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

/// A safelist server whose manifest holds `QUOTE` in `contents`' format.
async fn safelist_app(contents: &Value) -> (TestApp, tempfile::TempDir) {
    let (dir, manifest) = manifest_file(contents);
    let app = app_with(&[("FINQL_PERSISTED_ONLY", "true"), ("FINQL_PERSISTED_MANIFEST", &manifest)]).await;
    (app, dir)
}

async fn assert_safelist(app: &TestApp) {
    assert_quote(&post_json(app, None, &hash_only(QUOTE)).await);
    assert_quote(&get_hash_only(app, QUOTE).await);
    assert_quote(&get(app, &[("documentId", &document_id(QUOTE)), ("variables", r#"{"symbol":"AAPL.US"}"#)]).await);
    let free = post_json(app, None, &json!({ "query": QUOTE, "variables": { "symbol": "AAPL.US" } })).await;
    assert_refused_as(&free, StatusCode::OK, "PERSISTED_QUERY_ID_REQUIRED");
    let free = get(app, &[("query", "{ __typename }")]).await;
    assert_refused_as(&free, StatusCode::OK, "PERSISTED_QUERY_ID_REQUIRED");
    let other = "query Quote { __typename }";
    assert_refused_as(&post_json(app, None, &with_text(other)).await, StatusCode::OK, "PERSISTED_QUERY_ID_REQUIRED");
    assert_refused_as(&post_json(app, None, &hash_only(other)).await, StatusCode::OK, "PERSISTED_QUERY_NOT_IN_LIST");
    let unknown = post_json(app, None, &json!({ "documentId": document_id(other) })).await;
    assert_refused_as(&unknown, StatusCode::OK, "PERSISTED_QUERY_NOT_IN_LIST");
    // Over WebSocket too: the manifest's document runs, a text does not.
    let mut ws = Ws::connect(app, TRANSPORT_WS).await;
    ws.init(None).await;
    let payload = json!({ "documentId": document_id(QUOTE), "variables": { "symbol": "AAPL.US" } });
    ws.send_json(json!({ "type": "subscribe", "id": "1", "payload": payload })).await;
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["quote"]["symbol"], "AAPL.US", "{next}");
    ws.subscribe("2", "{ __typename }").await;
    let refused = loop {
        let message = ws.next_json().await;
        if message["id"] == "2" {
            break message;
        }
    };
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_ID_REQUIRED", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safelist_mode_with_apollos_manifest() {
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{ "id": sha256(QUOTE), "body": QUOTE, "name": "Quote", "type": "query" }],
    });
    let (app, _dir) = safelist_app(&manifest).await;
    assert_safelist(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safelist_mode_with_codegens_persisted_documents() {
    let (app, _dir) = safelist_app(&json!({ sha256(QUOTE): QUOTE })).await;
    assert_safelist(&app).await;
}

/// A WebSocket `subscribe` may name its document as over HTTP, and register it with APQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_name_and_register_documents() {
    let app = app_with(&[]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    ws.send_json(json!({ "type": "subscribe", "id": "1", "payload": hash_only(QUOTE) })).await;
    let refused = ws.next_json().await;
    assert_eq!(refused["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{refused}");
    ws.send_json(json!({ "type": "subscribe", "id": "2", "payload": with_text(QUOTE) })).await;
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["quote"]["symbol"], "AAPL.US", "{next}");
    assert_quote(&post_json(&app, None, &hash_only(QUOTE)).await);
}

/// A manifest whose id is not its body's SHA-256 stops `finql serve` with the entry at fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_stops_start_up() {
    let (_manifest_dir, manifest) = manifest_file(&json!({ sha256("{ me { id } }"): QUOTE }));
    let data_dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_finql"))
        .arg("serve")
        .env_clear()
        .current_dir(data_dir.path())
        .env("FINQL_DATA_DIR", data_dir.path())
        .env("FINQL_ADDR", "127.0.0.1:0")
        .env("JWT_SECRET", JWT_SECRET)
        .env("FINQL_PERSISTED_MANIFEST", &manifest)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, run).await.expect("finql stops").unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&manifest) && stderr.contains("not the SHA-256 of its body"), "{stderr}");
    assert!(stderr.contains(&sha256("{ me { id } }")), "{stderr}");
}
