//! `transactionAnalytics`: totals, averages, busiest day and breakdowns, per currency, status
//! set and time range. Every expected value is computed by hand in the test.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::ledger::{assert_error, create_many, create_one};

pub(super) const ANALYTICS: &str =
    "query($from: DateTime, $to: DateTime, $currency: String, $statuses: [TransactionStatus!]) {
  transactionAnalytics(from: $from, to: $to, currency: $currency, statuses: $statuses) {
    currency count averageAmount totalCredit totalDebit net
    busiestDay { date count }
    byDay { date count totalCredit totalDebit net }
    byMonth { month count totalCredit totalDebit net }
    byCategory { category count totalCredit totalDebit net }
    currencies
  }
}";

/// Every field of `transactionAnalytics` for these arguments (absent keys: server defaults).
async fn analytics(app: &TestApp, token: &str, args: Value) -> Value {
    app.data(Some(token), ANALYTICS, args).await["transactionAnalytics"].clone()
}

/// A transaction input: `kind` CREDIT or DEBIT, `at` its occurredAt, `category` or null.
fn tx(kind: &str, amount: &str, at: &str, category: Option<&str>) -> Value {
    json!({ "kind": kind, "amount": amount, "occurredAt": at, "category": category })
}

fn with(mut input: Value, key: &str, value: &str) -> Value {
    input[key] = json!(value);
    input
}

async fn empty_set(app: TestApp) {
    let user = app.new_user().await;
    let expected_empty = |currency: &str, zero: &str| {
        json!({
            "currency": currency, "count": 0, "averageAmount": null,
            "totalCredit": zero, "totalDebit": zero, "net": zero,
            "busiestDay": null, "byDay": [], "byMonth": [], "byCategory": [], "currencies": [],
        })
    };
    assert_eq!(analytics(&app, &user.access_token, json!({})).await, expected_empty("USD", "0.00"));
    assert_eq!(analytics(&app, &user.access_token, json!({ "currency": "jpy" })).await, expected_empty("JPY", "0"));
    assert_eq!(analytics(&app, &user.access_token, json!({ "currency": "BHD" })).await, expected_empty("BHD", "0.000"));

    // Transactions outside the range, or in other currencies, leave it empty too.
    create_one(&app, &user.access_token, tx("CREDIT", "5.00", "2026-01-15T00:00:00Z", None)).await;
    let mut out_of_range = expected_empty("USD", "0.00");
    let args = json!({ "from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z" });
    assert_eq!(analytics(&app, &user.access_token, args).await, out_of_range);
    out_of_range = expected_empty("EUR", "0.00");
    out_of_range["currencies"] = json!(["USD"]);
    assert_eq!(analytics(&app, &user.access_token, json!({ "currency": "EUR" })).await, out_of_range);
}

async fn fixed_data_set(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    create_many(
        &app,
        token,
        &[
            /* a */ tx("CREDIT", "1000.00", "2026-01-30T10:00:00Z", Some("salary")),
            /* b */ tx("DEBIT", "45.50", "2026-01-30T18:00:00Z", Some("food")),
            /* c */ tx("DEBIT", "120.00", "2026-01-31T23:59:59Z", Some("transport")),
            /* d */ tx("DEBIT", "12.25", "2026-02-01T00:00:00Z", Some("food")),
            /* e */ with(tx("DEBIT", "30.00", "2026-02-01T09:15:00Z", None), "status", "PENDING"),
            /* f */ tx("CREDIT", "200.00", "2026-02-01T20:00:00Z", None),
            /* g */ tx("DEBIT", "7.75", "2026-02-03T12:00:00Z", Some("transport")),
            /* h */ with(tx("DEBIT", "99.99", "2026-02-03T13:00:00Z", Some("food")), "status", "FAILED"),
            /* i */ tx("CREDIT", "0.55", "2026-02-03T15:00:00Z", None),
        ],
    )
    .await;
    // Another user's transactions on the same days must not count.
    let other = app.new_user().await;
    create_many(
        &app,
        &other.access_token,
        &[
            tx("CREDIT", "1.00", "2026-02-01T12:00:00Z", Some("food")),
            tx("DEBIT", "3.00", "2026-02-03T12:00:00Z", None),
        ],
    )
    .await;

    // h is FAILED, so excluded by default: a b c d e f g i (e is PENDING, which counts).
    //   credit = a 1000.00 + f 200.00 + i 0.55                    = 1200.55
    //   debit  = b 45.50 + c 120.00 + d 12.25 + e 30.00 + g 7.75   =  215.50
    //   net    = 1200.55 - 215.50                                  =  985.05
    //   count 8; average = (1200.55 + 215.50) / 8 = 1416.05 / 8 = 177.00625 -> 177.01
    // byDay:
    //   2026-01-30: a b    -> 2, credit 1000.00, debit 45.50,  net 954.50
    //   2026-01-31: c      -> 1, credit 0.00,    debit 120.00, net -120.00
    //   2026-02-01: d e f  -> 3, credit 200.00,  debit 42.25 (12.25 + 30.00), net 157.75
    //   2026-02-03: g i    -> 2, credit 0.55,    debit 7.75,   net -7.20
    // busiestDay: 2026-02-01 (3)
    // byMonth:
    //   2026-01: a b c     -> 3, credit 1000.00, debit 165.50 (45.50 + 120.00), net 834.50
    //   2026-02: d e f g i -> 5, credit 200.55,  debit 50.00 (12.25 + 30.00 + 7.75), net 150.55
    // byCategory (most first):
    //   null:      e f i -> 3, credit 200.55 (200.00 + 0.55), debit 30.00, net 170.55
    //   food:      b d   -> 2, credit 0.00, debit 57.75 (45.50 + 12.25), net -57.75 (h excluded)
    //   transport: c g   -> 2, credit 0.00, debit 127.75 (120.00 + 7.75), net -127.75
    //   salary:    a     -> 1, credit 1000.00, debit 0.00, net 1000.00
    //   (food and transport tie at 2: by name)
    let expected = json!({
        "currency": "USD",
        "count": 8,
        "averageAmount": "177.01",
        "totalCredit": "1200.55",
        "totalDebit": "215.50",
        "net": "985.05",
        "busiestDay": { "date": "2026-02-01", "count": 3 },
        "byDay": [
            { "date": "2026-01-30", "count": 2, "totalCredit": "1000.00", "totalDebit": "45.50", "net": "954.50" },
            { "date": "2026-01-31", "count": 1, "totalCredit": "0.00", "totalDebit": "120.00", "net": "-120.00" },
            { "date": "2026-02-01", "count": 3, "totalCredit": "200.00", "totalDebit": "42.25", "net": "157.75" },
            { "date": "2026-02-03", "count": 2, "totalCredit": "0.55", "totalDebit": "7.75", "net": "-7.20" },
        ],
        "byMonth": [
            { "month": "2026-01", "count": 3, "totalCredit": "1000.00", "totalDebit": "165.50", "net": "834.50" },
            { "month": "2026-02", "count": 5, "totalCredit": "200.55", "totalDebit": "50.00", "net": "150.55" },
        ],
        "byCategory": [
            { "category": null, "count": 3, "totalCredit": "200.55", "totalDebit": "30.00", "net": "170.55" },
            { "category": "food", "count": 2, "totalCredit": "0.00", "totalDebit": "57.75", "net": "-57.75" },
            { "category": "transport", "count": 2, "totalCredit": "0.00", "totalDebit": "127.75", "net": "-127.75" },
            { "category": "salary", "count": 1, "totalCredit": "1000.00", "totalDebit": "0.00", "net": "1000.00" },
        ],
        "currencies": ["USD"],
    });
    assert_eq!(analytics(&app, token, json!({})).await, expected);
    // Spelling the defaults out changes nothing.
    let explicit = json!({ "currency": "usd", "statuses": ["SUCCESS", "PENDING"] });
    assert_eq!(analytics(&app, token, explicit).await, expected);

    // Only February, every status (h included now):
    //   d e f g h i -> 6; credit 200.55; debit 12.25 + 30.00 + 7.75 + 99.99 = 149.99; net 50.56
    //   average = (200.55 + 149.99) / 6 = 350.54 / 6 = 58.42333 -> 58.42
    //   2026-02-03: g h i -> 3 ties with 2026-02-01 (3): the earlier wins
    //   food: d h -> 2, debit 12.25 + 99.99 = 112.24; null: e f i -> 3; transport: g -> 1
    let february = json!({
        "from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "statuses": ["PENDING", "SUCCESS", "FAILED"],
    });
    assert_eq!(
        analytics(&app, token, february).await,
        json!({
            "currency": "USD",
            "count": 6,
            "averageAmount": "58.42",
            "totalCredit": "200.55",
            "totalDebit": "149.99",
            "net": "50.56",
            "busiestDay": { "date": "2026-02-01", "count": 3 },
            "byDay": [
                { "date": "2026-02-01", "count": 3, "totalCredit": "200.00", "totalDebit": "42.25", "net": "157.75" },
                { "date": "2026-02-03", "count": 3, "totalCredit": "0.55", "totalDebit": "107.74", "net": "-107.19" },
            ],
            "byMonth": [
                { "month": "2026-02", "count": 6, "totalCredit": "200.55", "totalDebit": "149.99", "net": "50.56" },
            ],
            "byCategory": [
                { "category": null, "count": 3, "totalCredit": "200.55", "totalDebit": "30.00", "net": "170.55" },
                { "category": "food", "count": 2, "totalCredit": "0.00", "totalDebit": "112.24", "net": "-112.24" },
                { "category": "transport", "count": 1, "totalCredit": "0.00", "totalDebit": "7.75", "net": "-7.75" },
            ],
            "currencies": ["USD"],
        })
    );
}

async fn busiest(app: &TestApp, token: &str, args: Value) -> Value {
    let query = "query($to: DateTime) { transactionAnalytics(to: $to) { busiestDay { date count } } }";
    app.data(Some(token), query, args).await["transactionAnalytics"]["busiestDay"].clone()
}

async fn busiest_day_tie_goes_to_the_earliest(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    // Created latest day first, so insertion order cannot explain the answer.
    create_many(
        &app,
        token,
        &[
            tx("DEBIT", "1.00", "2026-03-09T08:00:00Z", None),
            tx("DEBIT", "1.00", "2026-03-09T09:00:00Z", None),
            tx("DEBIT", "1.00", "2026-03-09T10:00:00Z", None),
            tx("DEBIT", "1.00", "2026-03-05T23:00:00Z", None),
            tx("DEBIT", "1.00", "2026-03-05T01:00:00Z", None),
            tx("CREDIT", "1.00", "2026-03-02T12:00:00Z", None),
            tx("CREDIT", "1.00", "2026-03-02T00:00:00Z", None),
            tx("CREDIT", "1.00", "2026-03-07T00:00:00Z", None),
        ],
    )
    .await;
    // Up to 03-09: 03-02 (2), 03-05 (2), 03-07 (1): a tie, the earliest wins.
    assert_eq!(
        busiest(&app, token, json!({ "to": "2026-03-09T00:00:00Z" })).await,
        json!({ "date": "2026-03-02", "count": 2 })
    );
    // With 03-09 (3): the most wins, though it is the latest.
    assert_eq!(busiest(&app, token, json!({})).await, json!({ "date": "2026-03-09", "count": 3 }));
}

async fn several_currencies(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = [
        tx("CREDIT", "10.00", "2026-04-01T10:00:00Z", Some("misc")),
        tx("DEBIT", "2.50", "2026-04-02T10:00:00Z", Some("misc")),
        with(tx("CREDIT", "100.10", "2026-04-01T11:00:00Z", Some("travel")), "currency", "EUR"),
        with(tx("DEBIT", "0.05", "2026-05-01T11:00:00Z", None), "currency", "eur"),
        with(tx("CREDIT", "500", "2026-04-01T12:00:00Z", Some("gift")), "currency", "JPY"),
        with(tx("DEBIT", "1200", "2026-04-03T12:00:00Z", Some("food")), "currency", "JPY"),
        with(tx("CREDIT", "3", "2026-04-03T13:00:00Z", Some("gift")), "currency", "JPY"),
        with(with(tx("DEBIT", "9.99", "2026-04-04T00:00:00Z", None), "currency", "GBP"), "status", "FAILED"),
    ];
    create_many(&app, token, &rows).await;

    // Default: USD only. credit 10.00, debit 2.50, net 7.50; average (10.00 + 2.50) / 2 = 6.25.
    // GBP is only FAILED, so not among the currencies by default.
    assert_eq!(
        analytics(&app, token, json!({})).await,
        json!({
            "currency": "USD", "count": 2, "averageAmount": "6.25",
            "totalCredit": "10.00", "totalDebit": "2.50", "net": "7.50",
            "busiestDay": { "date": "2026-04-01", "count": 1 },
            "byDay": [
                { "date": "2026-04-01", "count": 1, "totalCredit": "10.00", "totalDebit": "0.00", "net": "10.00" },
                { "date": "2026-04-02", "count": 1, "totalCredit": "0.00", "totalDebit": "2.50", "net": "-2.50" },
            ],
            "byMonth": [{ "month": "2026-04", "count": 2, "totalCredit": "10.00", "totalDebit": "2.50", "net": "7.50" }],
            "byCategory": [{ "category": "misc", "count": 2, "totalCredit": "10.00", "totalDebit": "2.50", "net": "7.50" }],
            "currencies": ["EUR", "JPY", "USD"],
        })
    );

    // EUR, 2 digits: credit 100.10, debit 0.05, net 100.05; average 100.15 / 2 = 50.075 -> 50.08
    // (half away from zero). Categories tie at 1: travel, then the uncategorised one.
    let eur = analytics(&app, token, json!({ "currency": "EUR" })).await;
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(eur["count"], 2);
    assert_eq!(eur["averageAmount"], "50.08");
    assert_eq!(eur["totalCredit"], "100.10");
    assert_eq!(eur["totalDebit"], "0.05");
    assert_eq!(eur["net"], "100.05");
    assert_eq!(eur["busiestDay"], json!({ "date": "2026-04-01", "count": 1 }));
    assert_eq!(
        eur["byMonth"],
        json!([
            { "month": "2026-04", "count": 1, "totalCredit": "100.10", "totalDebit": "0.00", "net": "100.10" },
            { "month": "2026-05", "count": 1, "totalCredit": "0.00", "totalDebit": "0.05", "net": "-0.05" },
        ])
    );
    let mut eur_categories: Vec<Value> = eur["byCategory"].as_array().unwrap().clone();
    eur_categories.sort_by(|a, b| a["category"].as_str().cmp(&b["category"].as_str()));
    assert_eq!(
        eur_categories,
        [
            json!({ "category": null, "count": 1, "totalCredit": "0.00", "totalDebit": "0.05", "net": "-0.05" }),
            json!({ "category": "travel", "count": 1, "totalCredit": "100.10", "totalDebit": "0.00", "net": "100.10" }),
        ]
    );
    assert_eq!(eur["currencies"], json!(["EUR", "JPY", "USD"]));

    // JPY, 0 digits: credit 500 + 3 = 503, debit 1200, net -697;
    // average (500 + 1200 + 3) / 3 = 1703 / 3 = 567.67 -> 568.
    // byDay: 04-01 gift 500; 04-03 food 1200 and gift 3.
    // byCategory: gift 2 (500 + 3 = 503 credit), food 1 (1200 debit).
    assert_eq!(
        analytics(&app, token, json!({ "currency": "jpy" })).await,
        json!({
            "currency": "JPY", "count": 3, "averageAmount": "568",
            "totalCredit": "503", "totalDebit": "1200", "net": "-697",
            "busiestDay": { "date": "2026-04-03", "count": 2 },
            "byDay": [
                { "date": "2026-04-01", "count": 1, "totalCredit": "500", "totalDebit": "0", "net": "500" },
                { "date": "2026-04-03", "count": 2, "totalCredit": "3", "totalDebit": "1200", "net": "-1197" },
            ],
            "byMonth": [{ "month": "2026-04", "count": 3, "totalCredit": "503", "totalDebit": "1200", "net": "-697" }],
            "byCategory": [
                { "category": "gift", "count": 2, "totalCredit": "503", "totalDebit": "0", "net": "503" },
                { "category": "food", "count": 1, "totalCredit": "0", "totalDebit": "1200", "net": "-1200" },
            ],
            "currencies": ["EUR", "JPY", "USD"],
        })
    );

    // A currency with no transactions: zero with its own digits.
    let bhd = analytics(&app, token, json!({ "currency": "BHD" })).await;
    assert_eq!(
        (bhd["count"].clone(), bhd["totalCredit"].clone(), bhd["averageAmount"].clone()),
        (json!(0), json!("0.000"), Value::Null)
    );

    // FAILED GBP shows up once FAILED is asked for.
    let gbp = analytics(&app, token, json!({ "currency": "GBP", "statuses": ["FAILED"] })).await;
    assert_eq!(gbp["count"], 1);
    assert_eq!(gbp["totalDebit"], "9.99");
    assert_eq!(gbp["net"], "-9.99");
    assert_eq!(gbp["currencies"], json!(["GBP"]));
    let all = analytics(&app, token, json!({ "statuses": ["FAILED", "PENDING", "SUCCESS"] })).await;
    assert_eq!(all["currencies"], json!(["EUR", "GBP", "JPY", "USD"]));
    // currencies follow the time range too.
    let may = analytics(&app, token, json!({ "from": "2026-05-01T00:00:00Z" })).await;
    assert_eq!(may["currencies"], json!(["EUR"]));
    assert_eq!(may["count"], 0);

    // Unknown currencies are the client's mistake.
    for bad in ["XXX", "DOLLARS", ""] {
        let body = app.gql(Some(token), ANALYTICS, json!({ "currency": bad })).await;
        assert_error(&body, "BAD_USER_INPUT");
    }
}

async fn statuses_select_what_counts(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    create_many(
        &app,
        token,
        &[
            tx("CREDIT", "10.00", "2026-06-01T00:00:00Z", None),
            with(tx("DEBIT", "20.00", "2026-06-01T01:00:00Z", None), "status", "PENDING"),
            with(tx("CREDIT", "40.00", "2026-06-02T00:00:00Z", None), "status", "FAILED"),
            with(tx("DEBIT", "1.00", "2026-06-02T01:00:00Z", None), "status", "FAILED"),
        ],
    )
    .await;
    let summary = |a: &Value| {
        json!([a["count"], a["totalCredit"], a["totalDebit"], a["net"], a["averageAmount"], a["busiestDay"]])
    };
    // Default (PENDING + SUCCESS): 10.00 credit, 20.00 debit; average 30.00 / 2 = 15.00.
    assert_eq!(
        summary(&analytics(&app, token, json!({})).await),
        json!([2, "10.00", "20.00", "-10.00", "15.00", { "date": "2026-06-01", "count": 2 }])
    );
    // FAILED only: 40.00 credit, 1.00 debit; average 41.00 / 2 = 20.50.
    assert_eq!(
        summary(&analytics(&app, token, json!({ "statuses": ["FAILED"] })).await),
        json!([2, "40.00", "1.00", "39.00", "20.50", { "date": "2026-06-02", "count": 2 }])
    );
    // SUCCESS only.
    assert_eq!(
        summary(&analytics(&app, token, json!({ "statuses": ["SUCCESS"] })).await),
        json!([1, "10.00", "0.00", "10.00", "10.00", { "date": "2026-06-01", "count": 1 }])
    );
    // Everything: 50.00 credit, 21.00 debit; average 71.00 / 4 = 17.75.
    let all = analytics(&app, token, json!({ "statuses": ["PENDING", "SUCCESS", "FAILED", "FAILED"] })).await;
    assert_eq!(summary(&all), json!([4, "50.00", "21.00", "29.00", "17.75", { "date": "2026-06-01", "count": 2 }]));
    assert_eq!(all["byDay"].as_array().unwrap().len(), 2);

    let body = app.gql(Some(token), ANALYTICS, json!({ "statuses": [] })).await;
    assert_error(&body, "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "statuses");
    let body = app.gql(Some(token), ANALYTICS, json!({ "statuses": ["DONE"] })).await;
    assert_error(&body, "BAD_USER_INPUT");
}

async fn time_range_and_utc_days(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let rows = create_many(
        &app,
        token,
        &[
            /* 1 */ tx("CREDIT", "1.00", "2026-03-01T00:00:00Z", None),
            /* 2 */ tx("DEBIT", "2.00", "2026-03-01T23:30:00-02:00", None), // 2026-03-02T01:30:00Z
            /* 3 */ tx("CREDIT", "4.00", "2026-03-02T23:59:59.999999Z", None),
            /* 4 */ tx("DEBIT", "8.00", "2026-03-03T00:00:00Z", None),
            /* 5 */ tx("CREDIT", "16.00", "2026-04-01T00:00:00Z", None),
        ],
    )
    .await;
    assert_eq!(crate::ledger::ts(&rows[1]["occurredAt"]).to_rfc3339(), "2026-03-02T01:30:00+00:00");

    // Everything: days are UTC days, so row 2 is on 03-02 (with row 3, 1 µs before midnight).
    //   03-01: 1 -> credit 1.00; 03-02: 2 3 -> credit 4.00, debit 2.00, net 2.00;
    //   03-03: 4 -> debit 8.00; 04-01: 5 -> credit 16.00
    //   2026-03: 1 2 3 4 -> credit 5.00, debit 10.00, net -5.00; 2026-04: 5 -> credit 16.00
    //   total: credit 21.00, debit 10.00, net 11.00; average 31.00 / 5 = 6.20
    let everything = analytics(&app, token, json!({})).await;
    assert_eq!(
        everything["byDay"],
        json!([
            { "date": "2026-03-01", "count": 1, "totalCredit": "1.00", "totalDebit": "0.00", "net": "1.00" },
            { "date": "2026-03-02", "count": 2, "totalCredit": "4.00", "totalDebit": "2.00", "net": "2.00" },
            { "date": "2026-03-03", "count": 1, "totalCredit": "0.00", "totalDebit": "8.00", "net": "-8.00" },
            { "date": "2026-04-01", "count": 1, "totalCredit": "16.00", "totalDebit": "0.00", "net": "16.00" },
        ])
    );
    assert_eq!(
        everything["byMonth"],
        json!([
            { "month": "2026-03", "count": 4, "totalCredit": "5.00", "totalDebit": "10.00", "net": "-5.00" },
            { "month": "2026-04", "count": 1, "totalCredit": "16.00", "totalDebit": "0.00", "net": "16.00" },
        ])
    );
    assert_eq!(everything["busiestDay"], json!({ "date": "2026-03-02", "count": 2 }));
    assert_eq!(everything["averageAmount"], "6.20");
    assert_eq!(everything["net"], "11.00");

    let totals = |a: &Value| json!([a["count"], a["totalCredit"], a["totalDebit"]]);
    // (from, to, expected [count, credit, debit]); from inclusive, to exclusive.
    let cases = [
        // rows 1 2 3: 1 exactly at `from` is in, 4 exactly at `to` is out.
        (json!("2026-03-01T00:00:00Z"), json!("2026-03-03T00:00:00Z"), json!([3, "5.00", "2.00"])),
        // rows 2 3 4 5
        (json!("2026-03-02T00:00:00Z"), Value::Null, json!([4, "20.00", "10.00"])),
        // The same instant written with an offset.
        (json!("2026-03-01T22:00:00-02:00"), Value::Null, json!([4, "20.00", "10.00"])),
        // row 1 only: row 2 is exactly at `to`.
        (Value::Null, json!("2026-03-02T01:30:00Z"), json!([1, "1.00", "0.00"])),
        (Value::Null, json!("2026-03-01T23:30:00-02:00"), json!([1, "1.00", "0.00"])),
        // A 1 µs window holds exactly row 2.
        (json!("2026-03-02T01:30:00Z"), json!("2026-03-02T01:30:00.000001Z"), json!([1, "0.00", "2.00"])),
        // An empty window.
        (json!("2026-03-02T01:30:00Z"), json!("2026-03-02T01:30:00Z"), json!([0, "0.00", "0.00"])),
        // Row 3's last microsecond.
        (json!("2026-03-02T23:59:59.999999Z"), json!("2026-03-03T00:00:00Z"), json!([1, "4.00", "0.00"])),
    ];
    for (from, to, expected) in cases {
        let result = analytics(&app, token, json!({ "from": from, "to": to })).await;
        assert_eq!(totals(&result), expected, "from {from} to {to}");
    }

    // March only, by day and month.
    let march = analytics(&app, token, json!({ "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z" })).await;
    assert_eq!(march["byDay"].as_array().unwrap().len(), 3);
    assert_eq!(
        march["byMonth"],
        json!([{ "month": "2026-03", "count": 4, "totalCredit": "5.00", "totalDebit": "10.00", "net": "-5.00" }])
    );

    let body =
        app.gql(Some(token), ANALYTICS, json!({ "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z" })).await;
    assert_error(&body, "BAD_USER_INPUT");
    let body = app.gql(Some(token), ANALYTICS, json!({ "from": "last tuesday" })).await;
    assert_error(&body, "BAD_USER_INPUT");
}

async fn average_rounds_half_away_from_zero(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    // One group per day; each query below covers one day.
    create_many(
        &app,
        token,
        &[
            // 0.01 + 0.02 = 0.03; / 2 = 0.015 -> 0.02
            tx("CREDIT", "0.01", "2026-07-01T00:00:00Z", None),
            tx("DEBIT", "0.02", "2026-07-01T01:00:00Z", None),
            // 10.00 + 10.01 + 10.01 = 30.02; / 3 = 10.00666.. -> 10.01
            tx("CREDIT", "10.00", "2026-07-02T00:00:00Z", None),
            tx("CREDIT", "10.01", "2026-07-02T01:00:00Z", None),
            tx("DEBIT", "10.01", "2026-07-02T02:00:00Z", None),
            // 0.02 + 0.03 = 0.05; / 2 = 0.025 -> 0.03 (banker's rounding would give 0.02)
            tx("DEBIT", "0.02", "2026-07-03T00:00:00Z", None),
            tx("DEBIT", "0.03", "2026-07-03T01:00:00Z", None),
            // 1.00 + 1.00 + 1.01 = 3.01; / 3 = 1.00333.. -> 1.00 (down)
            tx("DEBIT", "1.00", "2026-07-04T00:00:00Z", None),
            tx("DEBIT", "1.00", "2026-07-04T01:00:00Z", None),
            tx("DEBIT", "1.01", "2026-07-04T02:00:00Z", None),
            // JPY: 2 + 3 = 5; / 2 = 2.5 -> 3 (banker's: 2)
            with(tx("DEBIT", "2", "2026-07-05T00:00:00Z", None), "currency", "JPY"),
            with(tx("DEBIT", "3", "2026-07-05T01:00:00Z", None), "currency", "JPY"),
            // BHD: 0.001 + 0.002 = 0.003; / 2 = 0.0015 -> 0.002
            with(tx("DEBIT", "0.001", "2026-07-06T00:00:00Z", None), "currency", "BHD"),
            with(tx("DEBIT", "0.002", "2026-07-06T01:00:00Z", None), "currency", "BHD"),
        ],
    )
    .await;
    let cases = [
        ("2026-07-01", "USD", "0.02"),
        ("2026-07-02", "USD", "10.01"),
        ("2026-07-03", "USD", "0.03"),
        ("2026-07-04", "USD", "1.00"),
        ("2026-07-05", "JPY", "3"),
        ("2026-07-06", "BHD", "0.002"),
    ];
    for (day, currency, expected) in cases {
        let args =
            json!({ "from": format!("{day}T00:00:00Z"), "to": format!("{day}T23:59:59Z"), "currency": currency });
        let result = app
            .data(
                Some(token),
                "query($from: DateTime, $to: DateTime, $currency: String) { transactionAnalytics(from: $from, to: $to, currency: $currency) { averageAmount } }",
                args,
            )
            .await;
        assert_eq!(result["transactionAnalytics"]["averageAmount"], expected, "{day} {currency}");
    }
}

async fn analytics_requires_authentication(app: TestApp) {
    let body = app.gql(None, ANALYTICS, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED");
    let body = app.gql(None, "{ transactionAnalytics { count } }", json!({})).await;
    assert_error(&body, "UNAUTHENTICATED");
}

/// Categories with equal counts are ordered by name; the uncategorised group has no name, and
/// must land in the same place on every backend (here: after the named ones).
async fn category_ties_order_the_same_on_every_backend(app: TestApp) {
    let user = app.new_user().await;
    create_many(
        &app,
        &user.access_token,
        &[
            tx("DEBIT", "1.00", "2026-08-01T00:00:00Z", Some("b")),
            tx("DEBIT", "2.00", "2026-08-01T00:00:00Z", None),
            tx("DEBIT", "3.00", "2026-08-01T00:00:00Z", Some("a")),
            tx("DEBIT", "4.00", "2026-08-01T00:00:00Z", Some("c")),
            tx("CREDIT", "5.00", "2026-08-01T00:00:00Z", Some("c")),
        ],
    )
    .await;
    let data = app
        .data(Some(&user.access_token), "{ transactionAnalytics { byCategory { category count } } }", json!({}))
        .await;
    // c has 2; a, b and the uncategorised one tie at 1.
    assert_eq!(
        data["transactionAnalytics"]["byCategory"],
        json!([
            { "category": "c", "count": 2 },
            { "category": "a", "count": 1 },
            { "category": "b", "count": 1 },
            { "category": null, "count": 1 },
        ])
    );
}

/// The largest amount is 10^12 and sums are scaled by 10^4 in an i64 (max 9.22 * 10^18), so 923
/// maximal transactions sum to 9.23 * 10^18: beyond i64. The figures must still be right.
async fn sums_of_many_maximal_amounts(app: TestApp) {
    let user = app.new_user().await;
    let inputs: Vec<Value> = (0..923).map(|_| tx("CREDIT", "1000000000000", "2026-09-01T00:00:00Z", None)).collect();
    create_many(&app, &user.access_token, &inputs).await;
    let body = app
        .gql(Some(&user.access_token), "{ transactionAnalytics { count totalCredit averageAmount } }", json!({}))
        .await;
    // 923 * 1000000000000 = 923000000000000
    assert_eq!(
        untraced(body),
        json!({ "data": { "transactionAnalytics": {
            "count": 923, "totalCredit": "923000000000000.00", "averageAmount": "1000000000000.00",
        } }, "extensions": { "cost": 1 } })
    );
}

crate::backend_tests!(
    empty_set,
    fixed_data_set,
    busiest_day_tie_goes_to_the_earliest,
    several_currencies,
    statuses_select_what_counts,
    time_range_and_utc_days,
    average_rounds_half_away_from_zero,
    analytics_requires_authentication,
);

// Regressions: NULL categories sorted differently per backend; sums overflowed i64.
crate::backend_tests!(category_ties_order_the_same_on_every_backend, sums_of_many_maximal_amounts);
