//! Null propagation (`finql::graphql::nulls`) over HTTP and WebSocket, checked as exact JSON: a
//! failed nullable field is `null` beside its error (async-graphql alone left it out), a failed
//! list item is `null` at its index, and a failed non-null field nulls its nearest nullable
//! ancestor, or `data` itself.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
};

/// A server on the simulated market and SQLite (the catalog is in the database).
async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alias_is_null_beside_its_error() {
    let app = app().await;
    let query = r#"{ a: quote(symbol: "AAPL.US") { symbol } b: quote(symbol: "NOPE.US") { symbol } }"#;
    let (status, body) = app.gql_status(None, query, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        stable(body),
        json!({
            "data": { "a": { "symbol": "AAPL.US" }, "b": null },
            "errors": [{
                "message": "no instrument with symbol `NOPE.US`",
                "path": ["b"],
                "extensions": { "code": "NOT_FOUND" },
            }],
        })
    );
    // The same for every lookup by symbol or id.
    let query = r#"{ s: security(symbol: "NOPE.US") { symbol } k: klines(symbol: "NOPE.US", interval: ONE_DAY, limit: 1) { time }
                     ok: security(symbol: "AAPL.US") { symbol } }"#;
    let body = stable(app.gql(None, query, json!({})).await);
    assert_eq!(body["data"], json!({ "s": null, "k": null, "ok": { "symbol": "AAPL.US" } }), "{body}");
    let paths: Vec<&Value> = body["errors"].as_array().unwrap().iter().map(|e| &e["path"]).collect();
    assert_eq!(paths.len(), 2, "{body}");
    assert!(paths.contains(&&json!(["s"])) && paths.contains(&&json!(["k"])), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_list_item_is_null_at_its_index() {
    let app = app().await;
    let query = r#"{ quotes(symbols: ["AAPL.US", "NOPE.US", "700.HK"]) { symbol } }"#;
    let body = app.gql(None, query, json!({})).await;
    assert_eq!(
        stable(body),
        json!({
            "data": { "quotes": [{ "symbol": "AAPL.US" }, null, { "symbol": "700.HK" }] },
            "errors": [{
                "message": "no instrument with symbol `NOPE.US`",
                "path": ["quotes", 1],
                "extensions": { "code": "NOT_FOUND" },
            }],
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_non_null_field_nulls_its_nearest_nullable_ancestor() {
    let app = app().await;
    // A catalog row finql cannot read: `Security.region` (non-null) fails for this instrument.
    entity::security::Entity::update_many()
        .col_expr(entity::security::Column::Region, Expr::value("ATLANTIS"))
        .filter(entity::security::Column::Symbol.eq("AAPL.US"))
        .exec(&app.state.db)
        .await
        .expect("corrupt one catalog row");
    let query =
        r#"{ a: security(symbol: "AAPL.US") { symbol region } b: security(symbol: "MSFT.US") { symbol region } }"#;
    let mut body = app.gql(None, query, json!({})).await;
    // The cause is logged under the request's trace id, which the error quotes.
    let trace_id = body["extensions"]["traceId"].clone();
    let quoted = body["errors"][0]["extensions"].as_object_mut().unwrap().remove("traceId");
    assert_eq!(quoted, Some(trace_id), "{body}");
    // `a` (a nullable `Security`) takes the null, not `data`; `b` still answers.
    assert_eq!(
        stable(body),
        json!({
            "data": { "a": null, "b": { "symbol": "MSFT.US", "region": "US" } },
            "errors": [{
                "message": "internal error",
                "path": ["a", "region"],
                "extensions": { "code": "INTERNAL" },
            }],
        })
    );
    // Inside a list item of a nullable type, the item takes it.
    let query = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Security { region } } }";
    let ids = [global_id("Security", "AAPL.US"), global_id("Security", "MSFT.US")];
    let body = stable(app.gql(None, query, json!({ "ids": ids })).await);
    assert_eq!(body["data"], json!({ "nodes": [null, { "region": "US" }] }), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["nodes", 0, "region"]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_non_null_root_field_nulls_data() {
    let app = app().await;
    // `me` is non-null: without credentials its error nulls `data`, though `a` resolved.
    let query = r#"{ a: quote(symbol: "AAPL.US") { symbol } me { id } }"#;
    let (status, body) = app.gql_status(None, query, json!({})).await;
    assert_eq!(status, 200, "execution ran: a field error, not a request error");
    let body = stable(body);
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(
        body["errors"],
        json!([{
            "message": "authentication required: send `Authorization: Bearer <accessToken>`",
            "path": ["me"],
            "extensions": { "code": "UNAUTHENTICATED" },
        }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_results_are_propagated_alike() {
    let app = app().await;
    let user = app.new_user().await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    ws.subscribe("q", r#"{ a: quote(symbol: "AAPL.US") { symbol } b: quote(symbol: "NOPE.US") { symbol } }"#).await;
    let message = ws.next_json().await;
    assert_eq!(message["type"], "next", "{message}");
    let payload = stable(message["payload"].clone());
    assert_eq!(payload["data"], json!({ "a": { "symbol": "AAPL.US" }, "b": null }), "{payload}");
    assert_eq!(payload["errors"][0]["path"], json!(["b"]), "{payload}");
}
