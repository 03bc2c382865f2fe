//! Retried writes: a client that lost an answer (an outage between COMMIT and the response)
//! sends the write again with the same idempotency key and must get the first answer back,
//! with exactly one row written, whether the retries come one after another or 20 at once, on
//! SQLite and PostgreSQL.

use chrono::Utc;
use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::*;

const CREATE: &str = "mutation($input: CreateTransactionInput!) {
  createTransaction(input: $input) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateTransactionInput!) {
  updateTransaction(id: $id, input: $input) { id amount currency description updatedAt }
}";
const DELETE: &str = "mutation($id: ID!, $key: String) { deleteTransaction(id: $id, idempotencyKey: $key) }";

/// POSTs a GraphQL request with an optional `Idempotency-Key` header.
async fn post(app: &TestApp, token: &str, header: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(key) = header {
        request = request.header("Idempotency-Key", key);
    }
    // Without its trace id: a replay is another request, with a trace of its own.
    untraced(request.send().await.expect("request reaches the server").json().await.expect("JSON body"))
}

async fn count(app: &TestApp, token: &str) -> i64 {
    app.data(Some(token), "{ transactions { totalCount } }", json!({})).await["transactions"]["totalCount"]
        .as_i64()
        .unwrap_or(-1)
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The same key and input, by header and by input field: the first result, one row.
async fn same_key_same_input_returns_the_first_result(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let input = json!({ "amount": "12.34", "kind": "DEBIT", "description": "rent" });

    let header_key = key();
    let first = post(&app, token, Some(&header_key), CREATE, json!({ "input": input })).await;
    assert!(first.get("errors").is_none(), "{first}");
    for _ in 0..3 {
        let again = post(&app, token, Some(&header_key), CREATE, json!({ "input": input })).await;
        assert_eq!(again, first, "a replay answers exactly as the first time");
    }
    // The same input written differently is the same request: 12.340 is 12.34, usd is USD.
    let respelled = json!({ "amount": "12.340", "currency": "usd", "kind": "DEBIT", "description": "  rent " });
    let again = post(&app, token, Some(&header_key), CREATE, json!({ "input": respelled })).await;
    assert_eq!(again, first);
    assert_eq!(count(&app, token).await, 1);

    let field_key = key();
    let with_field = json!({ "amount": "5", "kind": "CREDIT", "idempotencyKey": field_key });
    let first = app.data(Some(token), CREATE, json!({ "input": with_field })).await;
    let again = app.data(Some(token), CREATE, json!({ "input": with_field })).await;
    assert_eq!(again, first);
    // The header and the field with the same key are the same key.
    let again = post(&app, token, Some(&field_key), CREATE, json!({ "input": with_field })).await;
    assert_eq!(again["data"], first);
    assert_eq!(count(&app, token).await, 2);

    // Updates and deletes replay too: the first result, not a second change or NOT_FOUND.
    let id = first["createTransaction"]["id"].as_str().unwrap_or_default().to_owned();
    let update_key = key();
    let change = json!({ "id": id, "input": { "description": "changed", "idempotencyKey": update_key } });
    let updated = app.data(Some(token), UPDATE, change.clone()).await;
    app.data(Some(token), UPDATE, json!({ "id": id, "input": { "description": "changed again" } })).await;
    let replayed = app.data(Some(token), UPDATE, change).await;
    assert_eq!(replayed, updated, "the first update's result, even though the row changed since");
    let delete_key = key();
    let deleted = app.data(Some(token), DELETE, json!({ "id": id, "key": delete_key })).await;
    let replayed = app.data(Some(token), DELETE, json!({ "id": id, "key": delete_key })).await;
    assert_eq!(replayed, deleted);
    assert_eq!(count(&app, token).await, 1);
    // Without a key, a second delete is NOT_FOUND as before.
    let body = app.gql(Some(token), DELETE, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

async fn same_key_different_input_is_bad_user_input(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let k = key();
    let first = app
        .data(Some(token), CREATE, json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k } }))
        .await;
    for other in [
        json!({ "amount": "2", "kind": "DEBIT", "idempotencyKey": k }),
        json!({ "amount": "1", "kind": "CREDIT", "idempotencyKey": k }),
        json!({ "amount": "1", "kind": "DEBIT", "currency": "EUR", "idempotencyKey": k }),
        json!({ "amount": "1", "kind": "DEBIT", "category": "x", "idempotencyKey": k }),
    ] {
        let body = app.gql(Some(token), CREATE, json!({ "input": other })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "idempotencyKey", "{body}");
    }
    // The same key on another mutation is a different request too.
    let id = first["createTransaction"]["id"].clone();
    let body = app.gql(Some(token), DELETE, json!({ "id": id, "key": k })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(count(&app, token).await, 1, "nothing written by the refused requests");
    // A refused write leaves no key behind: the same key works once the input is valid.
    let k2 = key();
    let body = app
        .gql(Some(token), CREATE, json!({ "input": { "amount": "1.001", "kind": "DEBIT", "idempotencyKey": k2 } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = app
        .gql(Some(token), UPDATE, json!({ "id": uuid::Uuid::now_v7().to_string(), "input": { "idempotencyKey": k2 } }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    app.data(Some(token), CREATE, json!({ "input": { "amount": "3", "kind": "DEBIT", "idempotencyKey": k2 } })).await;
    assert_eq!(count(&app, token).await, 2);
}

/// 20 requests with one key at once: one row, and all 20 answered with its id.
async fn concurrent_duplicates_create_one_row(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    for round in 0..3 {
        let k = key();
        let input = json!({ "amount": "99.99", "kind": "DEBIT", "description": format!("round {round}") });
        // Half by header, half by input field: the same key either way.
        let answers = join_all((0..20).map(|i| {
            let (header, input) = if i % 2 == 0 {
                (Some(k.as_str()), input.clone())
            } else {
                let mut with_field = input.clone();
                with_field["idempotencyKey"] = json!(k);
                (None, with_field)
            };
            let app = &app;
            async move { post(app, token, header, CREATE, json!({ "input": input })).await }
        }))
        .await;
        let ids: Vec<&Value> = answers.iter().map(|a| &a["data"]["createTransaction"]["id"]).collect();
        for answer in &answers {
            assert!(answer.get("errors").is_none(), "round {round}: {answer}");
        }
        assert!(ids.iter().all(|id| *id == ids[0] && id.is_string()), "round {round}: {ids:?}");
        assert!(answers.iter().all(|a| a == &answers[0]), "round {round}: identical answers");
        assert_eq!(count(&app, token).await, round + 1, "round {round}");
    }
}

/// 20 writers past the replay check before any has committed (held at a barrier), so that all
/// but one meet the winner at the key's unique constraint, wait for its commit, and answer
/// with its result. Over HTTP the requests may arrive spread out enough to take the replay
/// path instead; this takes the conflict path every time.
async fn concurrent_claims_wait_for_the_winner(app: TestApp) {
    use finql::ledger::{
        idempotency::IdempotencyKey,
        money::{Currency, Money},
        service::{Kind, NewTransaction},
    };
    let user = app.new_user().await;
    let user_id: uuid::Uuid = user.uuid.parse().expect("user id");
    for round in 0..3 {
        let k = IdempotencyKey::parse(&key(), "idempotencyKey").expect("key");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let writers = (0..20).map(|_| {
            let (ledger, barrier, k) = (app.state.ledger.clone(), barrier.clone(), k.clone());
            tokio::spawn(async move {
                let input = NewTransaction {
                    money: Money::new(rust_decimal::Decimal::new(1999, 2), Currency::USD).expect("money"),
                    kind: Kind::Debit,
                    status: None,
                    description: None,
                    category: None,
                    occurred_at: None,
                };
                barrier.wait().await;
                ledger.create(user_id, input, Some(&k)).await.map(|record| record.id)
            })
        });
        let ids: Vec<uuid::Uuid> = join_all(writers)
            .await
            .into_iter()
            .map(|joined| joined.expect("writer").unwrap_or_else(|err| panic!("round {round}: {err:?}")))
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
        assert_eq!(count(&app, &user.access_token).await, round + 1);
    }
}

/// A holder stuck inside its transaction (here: a test holding the key's row uncommitted)
/// makes a duplicate wait 5 s at most, then answer BAD_USER_INPUT, IDEMPOTENCY_IN_PROGRESS.
/// PostgreSQL only: on SQLite the held transaction would lock the whole database.
async fn a_stuck_holder_is_waited_for_a_bounded_time(app: TestApp) {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, TransactionTrait};
    if app.backend == Backend::Sqlite {
        return;
    }
    let user = app.new_user().await;
    let k = key();
    let held = app.state.db.begin().await.expect("begin");
    entity::idempotency_key::ActiveModel {
        user_id: Set(user.uuid.parse().expect("user id")),
        key: Set(k.clone()),
        operation: Set("createTransaction".into()),
        request_hash: Set("0".repeat(64)),
        response: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(&held)
    .await
    .expect("hold the key");
    let started = std::time::Instant::now();
    let body = app
        .gql(
            Some(&user.access_token),
            CREATE,
            json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k } }),
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or("").starts_with("IDEMPOTENCY_IN_PROGRESS"), "{body}");
    assert!(waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(15), "{waited:?}");
    held.rollback().await.expect("rollback");
    // The holder gave up: the key is free, and the write goes through once.
    app.data(
        Some(&user.access_token),
        CREATE,
        json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k } }),
    )
    .await;
    assert_eq!(count(&app, &user.access_token).await, 1);
}

/// Over WebSocket there is no header: the input field is the way, and a key is one key
/// whichever transport carries it.
async fn over_websocket_the_input_field_is_the_key(app: TestApp) {
    use crate::http::ws::{TRANSPORT_WS, Ws};
    let user = app.new_user().await;
    let k = key();
    let mutation = format!(
        "mutation {{ createTransaction(input: {{ amount: \"4.20\", kind: CREDIT, idempotencyKey: \"{k}\" }}) {{ id }} }}"
    );
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(Some(&user.access_token)).await;
    let mut ids = vec![];
    for id in ["1", "2"] {
        ws.subscribe(id, &mutation).await;
        let next = ws.next_json().await;
        assert_eq!(next["type"], "next", "{next}");
        ids.push(next["payload"]["data"]["createTransaction"]["id"].clone());
        assert_eq!(ws.next_json().await, json!({ "type": "complete", "id": id }));
    }
    assert!(ids[0].is_string() && ids[0] == ids[1], "{ids:?}");
    let over_http =
        post(&app, &user.access_token, Some(&k), CREATE, json!({ "input": { "amount": "4.2", "kind": "CREDIT" } }))
            .await;
    assert_eq!(over_http["data"]["createTransaction"]["id"], ids[0], "{over_http}");
    assert_eq!(count(&app, &user.access_token).await, 1);
}

/// Keys are per user: another user's identical key is theirs alone.
async fn keys_are_per_user(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let k = key();
    let input = json!({ "input": { "amount": "7", "kind": "DEBIT" } });
    let a = post(&app, &alice.access_token, Some(&k), CREATE, input.clone()).await;
    let b = post(&app, &bob.access_token, Some(&k), CREATE, input.clone()).await;
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_ne!(a["data"]["createTransaction"]["id"], b["data"]["createTransaction"]["id"]);
    // And Bob's replay never answers with Alice's transaction.
    let b2 = post(&app, &bob.access_token, Some(&k), CREATE, input).await;
    assert_eq!(b2, b);
    assert_eq!(count(&app, &alice.access_token).await, 1);
    assert_eq!(count(&app, &bob.access_token).await, 1);
}

/// Keys match for 24 hours. The key's row is aged in the database (the same as waiting).
async fn expired_keys_do_not_match(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let k = key();
    let input = json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k } });
    let first = app.data(Some(token), CREATE, input.clone()).await;
    let age = |hours: i64| {
        let db = app.state.db.clone();
        let k = k.clone();
        async move {
            entity::idempotency_key::Entity::update_many()
                .col_expr(
                    entity::idempotency_key::Column::CreatedAt,
                    Expr::value(Utc::now() - chrono::Duration::hours(hours)),
                )
                .filter(entity::idempotency_key::Column::Key.eq(k))
                .exec(&db)
                .await
                .expect("age the key");
        }
    };
    age(23).await;
    assert_eq!(app.data(Some(token), CREATE, input.clone()).await, first, "23 h: still the first result");
    age(25).await;
    let second = app.data(Some(token), CREATE, input.clone()).await;
    assert_ne!(second["createTransaction"]["id"], first["createTransaction"]["id"], "25 h: a new write");
    assert_eq!(app.data(Some(token), CREATE, input).await, second, "and the key now names the new one");
    assert_eq!(count(&app, token).await, 2);
    // A different input under an expired key is a new write, not a refusal.
    age(25).await;
    app.data(Some(token), CREATE, json!({ "input": { "amount": "2", "kind": "DEBIT", "idempotencyKey": k } })).await;
    assert_eq!(count(&app, token).await, 3);
}

/// Header and input field together; the header with several mutations; malformed keys.
async fn header_and_input_field(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let (k1, k2) = (key(), key());
    let body = post(
        &app,
        token,
        Some(&k1),
        CREATE,
        json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k2 } }),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "header and field differ: {body}");
    let body = post(
        &app,
        token,
        Some(&k1),
        CREATE,
        json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": k1 } }),
    )
    .await;
    assert!(body.get("errors").is_none(), "header and field agree: {body}");

    // One header, several mutations in one document: refused, nothing written.
    let aliased = "mutation { a: createTransaction(input: { amount: \"1\", kind: DEBIT }) { id } b: createTransaction(input: { amount: \"2\", kind: DEBIT }) { id } }";
    let before = count(&app, token).await;
    let body = post(&app, token, Some(&key()), aliased, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or("").contains("idempotencyKey"), "{body}");
    assert_eq!(count(&app, token).await, before);
    // A fragment hides the count: refused the same way.
    let fragment =
        "mutation { ...W } fragment W on Mutation { createTransaction(input: { amount: \"1\", kind: DEBIT }) { id } }";
    let body = post(&app, token, Some(&key()), fragment, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // Several mutations, each with its own key: fine, and each replays on its own.
    let (ka, kb) = (key(), key());
    let own = format!(
        "mutation {{ a: createTransaction(input: {{ amount: \"1\", kind: DEBIT, idempotencyKey: \"{ka}\" }}) {{ id }} b: createTransaction(input: {{ amount: \"2\", kind: DEBIT, idempotencyKey: \"{kb}\" }}) {{ id }} }}"
    );
    let first = app.data(Some(token), &own, json!({})).await;
    assert_eq!(app.data(Some(token), &own, json!({})).await, first);
    assert_eq!(count(&app, token).await, before + 2);

    // Malformed keys, by header and by field.
    for bad in ["", &"k".repeat(256), "caf\u{e9}"] {
        let body = app
            .gql(Some(token), CREATE, json!({ "input": { "amount": "1", "kind": "DEBIT", "idempotencyKey": bad } }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "field {bad:?}: {body}");
    }
    let body =
        post(&app, token, Some(&"k".repeat(256)), CREATE, json!({ "input": { "amount": "1", "kind": "DEBIT" } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // Non-ASCII bytes in the header are refused, not ignored.
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(b"caf\xe9").expect("header"))
        .json(&json!({ "query": CREATE, "variables": { "input": { "amount": "1", "kind": "DEBIT" } } }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(count(&app, token).await, before + 2);
}

crate::backend_tests!(
    same_key_same_input_returns_the_first_result,
    same_key_different_input_is_bad_user_input,
    concurrent_duplicates_create_one_row,
    concurrent_claims_wait_for_the_winner,
    a_stuck_holder_is_waited_for_a_bounded_time,
    over_websocket_the_input_field_is_the_key,
    keys_are_per_user,
    expired_keys_do_not_match,
    header_and_input_field,
);
