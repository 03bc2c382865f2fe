//! Filters on `transactions`, one at a time and combined, time bounds finer than storage keeps,
//! and listings that load the columns any selection needs.

use serde_json::{Value, json};

use super::{create_many, id_of, matching, pagination::walk_forward};
use crate::helpers::*;

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

crate::backend_tests!(filters_individually_and_combined, listing_loads_what_any_selection_needs,);

// Regression: PostgreSQL truncated sub-microsecond bounds, so rows were wrongly in/excluded.
crate::backend_tests!(sub_microsecond_time_bounds);
