//! Creating, reading, updating and deleting transactions: every field read back, defaults,
//! exact decimals, validation, authentication, partial updates, and ownership.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::{CREATE, TX_FIELDS, assert_error, create_many, create_one, id_of, page, ts};
use crate::helpers::*;

const GET: &str = "query($id: ID!) {
  transaction(id: $id) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateTransactionInput!) {
  updateTransaction(id: $id, input: $input) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const DELETE: &str = "mutation($id: ID!) { deleteTransaction(id: $id) }";

async fn get(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql(Some(token), GET, json!({ "id": id })).await
}

// ---------------------------------------------------------------------------------------------
// Create and read back
// ---------------------------------------------------------------------------------------------

async fn create_and_read_back_every_field(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();

    let before = Utc::now() - Duration::seconds(1);
    let created = create_one(
        &app,
        token,
        json!({
            "amount": "2500.89", "currency": "eur", "kind": "DEBIT", "status": "PENDING",
            "description": "  March rent  ", "category": "housing", "occurredAt": "2026-03-01T12:34:56.789Z",
        }),
    )
    .await;
    let after = Utc::now() + Duration::seconds(1);
    assert_eq!(created["amount"], "2500.89");
    assert_eq!(created["currency"], "EUR", "currency is upper-cased");
    assert_eq!(created["kind"], "DEBIT");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["description"], "March rent", "text is trimmed");
    assert_eq!(created["category"], "housing");
    assert_eq!(
        ts(&created["occurredAt"]),
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 34, 56).unwrap() + Duration::milliseconds(789)
    );
    let created_at = ts(&created["createdAt"]);
    assert!(before <= created_at && created_at <= after, "createdAt {created_at} is now");
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let uuid = global_key(created["id"].as_str().unwrap(), "Transaction");
    uuid::Uuid::parse_str(&uuid).expect("id is the global id of a UUID");

    // Read back by id: every field identical, and the owner resolves.
    let id = id_of(&created);
    let body = app
        .gql(
            Some(token),
            &format!("query($id: ID!) {{ transaction(id: $id) {{ {TX_FIELDS} user {{ id email }} }} }}"),
            json!({ "id": id }),
        )
        .await;
    let read = &body["data"]["transaction"];
    assert!(body.get("errors").is_none(), "{body}");
    for field in TX_FIELDS.split(' ') {
        assert_eq!(read[field], created[field], "field {field}");
    }
    assert_eq!(read["user"]["id"], user.id.as_str());
    assert_eq!(read["user"]["email"], user.email.as_str());

    // And through the listing (edges and nodes), with the owner too.
    let data = app
        .data(
            Some(token),
            &format!(
                "{{ transactions {{ totalCount edges {{ node {{ {TX_FIELDS} user {{ id email }} }} }} nodes {{ {TX_FIELDS} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let listed = &data["transactions"];
    assert_eq!(listed["totalCount"], 1);
    for field in TX_FIELDS.split(' ') {
        assert_eq!(listed["edges"][0]["node"][field], created[field], "edges field {field}");
        assert_eq!(listed["nodes"][0][field], created[field], "nodes field {field}");
    }
    assert_eq!(listed["edges"][0]["node"]["user"]["id"], user.id.as_str());
    assert_eq!(listed["edges"][0]["node"]["user"]["email"], user.email.as_str());
}

async fn create_applies_defaults(app: TestApp) {
    let user = app.new_user().await;
    let before = Utc::now() - Duration::seconds(1);
    let created = create_one(&app, &user.access_token, json!({ "amount": "42", "kind": "CREDIT" })).await;
    let after = Utc::now() + Duration::seconds(1);
    assert_eq!(created["amount"], "42.00", "USD amounts are shown with 2 digits");
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["kind"], "CREDIT");
    assert_eq!(created["status"], "SUCCESS");
    assert_eq!(created["description"], Value::Null);
    assert_eq!(created["category"], Value::Null);
    let occurred_at = ts(&created["occurredAt"]);
    assert!(before <= occurred_at && occurred_at <= after, "occurredAt {occurred_at} defaults to now");

    // Blank text is no text.
    let blank = create_one(
        &app,
        &user.access_token,
        json!({ "amount": "1", "kind": "DEBIT", "description": "   ", "category": "" }),
    )
    .await;
    assert_eq!(blank["description"], Value::Null);
    assert_eq!(blank["category"], Value::Null);
}

async fn decimals_round_trip_exactly(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    // (input amount, currency, expected amount)
    let cases = [
        ("2500.89", "USD", "2500.89"),
        ("0.01", "USD", "0.01"),
        ("999999999.99", "USD", "999999999.99"),
        ("1000000000000", "USD", "1000000000000.00"),
        ("42", "USD", "42.00"),
        ("42.5", "USD", "42.50"),
        ("12.340", "USD", "12.34"),
        ("500", "JPY", "500"),
        ("500.00", "jpy", "500"),
        ("1.234", "BHD", "1.234"),
        ("7", "BHD", "7.000"),
        ("0.0001", "CLF", "0.0001"),
    ];
    let inputs: Vec<Value> = cases
        .iter()
        .map(|(amount, currency, _)| json!({ "amount": amount, "currency": currency, "kind": "CREDIT" }))
        .collect();
    let created = create_many(&app, token, &inputs).await;
    for ((input, currency, expected), row) in cases.iter().zip(&created) {
        assert_eq!(row["amount"], *expected, "{input} {currency}");
        assert_eq!(row["currency"], currency.to_ascii_uppercase());
        // Read back individually: the stored value is exact.
        let body = get(&app, token, &id_of(row)).await;
        assert_eq!(body["data"]["transaction"]["amount"], *expected, "{input} {currency} read back: {body}");
    }
}

async fn occurred_at_with_an_offset_is_stored_in_utc(app: TestApp) {
    let user = app.new_user().await;
    let created = create_one(
        &app,
        &user.access_token,
        json!({ "amount": "1", "kind": "DEBIT", "occurredAt": "2026-03-01T23:30:00.123456-02:00" }),
    )
    .await;
    let expected = Utc.with_ymd_and_hms(2026, 3, 2, 1, 30, 0).unwrap() + Duration::microseconds(123_456);
    assert_eq!(ts(&created["occurredAt"]), expected);
    let body = get(&app, &user.access_token, &id_of(&created)).await;
    assert_eq!(ts(&body["data"]["transaction"]["occurredAt"]), expected, "microseconds survive storage");
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

async fn create_rejects_invalid_input(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    // (input, the `extensions.field` expected when the server names one)
    let cases: Vec<(Value, Option<&str>)> = vec![
        (json!({ "amount": "12.345", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "1.5", "currency": "JPY", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "1.2345", "currency": "BHD", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "0", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "0.00", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "-5", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "1000000000000.01", "kind": "CREDIT" }), Some("amount")),
        (json!({ "amount": "abc", "kind": "CREDIT" }), None),
        (json!({ "amount": "1e3", "kind": "CREDIT" }), None),
        (json!({ "amount": "", "kind": "CREDIT" }), None),
        (json!({ "amount": "1,000.00", "kind": "CREDIT" }), None),
        (json!({ "amount": " 5", "kind": "CREDIT" }), None),
        (json!({ "amount": 12.5, "kind": "CREDIT" }), None),
        (json!({ "amount": 12, "kind": "CREDIT" }), None),
        (json!({ "amount": "5", "currency": "XXX", "kind": "CREDIT" }), Some("currency")),
        (json!({ "amount": "5", "currency": "DOLLARS", "kind": "CREDIT" }), Some("currency")),
        (json!({ "amount": "5", "currency": "", "kind": "CREDIT" }), Some("currency")),
        (json!({ "amount": "5", "currency": "XAU", "kind": "CREDIT" }), Some("currency")),
        (json!({ "amount": "5", "kind": "CREDIT", "description": "x".repeat(501) }), Some("description")),
        (json!({ "amount": "5", "kind": "CREDIT", "description": "bell\u{7}" }), Some("description")),
        (json!({ "amount": "5", "kind": "CREDIT", "category": "c".repeat(101) }), Some("category")),
        (json!({ "amount": "5", "kind": "SIDEWAYS" }), None),
        (json!({ "amount": "5", "kind": "CREDIT", "status": "DONE" }), None),
        (json!({ "amount": "5", "kind": "CREDIT", "occurredAt": "yesterday" }), None),
        (json!({ "kind": "CREDIT" }), None),
    ];
    for (input, field) in &cases {
        let body = app.gql(Some(token), CREATE, json!({ "input": input })).await;
        assert_error(&body, "BAD_USER_INPUT");
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["extensions"]["field"], *field, "{input}: {body}");
        }
    }

    // A JSON number written in the query itself is refused too, not just in variables.
    let body = app
        .gql(Some(token), "mutation { createTransaction(input: { amount: 12.5, kind: CREDIT }) { id } }", json!({}))
        .await;
    assert_error(&body, "BAD_USER_INPUT");

    // Nothing was stored.
    let data = app.data(Some(token), "{ transactions { totalCount } }", json!({})).await;
    assert_eq!(data["transactions"]["totalCount"], 0);

    // The boundaries themselves are accepted: 500 characters of description, 100 of category.
    let ok = create_one(
        &app,
        token,
        json!({ "amount": "5", "kind": "CREDIT", "description": "d".repeat(500), "category": "c".repeat(100) }),
    )
    .await;
    assert_eq!(ok["description"].as_str().unwrap().chars().count(), 500);
    assert_eq!(ok["category"].as_str().unwrap().chars().count(), 100);
    // Multi-line descriptions are fine; 500 characters means characters, not bytes.
    let ok = create_one(&app, token, json!({ "amount": "5", "kind": "CREDIT", "description": "é".repeat(500) })).await;
    assert_eq!(ok["description"].as_str().unwrap().chars().count(), 500);
    let ok = create_one(&app, token, json!({ "amount": "5", "kind": "CREDIT", "description": "line 1\nline 2" })).await;
    assert_eq!(ok["description"], "line 1\nline 2");
}

async fn ledger_requires_authentication(app: TestApp) {
    let user = app.new_user().await;
    let created = create_one(&app, &user.access_token, json!({ "amount": "5", "kind": "CREDIT" })).await;
    let id = id_of(&created);

    let body = app.gql(None, CREATE, json!({ "input": { "amount": "5", "kind": "CREDIT" } })).await;
    assert_error(&body, "UNAUTHENTICATED");
    assert_error(&app.gql(None, GET, json!({ "id": id })).await, "UNAUTHENTICATED");
    assert_error(&app.gql(None, UPDATE, json!({ "id": id, "input": { "amount": "6" } })).await, "UNAUTHENTICATED");
    assert_error(&app.gql(None, DELETE, json!({ "id": id })).await, "UNAUTHENTICATED");
    assert_error(&app.gql(None, "{ transactions { totalCount } }", json!({})).await, "UNAUTHENTICATED");
    assert_error(&app.gql(Some("not-a-jwt"), GET, json!({ "id": id })).await, "UNAUTHENTICATED");

    // Nothing changed.
    let body = get(&app, &user.access_token, &id).await;
    assert_eq!(body["data"]["transaction"], created);
    let data = app.data(Some(&user.access_token), "{ transactions { totalCount } }", json!({})).await;
    assert_eq!(data["transactions"]["totalCount"], 1);
}

// ---------------------------------------------------------------------------------------------
// Update and delete
// ---------------------------------------------------------------------------------------------

async fn update_changes_only_the_given_fields(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let original = create_one(
        &app,
        token,
        json!({
            "amount": "10.00", "currency": "USD", "kind": "DEBIT", "status": "PENDING",
            "description": "groceries", "category": "food", "occurredAt": "2026-02-01T10:00:00Z",
        }),
    )
    .await;
    let id = id_of(&original);
    // The update must be stamped later than the creation: wait until the clock has moved on
    // past the creation stamp by more than the microsecond timestamps are kept to.
    let created = ts(&original["updatedAt"]);
    eventually("the clock passes the creation's millisecond", || Utc::now() > created + Duration::milliseconds(1))
        .await;

    // Only the amount.
    let data = app.data(Some(token), UPDATE, json!({ "id": id, "input": { "amount": "99.5" } })).await;
    let updated = &data["updateTransaction"];
    assert_eq!(updated["amount"], "99.50");
    for field in ["id", "currency", "kind", "status", "description", "category", "occurredAt", "createdAt"] {
        assert_eq!(updated[field], original[field], "{field} is kept");
    }
    assert!(ts(&updated["updatedAt"]) > ts(&original["updatedAt"]), "updatedAt moves: {updated}");
    assert_eq!(get(&app, token, &id).await["data"]["transaction"], *updated, "the update is stored");

    // description: null clears it; category, absent, is kept.
    let data = app.data(Some(token), UPDATE, json!({ "id": id, "input": { "description": null } })).await;
    assert_eq!(data["updateTransaction"]["description"], Value::Null);
    assert_eq!(data["updateTransaction"]["category"], "food");
    assert_eq!(data["updateTransaction"]["amount"], "99.50");
    // category: null clears it too.
    let data = app.data(Some(token), UPDATE, json!({ "id": id, "input": { "category": null } })).await;
    assert_eq!(data["updateTransaction"]["category"], Value::Null);
    assert_eq!(data["updateTransaction"]["description"], Value::Null);

    // The other fields, all at once.
    let data = app
        .data(
            Some(token),
            UPDATE,
            json!({ "id": id, "input": {
                "kind": "CREDIT", "status": "FAILED", "description": " refund ", "category": "returns",
                "occurredAt": "2026-02-03T00:00:00+01:00",
            } }),
        )
        .await;
    let updated = &data["updateTransaction"];
    assert_eq!(updated["kind"], "CREDIT");
    assert_eq!(updated["status"], "FAILED");
    assert_eq!(updated["description"], "refund");
    assert_eq!(updated["category"], "returns");
    assert_eq!(ts(&updated["occurredAt"]), Utc.with_ymd_and_hms(2026, 2, 2, 23, 0, 0).unwrap());
    assert_eq!(updated["amount"], "99.50");
    assert_eq!(updated["currency"], "USD");
    assert_eq!(updated["createdAt"], original["createdAt"]);

    // An empty input changes nothing but updatedAt.
    let data = app.data(Some(token), UPDATE, json!({ "id": id, "input": {} })).await;
    for field in TX_FIELDS.split(' ').filter(|f| *f != "updatedAt") {
        assert_eq!(data["updateTransaction"][field], updated[field], "{field}");
    }

    // Invalid values are refused and nothing changes.
    let snapshot = get(&app, token, &id).await["data"]["transaction"].clone();
    for input in [
        json!({ "amount": "0" }),
        json!({ "amount": "-1.00" }),
        json!({ "amount": "1.001" }),
        json!({ "amount": 3 }),
        json!({ "currency": "XXX" }),
        json!({ "description": "x".repeat(501) }),
        json!({ "category": "c".repeat(101) }),
    ] {
        let body = app.gql(Some(token), UPDATE, json!({ "id": id, "input": input })).await;
        assert_error(&body, "BAD_USER_INPUT");
    }
    assert_eq!(get(&app, token, &id).await["data"]["transaction"], snapshot);
}

async fn update_revalidates_amount_when_currency_changes(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(
        &app,
        token,
        &[
            json!({ "amount": "12.34", "kind": "DEBIT" }),
            json!({ "amount": "12.00", "kind": "DEBIT" }),
            json!({ "amount": "1.234", "currency": "BHD", "kind": "DEBIT" }),
        ],
    )
    .await;
    let (cents, whole, fils) = (id_of(&rows[0]), id_of(&rows[1]), id_of(&rows[2]));

    // 12.34 USD cannot become 12.34 JPY.
    let body = app.gql(Some(token), UPDATE, json!({ "id": cents, "input": { "currency": "JPY" } })).await;
    assert_error(&body, "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "amount", "{body}");
    assert_eq!(get(&app, token, &cents).await["data"]["transaction"], rows[0], "unchanged after the refusal");
    // ... nor 12.34 BHD-with-3-digits the other way round: 1.234 BHD cannot become USD.
    let body = app.gql(Some(token), UPDATE, json!({ "id": fils, "input": { "currency": "USD" } })).await;
    assert_error(&body, "BAD_USER_INPUT");
    assert_eq!(get(&app, token, &fils).await["data"]["transaction"], rows[2]);

    // To another 2-digit currency: fine, amount kept.
    let data = app.data(Some(token), UPDATE, json!({ "id": cents, "input": { "currency": "eur" } })).await;
    assert_eq!(data["updateTransaction"]["currency"], "EUR");
    assert_eq!(data["updateTransaction"]["amount"], "12.34");
    // A new amount and currency together are validated together.
    let data =
        app.data(Some(token), UPDATE, json!({ "id": cents, "input": { "currency": "JPY", "amount": "1234" } })).await;
    assert_eq!(data["updateTransaction"]["currency"], "JPY");
    assert_eq!(data["updateTransaction"]["amount"], "1234");
    // A new amount alone is validated against the stored currency (now JPY).
    let body = app.gql(Some(token), UPDATE, json!({ "id": cents, "input": { "amount": "5.5" } })).await;
    assert_error(&body, "BAD_USER_INPUT");
    // 12.00 USD has no fraction: it may become 12 JPY, and 12.000 BHD.
    let data = app.data(Some(token), UPDATE, json!({ "id": whole, "input": { "currency": "JPY" } })).await;
    assert_eq!(data["updateTransaction"]["amount"], "12");
    let data = app.data(Some(token), UPDATE, json!({ "id": whole, "input": { "currency": "BHD" } })).await;
    assert_eq!(data["updateTransaction"]["amount"], "12.000");
    assert_eq!(data["updateTransaction"]["currency"], "BHD");
}

async fn delete_then_not_found(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(
        &app,
        token,
        &[json!({ "amount": "1", "kind": "DEBIT" }), json!({ "amount": "2", "kind": "DEBIT" })],
    )
    .await;
    let (doomed, kept) = (id_of(&rows[0]), id_of(&rows[1]));

    let data = app.data(Some(token), DELETE, json!({ "id": doomed })).await;
    assert_eq!(data["deleteTransaction"], doomed.as_str());
    assert_error(&get(&app, token, &doomed).await, "NOT_FOUND");
    assert_error(&app.gql(Some(token), DELETE, json!({ "id": doomed })).await, "NOT_FOUND");
    assert_error(&app.gql(Some(token), UPDATE, json!({ "id": doomed, "input": { "amount": "3" } })).await, "NOT_FOUND");

    // Only that one went.
    let data = app.data(Some(token), "{ transactions { totalCount nodes { id } } }", json!({})).await;
    assert_eq!(data["transactions"]["totalCount"], 1);
    assert_eq!(data["transactions"]["nodes"][0]["id"], kept.as_str());

    // Malformed ids are the client's mistake; well-formed unknown ones are not found.
    for bad in ["not-a-uuid", "", "123", "00000000-0000-0000-0000-00000000000g"] {
        assert_error(&get(&app, token, bad).await, "BAD_USER_INPUT");
        assert_error(&app.gql(Some(token), DELETE, json!({ "id": bad })).await, "BAD_USER_INPUT");
        let body = app.gql(Some(token), UPDATE, json!({ "id": bad, "input": { "amount": "3" } })).await;
        assert_error(&body, "BAD_USER_INPUT");
    }
    let random = uuid::Uuid::new_v4().to_string();
    assert_error(&get(&app, token, &random).await, "NOT_FOUND");
    assert_error(&app.gql(Some(token), DELETE, json!({ "id": random })).await, "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// Ownership
// ---------------------------------------------------------------------------------------------

/// The body with `id` replaced by a placeholder, to compare the shape of two errors.
/// `body` without `id` and without its trace id (each request's own).
fn redact(body: &Value, id: &str) -> String {
    untraced(body.clone()).to_string().replace(id, "<id>")
}

async fn other_users_transactions_are_invisible(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let original = create_one(
        &app,
        &alice.access_token,
        json!({ "amount": "75.00", "kind": "DEBIT", "category": "food", "description": "alice's", "occurredAt": "2026-02-01T00:00:00Z" }),
    )
    .await;
    let id = id_of(&original);
    // Messages quote the UUID inside a global id.
    let (uuid, random_uuid) = (global_key(&id, "Transaction"), uuid::Uuid::new_v4().to_string());
    let random = global_id("Transaction", &random_uuid);

    // Bob's answer for Alice's id is exactly his answer for an id that does not exist.
    type Vars = fn(&str) -> Value;
    let requests: [(&str, Vars); 3] = [
        (GET, |id| json!({ "id": id })),
        (UPDATE, |id| json!({ "id": id, "input": { "amount": "1.00", "description": null } })),
        (DELETE, |id| json!({ "id": id })),
    ];
    for (query, vars) in requests {
        let theirs = app.gql(Some(&bob.access_token), query, vars(&id)).await;
        let missing = app.gql(Some(&bob.access_token), query, vars(&random)).await;
        assert_error(&theirs, "NOT_FOUND");
        assert_error(&missing, "NOT_FOUND");
        assert_eq!(redact(&theirs, &uuid), redact(&missing, &random_uuid), "indistinguishable from a missing id");
    }

    // Alice's cursors position Bob's listing but show him nothing of hers.
    let alice_page = page(&app, &alice.access_token, json!({ "first": 1, "orderBy": "OCCURRED_AT_DESC" })).await;
    let cursor = alice_page.end.as_str().unwrap().to_owned();
    for vars in [
        json!({ "first": 10, "after": cursor, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "last": 10, "before": cursor, "orderBy": "OCCURRED_AT_DESC" }),
    ] {
        let bobs = page(&app, &bob.access_token, vars).await;
        assert!(bobs.ids.is_empty() && bobs.total == 0, "{bobs:?}");
    }

    // Alice's transaction is untouched.
    let body = get(&app, &alice.access_token, &id).await;
    assert_eq!(body["data"]["transaction"], original);

    // Bob lists nothing, whatever he asks.
    for filter in [json!(null), json!({ "category": "food" }), json!({ "kind": "DEBIT", "currency": "USD" })] {
        let data = app
            .data(
                Some(&bob.access_token),
                "query($f: TransactionFilterInput) { transactions(filter: $f, first: 100) { totalCount edges { node { id } } nodes { id } pageInfo { hasNextPage } } }",
                json!({ "f": filter }),
            )
            .await;
        assert_eq!(
            data["transactions"],
            json!({ "totalCount": 0, "edges": [], "nodes": [], "pageInfo": { "hasNextPage": false } })
        );
    }
    let data = app
        .data(
            Some(&bob.access_token),
            "{ transactionAnalytics { count totalDebit currencies byCategory { category } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["transactionAnalytics"],
        json!({ "count": 0, "totalDebit": "0.00", "currencies": [], "byCategory": [] })
    );

    // Alice still sees hers.
    let data = app
        .data(Some(&alice.access_token), "{ transactions { totalCount } transactionAnalytics { count } }", json!({}))
        .await;
    assert_eq!(data["transactions"]["totalCount"], 1);
    assert_eq!(data["transactionAnalytics"]["count"], 1);
}

crate::backend_tests!(
    create_and_read_back_every_field,
    create_applies_defaults,
    decimals_round_trip_exactly,
    occurred_at_with_an_offset_is_stored_in_utc,
    create_rejects_invalid_input,
    ledger_requires_authentication,
    update_changes_only_the_given_fields,
    update_revalidates_amount_when_currency_changes,
    delete_then_not_found,
    other_users_transactions_are_invisible,
);
