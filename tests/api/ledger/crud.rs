//! The ledger: creating, reading, updating and deleting transactions; ownership; Relay
//! pagination in every order; filters.

use std::{cmp::Ordering, str::FromStr};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::helpers::*;

/// Every scalar field of `Transaction`.
pub(crate) const TX_FIELDS: &str = "id amount currency kind status description category occurredAt createdAt updatedAt";

const CREATE: &str = "mutation($input: CreateTransactionInput!) {
  createTransaction(input: $input) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const GET: &str = "query($id: ID!) {
  transaction(id: $id) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateTransactionInput!) {
  updateTransaction(id: $id, input: $input) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";
const DELETE: &str = "mutation($id: ID!) { deleteTransaction(id: $id) }";

/// Creates transactions with as few requests as the alias limit (30) allows; returns them, with
/// every field of `TX_FIELDS`, in the order given.
pub(crate) async fn create_many(app: &TestApp, token: &str, inputs: &[Value]) -> Vec<Value> {
    let mut created = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(25) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("$i{i}: CreateTransactionInput!")).collect();
        let fields: Vec<String> =
            (0..chunk.len()).map(|i| format!("t{i}: createTransaction(input: $i{i}) {{ {TX_FIELDS} }}")).collect();
        let query = format!("mutation({}) {{ {} }}", params.join(", "), fields.join("\n"));
        let vars: Map<String, Value> = chunk.iter().enumerate().map(|(i, v)| (format!("i{i}"), v.clone())).collect();
        let data = app.data(Some(token), &query, Value::Object(vars)).await;
        created.extend((0..chunk.len()).map(|i| data[format!("t{i}").as_str()].clone()));
    }
    created
}

/// Creates one transaction; returns every field.
pub(crate) async fn create_one(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(Some(token), CREATE, json!({ "input": input })).await["createTransaction"].clone()
}

/// Asserts that a request failed with `code` and produced no data.
#[track_caller]
pub(crate) fn assert_error(body: &Value, code: &str) {
    assert_eq!(error_code(body), code, "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "expected no data: {body}");
}

pub(crate) fn ts(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("not a timestamp: {value}")))
        .unwrap_or_else(|e| panic!("{value}: {e}"))
        .with_timezone(&Utc)
}

fn dec(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}"))).unwrap()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

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
    uuid::Uuid::parse_str(created["id"].as_str().unwrap()).expect("id is a UUID");

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
fn redact(body: &Value, id: &str) -> String {
    body.to_string().replace(id, "<id>")
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
    let random = uuid::Uuid::new_v4().to_string();

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
        assert_eq!(redact(&theirs, &id), redact(&missing, &random), "indistinguishable from a missing id");
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

// ---------------------------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------------------------

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $orderBy: TransactionOrder!, $filter: TransactionFilterInput) {
  transactions(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
  }
}";

#[derive(Debug)]
struct Page {
    ids: Vec<String>,
    cursors: Vec<String>,
    has_next: bool,
    has_previous: bool,
    start: Value,
    end: Value,
    total: i64,
}

async fn page(app: &TestApp, token: &str, vars: Value) -> Page {
    let data = app.data(Some(token), PAGE, vars).await;
    let conn = &data["transactions"];
    let edges = conn["edges"].as_array().unwrap();
    let page = Page {
        ids: edges.iter().map(|e| id_of(&e["node"])).collect(),
        cursors: edges.iter().map(|e| e["cursor"].as_str().unwrap().to_owned()).collect(),
        has_next: conn["pageInfo"]["hasNextPage"].as_bool().unwrap(),
        has_previous: conn["pageInfo"]["hasPreviousPage"].as_bool().unwrap(),
        start: conn["pageInfo"]["startCursor"].clone(),
        end: conn["pageInfo"]["endCursor"].clone(),
        total: conn["totalCount"].as_i64().unwrap(),
    };
    // startCursor / endCursor are the first and last edges' cursors (null on an empty page).
    assert_eq!(page.start, page.cursors.first().map_or(Value::Null, |c| json!(c)));
    assert_eq!(page.end, page.cursors.last().map_or(Value::Null, |c| json!(c)));
    page
}

/// Walks `first: size` / `after` to the end, checking pageInfo on the way; returns the ids seen.
async fn walk_forward(
    app: &TestApp,
    token: &str,
    order: &str,
    size: usize,
    filter: Value,
    total: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for n in 0.. {
        assert!(n <= total / size.max(1) + 1, "forward walk does not end");
        let page = page(app, token, json!({ "first": size, "after": after, "orderBy": order, "filter": filter })).await;
        assert_eq!(page.total, total as i64, "totalCount on page {n}");
        assert_eq!(page.has_previous, n > 0, "hasPreviousPage on page {n}");
        let remaining = total - seen.len();
        assert_eq!(page.ids.len(), remaining.min(size), "size of page {n}");
        assert_eq!(page.has_next, remaining > size, "hasNextPage on page {n}");
        seen.extend(page.ids);
        if !page.has_next {
            break;
        }
        after = page.end;
    }
    seen
}

/// Walks `last: size` / `before` from the end back to the start; returns the ids seen, in the
/// listing's order (pages prepended).
async fn walk_backward(app: &TestApp, token: &str, order: &str, size: usize, total: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut before = Value::Null;
    for n in 0.. {
        assert!(n <= total / size.max(1) + 1, "backward walk does not end");
        let page = page(app, token, json!({ "last": size, "before": before, "orderBy": order })).await;
        assert_eq!(page.total, total as i64, "totalCount on page -{n}");
        assert_eq!(page.has_next, n > 0, "hasNextPage on page -{n}");
        let remaining = total - seen.len();
        assert_eq!(page.ids.len(), remaining.min(size), "size of page -{n}");
        assert_eq!(page.has_previous, remaining > size, "hasPreviousPage on page -{n}");
        seen.splice(0..0, page.ids);
        if !page.has_previous {
            break;
        }
        before = page.start;
    }
    seen
}

/// The ids of `rows` in the server's order for `order`: the sort key, then the id, both in the
/// order's direction (UUID text order is byte order, the databases' order).
fn expected_order(rows: &[Value], order: &str) -> Vec<String> {
    let mut sorted: Vec<&Value> = rows.iter().collect();
    let key = |row: &Value| -> (Option<DateTime<Utc>>, Option<Decimal>, String) {
        if order.starts_with("AMOUNT") {
            (None, Some(dec(&row["amount"])), id_of(row))
        } else {
            (Some(ts(&row["occurredAt"])), None, id_of(row))
        }
    };
    sorted.sort_by_key(|row| key(row));
    if order.ends_with("DESC") {
        sorted.reverse();
    }
    sorted.into_iter().map(id_of).collect()
}

/// 25 transactions whose occurredAt values come in equal pairs (and one pair 1 µs apart), and
/// whose amounts repeat; not created in time order.
fn pagination_rows() -> Vec<Value> {
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    (0..25)
        .map(|i: i64| {
            let slot = (i * 7) % 25; // a permutation of 0..25
            let mut at = base + Duration::minutes(slot / 2); // slots 2k and 2k+1 share a minute
            if slot == 1 {
                at += Duration::microseconds(1);
            }
            let amount = ["5.00", "10.00", "10.00", "7.25", "10.00"][i as usize % 5];
            json!({
                "amount": amount,
                "kind": if i % 2 == 0 { "CREDIT" } else { "DEBIT" },
                "occurredAt": at.to_rfc3339(),
            })
        })
        .collect()
}

async fn pagination_walks_forward_and_backward(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(&app, token, &pagination_rows()).await;
    assert_eq!(rows.len(), 25);
    let mut distinct: Vec<String> = rows.iter().map(id_of).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 25);

    for order in ["OCCURRED_AT_DESC", "OCCURRED_AT_ASC", "AMOUNT_DESC", "AMOUNT_ASC"] {
        let expected = expected_order(&rows, order);
        let forward = walk_forward(&app, token, order, 10, Value::Null, 25).await;
        assert_eq!(forward, expected, "{order}: forward walk, first: 10");
        let backward = walk_backward(&app, token, order, 10, 25).await;
        assert_eq!(backward, expected, "{order}: backward walk, last: 10");
        // Small pages cross every run of equal keys.
        assert_eq!(walk_forward(&app, token, order, 3, Value::Null, 25).await, expected, "{order}: first: 3");
        assert_eq!(walk_backward(&app, token, order, 4, 25).await, expected, "{order}: last: 4");
        assert_eq!(walk_forward(&app, token, order, 100, Value::Null, 25).await, expected, "{order}: first: 100");
    }

    // The default order is OCCURRED_AT_DESC, the default page 20, and `nodes` mirrors `edges`.
    let data = app
        .data(
            Some(token),
            &format!("{{ transactions {{ totalCount pageInfo {{ hasNextPage hasPreviousPage }} edges {{ node {{ id }} }} nodes {{ {TX_FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    let conn = &data["transactions"];
    let expected = expected_order(&rows, "OCCURRED_AT_DESC");
    let edge_ids: Vec<String> = conn["edges"].as_array().unwrap().iter().map(|e| id_of(&e["node"])).collect();
    let node_ids: Vec<String> = conn["nodes"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(edge_ids, expected[..20]);
    assert_eq!(node_ids, expected[..20]);
    assert_eq!(conn["pageInfo"], json!({ "hasNextPage": true, "hasPreviousPage": false }));
    assert_eq!(conn["totalCount"], 25);
    // Nodes carry every field, identical to what was created.
    for node in conn["nodes"].as_array().unwrap() {
        let original = rows.iter().find(|r| r["id"] == node["id"]).unwrap();
        assert_eq!(node, original);
    }

    // `first: 0`: an empty page.
    let empty = page(&app, token, json!({ "first": 0, "orderBy": "OCCURRED_AT_DESC" })).await;
    assert!(empty.ids.is_empty());
    assert_eq!(empty.total, 25);
    assert!(!empty.has_next && !empty.has_previous);
    let empty = page(&app, token, json!({ "last": 0, "orderBy": "AMOUNT_ASC" })).await;
    assert!(empty.ids.is_empty());
    assert_eq!(empty.start, Value::Null);

    // A cursor in the middle, used with `first` and `after`, resumes right after its row.
    let all = page(&app, token, json!({ "first": 25, "orderBy": "OCCURRED_AT_ASC" })).await;
    let resumed =
        page(&app, token, json!({ "first": 5, "after": all.cursors[11], "orderBy": "OCCURRED_AT_ASC" })).await;
    assert_eq!(resumed.ids, all.ids[12..17]);
    let resumed =
        page(&app, token, json!({ "last": 5, "before": all.cursors[11], "orderBy": "OCCURRED_AT_ASC" })).await;
    assert_eq!(resumed.ids, all.ids[6..11]);
}

async fn pagination_breaks_ties_by_id(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    // 13 transactions with the same time and amount: only the id orders them.
    let inputs: Vec<Value> = (0..13)
        .map(|_| json!({ "amount": "3.33", "kind": "DEBIT", "occurredAt": "2026-05-05T05:05:05.555555Z" }))
        .collect();
    let rows = create_many(&app, token, &inputs).await;
    for order in ["OCCURRED_AT_DESC", "OCCURRED_AT_ASC", "AMOUNT_DESC", "AMOUNT_ASC"] {
        let expected = expected_order(&rows, order);
        assert_eq!(walk_forward(&app, token, order, 5, Value::Null, 13).await, expected, "{order} forward");
        assert_eq!(walk_backward(&app, token, order, 5, 13).await, expected, "{order} backward");
    }
}

async fn pagination_rejects_bad_arguments(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    create_many(&app, token, &pagination_rows()[..3]).await;
    let first_page = page(&app, token, json!({ "first": 1, "orderBy": "OCCURRED_AT_DESC" })).await;
    let cursor = first_page.end.as_str().unwrap().to_owned();

    let bad = [
        json!({ "first": 101, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "last": 101, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "first": -1, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "last": -1, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "first": 10, "last": 10, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "first": 10, "after": "not-a-cursor", "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "last": 10, "before": "bm90LWEtY3Vyc29y", "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "first": 10, "after": "", "orderBy": "OCCURRED_AT_DESC" }),
        // A cursor from another order.
        json!({ "first": 10, "after": cursor, "orderBy": "AMOUNT_ASC" }),
        json!({ "first": 10, "after": cursor, "orderBy": "OCCURRED_AT_ASC" }),
        // Mismatched pairs.
        json!({ "last": 10, "after": cursor, "orderBy": "OCCURRED_AT_DESC" }),
        json!({ "first": 10, "before": cursor, "orderBy": "OCCURRED_AT_DESC" }),
        // Filter contradictions.
        json!({ "first": 10, "orderBy": "OCCURRED_AT_DESC", "filter": { "from": "2026-02-02T00:00:00Z", "to": "2026-02-01T00:00:00Z" } }),
        json!({ "first": 10, "orderBy": "OCCURRED_AT_DESC", "filter": { "minAmount": "10", "maxAmount": "5" } }),
        json!({ "first": 10, "orderBy": "OCCURRED_AT_DESC", "filter": { "currency": "XXX" } }),
        json!({ "first": 10, "orderBy": "OCCURRED_AT_DESC", "filter": { "minAmount": 5 } }),
        json!({ "first": 10, "orderBy": "OCCURRED_AT_DESC", "filter": { "maxAmount": "1e3" } }),
    ];
    for vars in bad {
        let body = app.gql(Some(token), PAGE, vars.clone()).await;
        assert_error(&body, "BAD_USER_INPUT");
    }
    // A forged cursor with an impossible key is refused, not a server error.
    use base64::Engine;
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:od:{}:{}", i64::MAX, uuid::Uuid::new_v4()));
    let body = app.gql(Some(token), PAGE, json!({ "first": 10, "after": forged, "orderBy": "OCCURRED_AT_DESC" })).await;
    assert_error(&body, "BAD_USER_INPUT");

    // The limits themselves are fine.
    assert_eq!(page(&app, token, json!({ "first": 100, "orderBy": "OCCURRED_AT_DESC" })).await.ids.len(), 3);
    assert_eq!(page(&app, token, json!({ "last": 100, "orderBy": "OCCURRED_AT_DESC" })).await.ids.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/// The ids matching `filter`, oldest first; checks that totalCount agrees.
async fn matching(app: &TestApp, token: &str, filter: Value) -> Vec<String> {
    let page = page(app, token, json!({ "first": 100, "orderBy": "OCCURRED_AT_ASC", "filter": filter })).await;
    assert_eq!(page.total, page.ids.len() as i64, "totalCount for {filter}");
    page.ids
}

async fn filters_individually_and_combined(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let other = app.new_user().await;
    let inputs = [
        // 0
        json!({ "amount": "1000.00", "kind": "CREDIT", "category": "salary", "occurredAt": "2026-02-01T00:00:00Z" }),
        // 1
        json!({ "amount": "25.50", "kind": "DEBIT", "category": "food", "occurredAt": "2026-02-02T12:00:00Z" }),
        // 2: exactly at the from / to boundary used below
        json!({ "amount": "10.00", "kind": "DEBIT", "status": "PENDING", "category": "food", "occurredAt": "2026-02-03T00:00:00Z" }),
        // 3
        json!({ "amount": "800.00", "kind": "DEBIT", "status": "FAILED", "category": "rent", "occurredAt": "2026-02-04T00:00:00Z" }),
        // 4
        json!({ "amount": "50.00", "currency": "EUR", "kind": "CREDIT", "occurredAt": "2026-02-05T00:00:00Z" }),
        // 5: a different category, by case
        json!({ "amount": "10.01", "kind": "DEBIT", "category": "Food", "occurredAt": "2026-02-06T00:00:00Z" }),
        // 6
        json!({ "amount": "500", "currency": "JPY", "kind": "CREDIT", "status": "PENDING", "category": "food", "occurredAt": "2026-02-07T00:00:00Z" }),
        // 7: 1 µs before the `to` boundary
        json!({ "amount": "9.99", "kind": "DEBIT", "category": "food", "occurredAt": "2026-02-07T23:59:59.999999Z" }),
        // 8: exactly at the `to` boundary
        json!({ "amount": "10.00", "kind": "CREDIT", "category": "food", "occurredAt": "2026-02-08T00:00:00Z" }),
    ];
    let rows = create_many(&app, token, &inputs).await;
    // Someone else's matching rows never show up.
    create_many(&app, &other.access_token, &inputs).await;
    let ids = |indices: &[usize]| -> Vec<String> { indices.iter().map(|&i| id_of(&rows[i])).collect() };

    let cases: Vec<(Value, Vec<usize>)> = vec![
        (json!(null), vec![0, 1, 2, 3, 4, 5, 6, 7, 8]),
        (json!({}), vec![0, 1, 2, 3, 4, 5, 6, 7, 8]),
        // kind
        (json!({ "kind": "CREDIT" }), vec![0, 4, 6, 8]),
        (json!({ "kind": "DEBIT" }), vec![1, 2, 3, 5, 7]),
        // status
        (json!({ "status": "PENDING" }), vec![2, 6]),
        (json!({ "status": "FAILED" }), vec![3]),
        (json!({ "status": "SUCCESS" }), vec![0, 1, 4, 5, 7, 8]),
        // category: exact, case-sensitive
        (json!({ "category": "food" }), vec![1, 2, 6, 7, 8]),
        (json!({ "category": "Food" }), vec![5]),
        (json!({ "category": "foo" }), vec![]),
        (json!({ "category": "salary" }), vec![0]),
        // currency, case-insensitive
        (json!({ "currency": "EUR" }), vec![4]),
        (json!({ "currency": "jpy" }), vec![6]),
        (json!({ "currency": "USD" }), vec![0, 1, 2, 3, 5, 7, 8]),
        (json!({ "currency": "GBP" }), vec![]),
        // from: inclusive
        (json!({ "from": "2026-02-03T00:00:00Z" }), vec![2, 3, 4, 5, 6, 7, 8]),
        (json!({ "from": "2026-02-03T00:00:00.000001Z" }), vec![3, 4, 5, 6, 7, 8]),
        (json!({ "from": "2026-02-02T23:00:00-01:00" }), vec![2, 3, 4, 5, 6, 7, 8]),
        // to: exclusive
        (json!({ "to": "2026-02-03T00:00:00Z" }), vec![0, 1]),
        (json!({ "to": "2026-02-03T00:00:00.000001Z" }), vec![0, 1, 2]),
        (json!({ "to": "2026-02-08T00:00:00Z" }), vec![0, 1, 2, 3, 4, 5, 6, 7]),
        (json!({ "from": "2026-02-03T00:00:00Z", "to": "2026-02-03T00:00:00Z" }), vec![]),
        (json!({ "from": "2026-02-03T00:00:00Z", "to": "2026-02-05T00:00:00Z" }), vec![2, 3]),
        // minAmount / maxAmount: inclusive (the amounts are compared whatever the currency)
        (json!({ "minAmount": "10.00" }), vec![0, 1, 2, 3, 4, 5, 6, 8]),
        (json!({ "minAmount": "10" }), vec![0, 1, 2, 3, 4, 5, 6, 8]),
        (json!({ "minAmount": "10.01" }), vec![0, 1, 3, 4, 5, 6]),
        (json!({ "maxAmount": "10.00" }), vec![2, 7, 8]),
        (json!({ "maxAmount": "9.99" }), vec![7]),
        (json!({ "maxAmount": "9.98" }), vec![]),
        (json!({ "minAmount": "10", "maxAmount": "10.01" }), vec![2, 5, 8]),
        (json!({ "minAmount": "10.00", "maxAmount": "10.00" }), vec![2, 8]),
        // bounds finer than any amount round toward the inside of the range
        (json!({ "minAmount": "10.005" }), vec![0, 1, 3, 4, 5, 6]),
        (json!({ "maxAmount": "10.005" }), vec![2, 7, 8]),
        (json!({ "minAmount": "-5" }), vec![0, 1, 2, 3, 4, 5, 6, 7, 8]),
        // combined: all conditions must hold
        (json!({ "kind": "DEBIT", "category": "food" }), vec![1, 2, 7]),
        (json!({ "kind": "DEBIT", "category": "food", "status": "SUCCESS" }), vec![1, 7]),
        (json!({ "kind": "CREDIT", "currency": "USD", "minAmount": "100" }), vec![0]),
        (json!({ "kind": "DEBIT", "minAmount": "9.99", "maxAmount": "25.50" }), vec![1, 2, 5, 7]),
        (
            json!({ "kind": "DEBIT", "minAmount": "9.99", "maxAmount": "25.50", "to": "2026-02-07T00:00:00Z" }),
            vec![1, 2, 5],
        ),
        (
            json!({
                "kind": "DEBIT", "status": "SUCCESS", "category": "food", "currency": "usd",
                "from": "2026-02-02T12:00:00Z", "to": "2026-02-08T00:00:00Z", "minAmount": "10", "maxAmount": "25.50",
            }),
            vec![1],
        ),
        (json!({ "category": "food", "from": "2026-02-03T00:00:00Z", "to": "2026-02-08T00:00:00Z" }), vec![2, 6, 7]),
        (json!({ "category": "food", "currency": "JPY", "status": "PENDING" }), vec![6]),
        (json!({ "category": "rent", "status": "SUCCESS" }), vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(matching(&app, token, filter.clone()).await, ids(&expected), "filter {filter}");
    }

    // A filter with pagination: totalCount is the filter's, on every page.
    let food = json!({ "category": "food" });
    let walked = walk_forward(&app, token, "OCCURRED_AT_ASC", 2, food, 5).await;
    assert_eq!(walked, ids(&[1, 2, 6, 7, 8]));
}

/// Listings read only the columns the selection needs: any way of selecting a field (fragments,
/// aliases, directives, the same field twice) must load it.
async fn listing_loads_what_any_selection_needs(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(
        &app,
        token,
        &[
            json!({ "amount": "1.50", "kind": "DEBIT", "category": "x", "description": "one", "occurredAt": "2026-01-02T00:00:00Z" }),
            json!({ "amount": "700", "currency": "JPY", "kind": "CREDIT", "status": "PENDING", "occurredAt": "2026-01-01T00:00:00Z" }),
        ],
    )
    .await;
    // Newest first, as listed by default.
    let check = |nodes: &Value, fields: &[&str], context: &str| {
        let nodes = nodes.as_array().unwrap_or_else(|| panic!("{context}: no list in {nodes}"));
        assert_eq!(nodes.len(), 2, "{context}");
        for (node, row) in nodes.iter().zip(&rows) {
            for field in fields {
                assert_eq!(node[*field], row[*field], "{context}: {field}");
            }
        }
    };
    let all =
        ["amount", "currency", "kind", "status", "description", "category", "occurredAt", "createdAt", "updatedAt"];

    let data = app.data(Some(token), "{ transactions { edges { cursor } } }", json!({})).await;
    assert_eq!(data["transactions"]["edges"].as_array().unwrap().len(), 2);
    for field in all {
        let data = app.data(Some(token), &format!("{{ transactions {{ nodes {{ {field} }} }} }}"), json!({})).await;
        check(&data["transactions"]["nodes"], &[field], &format!("nodes {{ {field} }}"));
        let data =
            app.data(Some(token), &format!("{{ transactions {{ edges {{ node {{ {field} }} }} }} }}"), json!({})).await;
        let nodes: Vec<Value> =
            data["transactions"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
        check(&json!(nodes), &[field], &format!("edges {{ node {{ {field} }} }}"));
    }

    let fields = all.join(" ");
    let data = app
        .data(
            Some(token),
            &format!("{{ transactions {{ nodes {{ ...F }} }} }} fragment F on Transaction {{ {fields} }}"),
            json!({}),
        )
        .await;
    check(&data["transactions"]["nodes"], &all, "named fragment");
    let data = app
        .data(
            Some(token),
            &format!("{{ transactions {{ ...C }} }} fragment C on TransactionConnection {{ nodes {{ {fields} }} }}"),
            json!({}),
        )
        .await;
    check(&data["transactions"]["nodes"], &all, "fragment on the connection");
    let data = app
        .data(
            Some(token),
            &format!("{{ transactions {{ edges {{ node {{ ... on Transaction {{ {fields} }} }} }} }} }}"),
            json!({}),
        )
        .await;
    let nodes: Vec<Value> =
        data["transactions"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    check(&json!(nodes), &all, "inline fragment");

    let data = app.data(Some(token), "{ transactions { nodes { a: amount c: currency k: kind } } }", json!({})).await;
    let renamed: Vec<Value> = data["transactions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({ "amount": n["a"], "currency": n["c"], "kind": n["k"] }))
        .collect();
    check(&json!(renamed), &["amount", "currency", "kind"], "aliases");

    let data = app
        .data(
            Some(token),
            "query($yes: Boolean!) { transactions { nodes { amount @include(if: $yes) category @skip(if: false) } } }",
            json!({ "yes": true }),
        )
        .await;
    check(&data["transactions"]["nodes"], &["amount", "category"], "directives");

    // The same field twice, merged into one response key.
    let data = app
        .data(Some(token), "{ transactions { nodes { id } } transactions { nodes { amount status } } }", json!({}))
        .await;
    check(&data["transactions"]["nodes"], &["id", "amount", "status"], "merged fields");
    // Two listings under aliases, each with its own selection.
    let data = app
        .data(
            Some(token),
            "{ x: transactions { nodes { description } } y: transactions { edges { node { occurredAt currency } } } }",
            json!({}),
        )
        .await;
    check(&data["x"]["nodes"], &["description"], "alias x");
    let nodes: Vec<Value> = data["y"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    check(&json!(nodes), &["occurredAt", "currency"], "alias y");

    // The owner alone.
    let data = app.data(Some(token), "{ transactions { nodes { user { id email } } } }", json!({})).await;
    for node in data["transactions"]["nodes"].as_array().unwrap() {
        assert_eq!(node["user"], json!({ "id": user.id, "email": user.email }));
    }
}

/// The extremes of the accepted range (1970 to 2099): the epoch itself (cursor key 0), its
/// first microsecond, the last microsecond of 2099.
async fn pagination_across_extreme_dates(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let dates = [
        "1970-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00Z",
        "2099-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00.000001Z",
        "2026-01-01T00:00:00Z",
        "2099-06-15T12:00:00Z",
    ];
    let inputs: Vec<Value> =
        dates.iter().map(|at| json!({ "amount": "1.00", "kind": "DEBIT", "occurredAt": at })).collect();
    let rows = create_many(&app, token, &inputs).await;
    for (row, at) in rows.iter().zip(dates) {
        assert_eq!(ts(&row["occurredAt"]), ts(&json!(at)), "{at} round-trips");
    }
    for order in ["OCCURRED_AT_DESC", "OCCURRED_AT_ASC"] {
        let expected = expected_order(&rows, order);
        assert_eq!(walk_forward(&app, token, order, 2, Value::Null, rows.len()).await, expected, "{order} forward");
        assert_eq!(walk_backward(&app, token, order, 3, rows.len()).await, expected, "{order} backward");
    }
    // Range filters and analytics buckets on those dates; `to` may be the end of the range.
    let first_instant = matching(&app, token, json!({ "to": "1970-01-01T00:00:00.000001Z" })).await;
    assert_eq!(first_instant.len(), 1);
    let everything =
        matching(&app, token, json!({ "from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z" })).await;
    assert_eq!(everything.len(), dates.len());
    let data = app
        .data(
            Some(token),
            "{ transactionAnalytics { count byMonth { month count } busiestDay { date count } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["transactionAnalytics"],
        json!({
            "count": 6,
            "byMonth": [
                { "month": "1970-01", "count": 3 },
                { "month": "2026-01", "count": 1 },
                { "month": "2099-06", "count": 1 },
                { "month": "2099-12", "count": 1 },
            ],
            "busiestDay": { "date": "1970-01-01", "count": 3 },
        })
    );
}

/// Time bounds finer than the microsecond that storage keeps. A row at .000001 is before
/// `to` = .0000015 and must be listed; a row at .000000 is before `from` = .0000005 and must not.
async fn sub_microsecond_time_bounds(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(
        &app,
        token,
        &[
            json!({ "amount": "1", "kind": "DEBIT", "occurredAt": "2026-02-01T00:00:00Z" }),
            json!({ "amount": "1", "kind": "DEBIT", "occurredAt": "2026-02-01T00:00:00.000001Z" }),
            json!({ "amount": "1", "kind": "DEBIT", "occurredAt": "2026-02-01T00:00:00.000002Z" }),
        ],
    )
    .await;
    let ids = |indices: &[usize]| -> Vec<String> { indices.iter().map(|&i| id_of(&rows[i])).collect() };
    let cases = [
        (json!({ "to": "2026-02-01T00:00:00.0000015Z" }), vec![0, 1]),
        (json!({ "from": "2026-02-01T00:00:00.0000005Z" }), vec![1, 2]),
        (json!({ "from": "2026-02-01T00:00:00.0000005Z", "to": "2026-02-01T00:00:00.0000015Z" }), vec![1]),
    ];
    for (filter, expected) in cases {
        assert_eq!(matching(&app, token, filter.clone()).await, ids(&expected), "listing, filter {filter}");
        let data = app
            .data(
                Some(token),
                "query($from: DateTime, $to: DateTime) { transactionAnalytics(from: $from, to: $to) { count } }",
                filter.clone(),
            )
            .await;
        assert_eq!(data["transactionAnalytics"]["count"], expected.len(), "analytics, range {filter}");
    }
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
    pagination_walks_forward_and_backward,
    pagination_breaks_ties_by_id,
    pagination_rejects_bad_arguments,
    filters_individually_and_combined,
    listing_loads_what_any_selection_needs,
    pagination_across_extreme_dates,
);

#[test]
fn expected_order_sorts_by_key_then_id() {
    let rows = [
        json!({ "id": "b", "amount": "1.00", "occurredAt": "2026-01-01T00:00:00Z" }),
        json!({ "id": "a", "amount": "1.00", "occurredAt": "2026-01-01T00:00:00Z" }),
        json!({ "id": "c", "amount": "0.50", "occurredAt": "2026-01-02T00:00:00Z" }),
    ];
    assert_eq!(expected_order(&rows, "OCCURRED_AT_ASC"), ["a", "b", "c"]);
    assert_eq!(expected_order(&rows, "OCCURRED_AT_DESC"), ["c", "b", "a"]);
    assert_eq!(expected_order(&rows, "AMOUNT_ASC"), ["c", "a", "b"]);
    assert_eq!(expected_order(&rows, "AMOUNT_DESC"), ["b", "a", "c"]);
    assert_eq!(dec(&json!("10.00")).cmp(&dec(&json!("9.99"))), Ordering::Greater);
}

// Regression: PostgreSQL truncated sub-microsecond bounds, so rows were wrongly in/excluded.
crate::backend_tests!(sub_microsecond_time_bounds);
