//! The custom scalars on the wire (`graphql::scalars`): `DateTime` is written in one shape
//! only, UTC with six fraction digits and `Z`, whatever its source (a client's input, the
//! database, the clock, a market source); on input any RFC 3339 offset is accepted and
//! normalised to UTC, truncated to the microsecond.

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    ledger::{assert_error, create_one},
};

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, exactly.
#[track_caller]
fn assert_shape(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("a DateTime string expected, got {v}"));
    assert!(
        s.len() == 27 && NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.6fZ").is_ok() && s.as_bytes()[19] == b'.',
        "`{s}` is not UTC with six fraction digits and Z"
    );
}

const READ: &str = "query($id: ID!) { transaction(id: $id) { occurredAt createdAt updatedAt } }";

async fn offsets_are_normalised_to_utc_microseconds(app: TestApp) {
    let user = app.new_user().await;
    let token = Some(user.access_token.as_str());
    for (given, stored) in [
        ("2026-11-30T13:01:26.1234567+08:00", "2026-11-30T05:01:26.123456Z"),
        ("2026-11-30T05:01:26Z", "2026-11-30T05:01:26.000000Z"),
        ("2026-11-29T23:31:26.5-05:30", "2026-11-30T05:01:26.500000Z"),
        ("2026-11-30t05:01:26.000001z", "2026-11-30T05:01:26.000001Z"),
    ] {
        let created =
            create_one(&app, &user.access_token, json!({ "amount": "1.00", "kind": "DEBIT", "occurredAt": given }))
                .await;
        assert_eq!(created["occurredAt"], stored, "{given}: {created}");
        assert_shape(&created["createdAt"]);
        assert_shape(&created["updatedAt"]);
        // Read back from the database: the same string.
        let read = app.data(token, READ, json!({ "id": created["id"] })).await["transaction"].clone();
        assert_eq!(read["occurredAt"], stored, "{given}: {read}");
        assert_eq!((&read["createdAt"], &read["updatedAt"]), (&created["createdAt"], &created["updatedAt"]));
    }
    // Arguments are normalised the same way: `from` (inclusive) at the same instant written
    // with another offset finds the transaction, `to` (exclusive) does not.
    let count = "query($f: TransactionFilterInput) { transactions(filter: $f) { totalCount } }";
    let at = "2026-11-30T14:01:26.123456+09:00";
    let from = app.data(token, count, json!({ "f": { "from": at } })).await;
    let to = app.data(token, count, json!({ "f": { "to": at } })).await;
    // At or after .123456: .123456 and .5; before it: .000000 and .000001.
    assert_eq!(from["transactions"]["totalCount"], 2, "{from}");
    assert_eq!(to["transactions"]["totalCount"], 2, "{to}");
}

async fn a_date_time_without_an_offset_is_refused(app: TestApp) {
    let user = app.new_user().await;
    let create = "mutation($input: CreateTransactionInput!) { createTransaction(input: $input) { id } }";
    for bad in [json!("2026-11-30T05:01:26"), json!("2026-11-30"), json!(1796000000), json!("yesterday")] {
        let input = json!({ "amount": "1.00", "kind": "DEBIT", "occurredAt": bad });
        let body = app.gql(Some(&user.access_token), create, json!({ "input": input })).await;
        assert_error(&body, "BAD_USER_INPUT");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("RFC 3339"), "{bad}: {message}");
    }
}

crate::backend_tests!(offsets_are_normalised_to_utc_microseconds, a_date_time_without_an_offset_is_refused);

/// Instants from the market sources and the clock have the same shape: quotes, klines (from
/// the simulated market) and the market calendar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_instants_have_one_shape() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let query = "{ quote(symbol: \"AAPL.US\") { timestamp }
      klines(symbol: \"CRYPTO:BTCUSDT\", interval: ONE_MINUTE, limit: 3) { time }
      marketStatus(region: US) { nextOpen nextClose } }";
    let data = app.data(None, query, json!({})).await;
    assert_shape(&data["quote"]["timestamp"]);
    let klines = data["klines"].as_array().unwrap();
    assert_eq!(klines.len(), 3, "{data}");
    klines.iter().for_each(|bar| assert_shape(&bar["time"]));
    assert_shape(&data["marketStatus"]["nextOpen"]);
    assert_shape(&data["marketStatus"]["nextClose"]);
}
