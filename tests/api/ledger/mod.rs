//! The ledger (`finql::ledger`): transactions written and read back (`crud`), listed in pages
//! (`pagination`) and by filter (`filters`), and summed up (`analytics`, from the daily `rollups`);
//! here, what they share.

mod analytics;
mod crud;
mod filters;
mod pagination;
mod rollups;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::helpers::*;

/// Every scalar field of `Transaction`.
pub(crate) const TX_FIELDS: &str = "id amount currency kind status description category occurredAt createdAt updatedAt";

const CREATE: &str = "mutation($input: CreateTransactionInput!) {
  createTransaction(input: $input) { id amount currency kind status description category occurredAt createdAt updatedAt }
}";

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

/// The first error has `code`, and where it points there is no data: `null` at the error's
/// path (a nullable field), or no `data` at all.
#[track_caller]
pub(crate) fn assert_error(body: &Value, code: &str) {
    assert_eq!(error_code(body), code, "{body}");
    let mut at = body.get("data").unwrap_or(&Value::Null);
    for segment in body["errors"][0]["path"].as_array().into_iter().flatten() {
        at = match segment {
            Value::String(key) => at.get(key.as_str()).unwrap_or(&Value::Null),
            Value::Number(i) => at.get(i.as_u64().unwrap() as usize).unwrap_or(&Value::Null),
            _ => panic!("bad path segment in {body}"),
        };
    }
    assert!(at.is_null(), "expected no data at the error's path: {body}");
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

/// One page of `transactions`, in the order and with the filter `vars` give.
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

/// The ids matching `filter`, oldest first; checks that totalCount agrees.
async fn matching(app: &TestApp, token: &str, filter: Value) -> Vec<String> {
    let page = page(app, token, json!({ "first": 100, "orderBy": "OCCURRED_AT_ASC", "filter": filter })).await;
    assert_eq!(page.total, page.ids.len() as i64, "totalCount for {filter}");
    page.ids
}
