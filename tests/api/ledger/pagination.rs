//! Relay pagination of `transactions` in every order: walking forward and backward, ties broken
//! by id, bad arguments, and the extremes of the accepted date range.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{PAGE, TX_FIELDS, assert_error, create_many, dec, id_of, matching, page, ts};
use crate::helpers::*;

/// Walks `first: size` / `after` to the end, checking pageInfo on the way; returns the ids seen.
pub(super) async fn walk_forward(
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

/// The ids of `rows` in the server's order for `order`: the sort key, then the UUID inside the
/// id, both in the order's direction (UUID text order is byte order, the databases' order).
fn expected_order(rows: &[Value], order: &str) -> Vec<String> {
    let mut sorted: Vec<&Value> = rows.iter().collect();
    let key = |row: &Value| -> (Option<DateTime<Utc>>, Option<Decimal>, String) {
        let uuid = global_key(&id_of(row), "Transaction");
        if order.starts_with("AMOUNT") {
            (None, Some(dec(&row["amount"])), uuid)
        } else {
            (Some(ts(&row["occurredAt"])), None, uuid)
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

crate::backend_tests!(
    pagination_walks_forward_and_backward,
    pagination_breaks_ties_by_id,
    pagination_rejects_bad_arguments,
    pagination_across_extreme_dates,
);

#[test]
fn expected_order_sorts_by_key_then_id() {
    let [a, b, c] = ["a", "b", "c"].map(|key| global_id("Transaction", key));
    let rows = [
        json!({ "id": b, "amount": "1.00", "occurredAt": "2026-01-01T00:00:00Z" }),
        json!({ "id": a, "amount": "1.00", "occurredAt": "2026-01-01T00:00:00Z" }),
        json!({ "id": c, "amount": "0.50", "occurredAt": "2026-01-02T00:00:00Z" }),
    ];
    assert_eq!(expected_order(&rows, "OCCURRED_AT_ASC"), [a.clone(), b.clone(), c.clone()]);
    assert_eq!(expected_order(&rows, "OCCURRED_AT_DESC"), [c.clone(), b.clone(), a.clone()]);
    assert_eq!(expected_order(&rows, "AMOUNT_ASC"), [c.clone(), a.clone(), b.clone()]);
    assert_eq!(expected_order(&rows, "AMOUNT_DESC"), [b, a, c]);
    assert_eq!(dec(&json!("10.00")).cmp(&dec(&json!("9.99"))), Ordering::Greater);
}
