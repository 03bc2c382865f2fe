//! Object identification (`finql::node`): global ids on users, transactions, securities and
//! quotes; `node` and `nodes` for each; nobody else's user or transaction (as `NOT_FOUND` as a
//! missing one); malformed ids; mutations that take either id form; and one quote id over a
//! query and a live subscription.

use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws},
    ledger::create_one,
};

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
  ... on User { email } ... on Transaction { amount user { id } } ... on Security { symbol } ... on Quote { symbol } } }";

const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";

fn rent() -> Value {
    json!({ "amount": "1200.00", "currency": "USD", "kind": "DEBIT", "occurredAt": "2026-03-01T12:00:00Z" })
}

async fn node_and_nodes_fetch_every_type(app: TestApp) {
    let user = app.new_user().await;
    let token = Some(user.access_token.as_str());
    let tx = create_one(&app, &user.access_token, rent()).await;
    let ids = app
        .data(
            token,
            r#"{ me { id } security(symbol: "aapl.us") { id quote { id } } quote(symbol: "AAPL.US") { id } }"#,
            json!({}),
        )
        .await;
    let (me, security, quote) = (&ids["me"]["id"], &ids["security"]["id"], &ids["quote"]["id"]);
    assert_eq!(me, &json!(user.id));
    assert_eq!(global_key(me.as_str().unwrap(), "User"), user.uuid);
    assert_eq!(global_key(security.as_str().unwrap(), "Security"), "AAPL.US", "the canonical symbol");
    assert_eq!(global_key(quote.as_str().unwrap(), "Quote"), "AAPL.US");
    assert_eq!(&ids["security"]["quote"]["id"], quote, "one quote, one id, however it is reached");

    let node = |id: &Value| app.data(token, NODE, json!({ "id": id }));
    assert_eq!(node(me).await["node"], json!({ "__typename": "User", "id": me, "email": user.email }));
    assert_eq!(
        node(&tx["id"]).await["node"],
        json!({ "__typename": "Transaction", "id": tx["id"], "amount": "1200.00", "user": { "id": me } })
    );
    assert_eq!(node(security).await["node"], json!({ "__typename": "Security", "id": security, "symbol": "AAPL.US" }));
    assert_eq!(node(quote).await["node"], json!({ "__typename": "Quote", "id": quote, "symbol": "AAPL.US" }));

    // `nodes`: in the order asked, one asked twice answering twice.
    let asked = json!([quote, tx["id"], security, me, quote]);
    let nodes = app.data(token, NODES, json!({ "ids": asked })).await["nodes"].clone();
    let typenames: Vec<&str> = nodes.as_array().unwrap().iter().map(|n| n["__typename"].as_str().unwrap()).collect();
    assert_eq!(typenames, ["Quote", "Transaction", "Security", "User", "Quote"]);
    let got: Vec<&Value> = nodes.as_array().unwrap().iter().map(|n| &n["id"]).collect();
    assert_eq!(json!(got), asked);
}

/// Transactions' ids changed from bare UUIDs to global ids: what took a UUID takes either.
async fn transaction_arguments_take_either_id_form(app: TestApp) {
    let user = app.new_user().await;
    let token = Some(user.access_token.as_str());
    let tx = create_one(&app, &user.access_token, rent()).await;
    let global = tx["id"].as_str().unwrap().to_owned();
    let uuid = global_key(&global, "Transaction");
    for id in [&global, &uuid] {
        let read = app.data(token, "query($id: ID!) { transaction(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(read["transaction"]["id"], global.as_str(), "read by {id}");
        let update = "mutation($id: ID!) { updateTransaction(id: $id, input: { description: \"rent\" }) { id } }";
        assert_eq!(app.data(token, update, json!({ "id": id })).await["updateTransaction"]["id"], global.as_str());
    }
    // Another type's global id is refused by name, not looked up.
    let wrong = app.gql(token, "query($id: ID!) { transaction(id: $id) { id } }", json!({ "id": user.id })).await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    // A delete answers the global id, to evict it from a client's cache.
    let delete = "mutation($id: ID!) { deleteTransaction(id: $id) }";
    assert_eq!(app.data(token, delete, json!({ "id": uuid })).await["deleteTransaction"], global.as_str());
}

async fn other_users_nodes_are_not_found_like_missing_ones(app: TestApp) {
    let (owner, other) = (app.new_user().await, app.new_user().await);
    let tx = create_one(&app, &owner.access_token, rent()).await;
    let token = Some(other.access_token.as_str());
    let missing_tx = global_id("Transaction", &uuid::Uuid::now_v7().to_string());
    let missing_user = global_id("User", &uuid::Uuid::now_v7().to_string());
    for (theirs, missing) in [(&tx["id"], &json!(missing_tx)), (&json!(owner.id), &json!(missing_user))] {
        let seen = stable(app.gql(token, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": theirs })).await);
        assert_eq!(seen["data"], json!({ "node": null }), "{seen}");
        assert_eq!(seen["errors"][0]["path"], json!(["node"]), "{seen}");
        assert_eq!(seen["errors"][0]["extensions"], json!({ "code": "NOT_FOUND" }), "{seen}");
        // Exactly as for an id that names nothing (the message names no owner).
        let absent = stable(app.gql(token, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": missing })).await);
        let message = |body: &Value| body["errors"][0]["message"].as_str().unwrap().replace(&key_of(body), "<id>");
        assert_eq!(message(&seen), message(&absent), "{seen} vs {absent}");
    }
    // In `nodes`, the other user's transaction is null at its index; the caller's own answers.
    let mine = app.data(token, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let body = stable(app.gql(token, NODES, json!({ "ids": [mine, tx["id"]] })).await);
    assert_eq!(body["data"], json!({ "nodes": [{ "__typename": "User", "id": mine }, null] }), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["nodes", 1]), "{body}");
    assert_eq!(error_code(&body), "NOT_FOUND");
    // Without credentials, the personal ones are UNAUTHENTICATED; the market's answer.
    let anonymous = app.gql(None, NODES, json!({ "ids": [tx["id"], global_id("Security", "AAPL.US")] })).await;
    assert_eq!(anonymous["data"]["nodes"][0], Value::Null, "{anonymous}");
    assert_eq!(anonymous["data"]["nodes"][1]["__typename"], "Security", "{anonymous}");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

/// The key a NOT_FOUND message may quote (a transaction's UUID), to compare messages.
fn key_of(body: &Value) -> String {
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    message.split('`').nth(1).unwrap_or("<none>").to_owned()
}

backend_tests!(
    node_and_nodes_fetch_every_type,
    transaction_arguments_take_either_id_form,
    other_users_nodes_are_not_found_like_missing_ones,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_bad_user_input() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let user = app.new_user().await;
    let token = Some(user.access_token.as_str());
    let malformed = [
        "not an id".to_owned(),
        user.uuid.clone(),                      // a bare UUID is not a global id
        global_id("Planet", "1"),               // no such type
        global_id("Transaction", "not-a-uuid"), // a type with a malformed key
        global_id("Security", "$$$"),
        String::new(),
    ];
    for id in &malformed {
        let body = app.gql(token, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{id}: {body}");
        assert_eq!(body["data"], json!({ "node": null }), "{id}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "id", "{body}");
        // A malformed id fails `nodes` as a whole: the argument is wrong, not one lookup.
        let ids = json!([user.id, id]);
        let body = app.gql(token, NODES, json!({ "ids": ids })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{id}: {body}");
        assert_eq!(body["data"], Value::Null, "`nodes` is non-null: {body}");
    }
    let too_many: Vec<String> = (0..101).map(|_| user.id.clone()).collect();
    let body = app.gql(token, NODES, json!({ "ids": too_many })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("at most 100"), "{body}");
    let hundred: Vec<String> = (0..100).map(|_| user.id.clone()).collect();
    let body = app.gql(token, NODES, json!({ "ids": hundred })).await;
    assert_eq!(body["data"]["nodes"].as_array().map(Vec::len), Some(100), "{body}");
    assert_eq!(body["extensions"]["cost"], 100, "one object per id");
}

/// A quote's id is its instrument's, whichever way it is reached: `quote`, `quotes`,
/// `Security.quote` and every live update, so a normalised cache merges them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_has_one_id_over_queries_and_subscriptions() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_SIM_TICKS_PER_SEC", "10")]).await.unwrap();
    let user = app.new_user().await;
    let query = r#"{ quote(symbol: "crypto:btcusdt") { id } quotes(symbols: ["CRYPTO:BTCUSDT"]) { id }
                     security(symbol: "CRYPTO:BTCUSDT") { id quote { id } } }"#;
    let data = app.data(Some(&user.access_token), query, json!({})).await;
    let id = data["quote"]["id"].clone();
    assert_eq!(global_key(id.as_str().unwrap(), "Quote"), "CRYPTO:BTCUSDT");
    assert_eq!(data["quotes"][0]["id"], id);
    assert_eq!(data["security"]["quote"]["id"], id);
    assert_ne!(data["security"]["id"], id, "a global id names one object of one type");

    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    ws.subscribe("live", r#"subscription { quotes(symbols: ["Crypto:BtcUsdt"]) { id symbol } }"#).await;
    // The current quote, then changes: each carries the same id.
    for _ in 0..2 {
        let message = loop {
            let message = ws.next_json().await;
            if message["type"] == "next" {
                break message;
            }
        };
        assert_eq!(message["payload"]["data"]["quotes"], json!({ "id": id, "symbol": "CRYPTO:BTCUSDT" }), "{message}");
    }
}
