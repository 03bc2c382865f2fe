//! Hostile input: NUL bytes, over-long strings, crafted cursors, duplicate symbols and dates
//! out of range, in every argument and input field that reaches SQL, on SQLite and
//! PostgreSQL. Each must be refused with `BAD_USER_INPUT` (never `INTERNAL`: PostgreSQL
//! cannot receive a NUL byte, and refuses timestamps chrono happily builds), or answered.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;

/// A string argument and where it goes: a query with one `$v: String` variable.
struct Case {
    name: &'static str,
    query: &'static str,
}

/// Every String argument or input field of the API that reaches the database, as a query
/// taking it from `$v`. (`signUp`/`login` are the accounts domain's; they are included so a
/// regression anywhere shows here. `region` arguments are the `Region` enum, refused by
/// validation when not one of its values: `market::status`.)
const STRING_CASES: &[Case] = &[
    Case { name: "securities.search", query: "query($v: String) { securities(search: $v) { nodes { symbol } } }" },
    Case { name: "securities.after", query: "query($v: String) { securities(after: $v) { nodes { symbol } } }" },
    Case { name: "security.symbol", query: "query($v: String!) { security(symbol: $v) { name } }" },
    Case { name: "quote.symbol", query: "query($v: String!) { quote(symbol: $v) { last } }" },
    Case { name: "quotes.symbols", query: "query($v: String!) { quotes(symbols: [$v]) { last } }" },
    Case { name: "klines.symbol", query: "query($v: String!) { klines(symbol: $v, interval: ONE_DAY) { close } }" },
    Case { name: "orderBook.symbol", query: "query($v: String!) { orderBook(symbol: $v) { symbol } }" },
    Case { name: "transaction.id", query: "query($v: ID!) { transaction(id: $v) { id } }" },
    Case { name: "transactions.after", query: "query($v: String) { transactions(after: $v) { nodes { id } } }" },
    Case {
        name: "transactions.before",
        query: "query($v: String) { transactions(last: 5, before: $v) { nodes { id } } }",
    },
    Case {
        name: "transactions.filter.category",
        query: "query($v: String) { transactions(filter: { category: $v }) { totalCount } }",
    },
    Case {
        name: "transactions.filter.currency",
        query: "query($v: String) { transactions(filter: { currency: $v }) { totalCount } }",
    },
    Case {
        name: "transactionAnalytics.currency",
        query: "query($v: String) { transactionAnalytics(currency: $v) { count } }",
    },
    Case {
        name: "createTransaction.description",
        query: "mutation($v: String) { createTransaction(input: { amount: \"1\", kind: DEBIT, description: $v }) { id } }",
    },
    Case {
        name: "createTransaction.category",
        query: "mutation($v: String) { createTransaction(input: { amount: \"1\", kind: DEBIT, category: $v }) { id } }",
    },
    Case {
        name: "createTransaction.currency",
        query: "mutation($v: String) { createTransaction(input: { amount: \"1\", kind: DEBIT, currency: $v }) { id } }",
    },
    Case {
        name: "createTransaction.idempotencyKey",
        query: "mutation($v: String) { createTransaction(input: { amount: \"1\", kind: DEBIT, idempotencyKey: $v }) { id } }",
    },
    Case { name: "deleteTransaction.id", query: "mutation($v: ID!) { deleteTransaction(id: $v) }" },
    Case {
        name: "deleteTransaction.idempotencyKey",
        query: "mutation($v: String) { deleteTransaction(id: \"0192f4a8-0000-7000-8000-000000000000\", idempotencyKey: $v) }",
    },
    Case {
        name: "login.email",
        query: "mutation($v: String!) { login(email: $v, password: \"whatever-password\") { accessToken } }",
    },
    Case {
        name: "signUp.fullName",
        query: "mutation($v: String!) { signUp(input: { email: \"nul@example.com\", password: \"correct horse battery\", fullName: $v }) { accessToken } }",
    },
    Case {
        name: "signUp.email",
        query: "mutation($v: String!) { signUp(input: { email: $v, password: \"correct horse battery\", fullName: \"N\" }) { accessToken } }",
    },
    Case { name: "logout.refreshToken", query: "mutation($v: String!) { logout(refreshToken: $v) }" },
    Case { name: "refreshToken.token", query: "mutation($v: String!) { refreshToken(token: $v) { accessToken } }" },
];

/// Update cases need an existing transaction id: `$id` is filled in.
const UPDATE_CASES: &[Case] = &[
    Case {
        name: "updateTransaction.description",
        query: "mutation($id: ID!, $v: String) { updateTransaction(id: $id, input: { description: $v }) { id } }",
    },
    Case {
        name: "updateTransaction.category",
        query: "mutation($id: ID!, $v: String) { updateTransaction(id: $id, input: { category: $v }) { id } }",
    },
    Case {
        name: "updateTransaction.currency",
        query: "mutation($id: ID!, $v: String) { updateTransaction(id: $id, input: { currency: $v }) { id } }",
    },
    Case {
        name: "updateTransaction.idempotencyKey",
        query: "mutation($id: ID!, $v: String) { updateTransaction(id: $id, input: { idempotencyKey: $v }) { id } }",
    },
];

/// The codes a refusal of hostile input may carry: BAD_USER_INPUT, or for credentials
/// UNAUTHENTICATED (a NUL byte is simply not anyone's email or token). Never INTERNAL.
#[track_caller]
fn assert_refused(body: &Value, what: &str) {
    if what.starts_with("logout") {
        // `logout` answers `true` whatever the token (it reveals nothing); it must not fail.
        assert_eq!(body["data"]["logout"], true, "{what}: {body}");
        return;
    }
    let code =
        body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("{what}: not refused: {body}"));
    assert!(
        code == "BAD_USER_INPUT"
            || (what.starts_with("login") || what.starts_with("refreshToken")) && code == "UNAUTHENTICATED",
        "{what}: {code}: {body}"
    );
}

async fn run_all(app: &TestApp, token: &str, value: &str, label: &str) {
    let before = count(app, token).await;
    let id = app
        .data(Some(token), "mutation { createTransaction(input: { amount: \"1\", kind: DEBIT }) { id } }", json!({}))
        .await["createTransaction"]["id"]
        .clone();
    for case in STRING_CASES {
        let body = app.gql(Some(token), case.query, json!({ "v": value })).await;
        assert_refused(&body, &format!("{} with {label}", case.name));
    }
    for case in UPDATE_CASES {
        let body = app.gql(Some(token), case.query, json!({ "id": id, "v": value })).await;
        assert_refused(&body, &format!("{} with {label}", case.name));
    }
    // Nothing was written by any of them.
    assert_eq!(count(app, token).await, before + 1, "{label}: only the one made above");
}

async fn count(app: &TestApp, token: &str) -> i64 {
    app.data(Some(token), "{ transactions { totalCount } }", json!({})).await["transactions"]["totalCount"]
        .as_i64()
        .unwrap_or(-1)
}

/// A NUL byte alone, and inside otherwise valid values (`AAPL\0.US`, `fo\0od`).
async fn nul_bytes_in_every_string_argument(app: TestApp) {
    let user = app.new_user().await;
    for (value, label) in [("\0", "a NUL byte"), ("US\0", "a trailing NUL"), ("AAPL.US\0", "a symbol and a NUL")] {
        run_all(&app, &user.access_token, value, label).await;
    }
    // The reported cases, exactly.
    for query in [
        "{ securities(search: \"a\\u0000b\") { nodes { symbol } } }",
        "{ transactions(filter: { category: \"fo\\u0000od\" }) { nodes { id } } }",
    ] {
        let body = app.gql(Some(&user.access_token), query, json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
}

async fn over_long_strings(app: TestApp) {
    let user = app.new_user().await;
    // Far beyond every limit, within the body limit.
    let long = "A".repeat(20_000);
    run_all(&app, &user.access_token, &long, "20,000 characters").await;
    // Just over the documented limits.
    for (query, vars) in [
        ("query($v: String) { securities(search: $v) { totalCount } }", json!({ "v": "a".repeat(101) })),
        (
            "query($v: String) { transactions(filter: { category: $v }) { totalCount } }",
            json!({ "v": "c".repeat(101) }),
        ),
        (
            "mutation($v: String) { createTransaction(input: { amount: \"1\", kind: DEBIT, idempotencyKey: $v }) { id } }",
            json!({ "v": "k".repeat(256) }),
        ),
    ] {
        let body = app.gql(Some(&user.access_token), query, vars).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Cursors of every connection, made by hand: each is BAD_USER_INPUT naming the argument.
async fn crafted_cursors(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    app.data(token.into(), "mutation { createTransaction(input: { amount: \"1\", kind: DEBIT }) { id } }", json!({}))
        .await;
    let id = "0192f4a8-0000-7000-8000-000000000000";
    let for_order = |tag: &str| -> Vec<String> {
        vec![
            b64(&format!("v1:{tag}:-8210298412800000000:{id}")), // the reported one
            b64(&format!("v1:{tag}:-1:{id}")),
            b64(&format!("v1:{tag}:9223372036854775807:{id}")),
            b64(&format!("v1:{tag}:99999999999999999999999:{id}")), // overflows i64
            b64(&format!("v1:{tag}:253402300799000000:{id}")),      // 9999-12-31
            b64(&format!("v2:{tag}:1:{id}")),
            b64(&format!("v1:xx:1:{id}")),
            b64(&format!("v1:{tag}:1:not-a-uuid")),
            b64(&format!("v1:{tag}:1:{id}\0")),
            b64(&format!("v1:{tag}:1\0:{id}")),
            b64(&format!("v1:{tag}:1:{id}:extra")),
            format!("{}!!", b64(&format!("v1:{tag}:1:{id}"))),
            "%%%not-base64%%%".to_owned(),
            "\0".to_owned(),
            "A".repeat(5_000),
            String::new(),
        ]
    };
    for (order, tag) in
        [("OCCURRED_AT_DESC", "od"), ("OCCURRED_AT_ASC", "oa"), ("AMOUNT_DESC", "ad"), ("AMOUNT_ASC", "aa")]
    {
        for cursor in for_order(tag) {
            for (arg, first_or_last) in [("after", "first"), ("before", "last")] {
                let query = format!(
                    "query($c: String) {{ transactions(orderBy: {order}, {first_or_last}: 5, {arg}: $c) {{ nodes {{ id }} }} }}"
                );
                let body = app.gql(Some(token), &query, json!({ "c": cursor })).await;
                assert_eq!(
                    body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{order} {arg} {cursor:?}: {body}"
                );
                assert_eq!(body["errors"][0]["extensions"]["field"], arg, "{body}");
            }
        }
    }
    // Keys out of range for one kind of order only: 0 is the epoch but no amount; 2100-01-01
    // is 420 million as an amount but past the last time; amounts stop at 10^16.
    for (order, tag, key) in [
        ("AMOUNT_ASC", "aa", "0"),
        ("AMOUNT_DESC", "ad", "10000000000000001"),
        ("OCCURRED_AT_ASC", "oa", "4102444800000000"),
        ("OCCURRED_AT_DESC", "od", "-1"),
    ] {
        let cursor = b64(&format!("v1:{tag}:{key}:{id}"));
        let query = format!("query($c: String) {{ transactions(orderBy: {order}, after: $c) {{ nodes {{ id }} }} }}");
        let body = app.gql(Some(token), &query, json!({ "c": cursor })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{order} {key}: {body}");
    }
    for (order, tag, key) in [("AMOUNT_ASC", "aa", "4102444800000000"), ("OCCURRED_AT_ASC", "oa", "0")] {
        let cursor = b64(&format!("v1:{tag}:{key}:{id}"));
        let query = format!("query($c: String) {{ transactions(orderBy: {order}, after: $c) {{ nodes {{ id }} }} }}");
        app.data(Some(token), &query, json!({ "c": cursor })).await;
    }
    // A real cursor still works at the edges of the range.
    let data = app.data(Some(token), "{ transactions(first: 1) { pageInfo { endCursor } } }", json!({})).await;
    let end = data["transactions"]["pageInfo"]["endCursor"].clone();
    app.data(Some(token), "query($c: String) { transactions(after: $c) { nodes { id } } }", json!({ "c": end })).await;

    // Securities.
    for cursor in [
        b64("v1:sec:\0"),
        b64("v1:sec:AAPL.US\0"),
        b64(&format!("v1:sec:{}", "A".repeat(100))),
        b64("v1:sec:"),
        b64("v2:sec:AAPL.US"),
        b64("v1:tx:AAPL.US"),
        "%%%".to_owned(),
        "A".repeat(5_000),
    ] {
        let body = app
            .gql(None, "query($c: String) { securities(after: $c) { nodes { symbol } } }", json!({ "c": cursor }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "securities {cursor:?}: {body}");
    }
    // A real one pages on.
    let data = app.data(None, "{ securities(first: 2) { pageInfo { endCursor } } }", json!({})).await;
    let end = data["securities"]["pageInfo"]["endCursor"].clone();
    let next = app
        .data(None, "query($c: String) { securities(first: 2, after: $c) { nodes { symbol } } }", json!({ "c": end }))
        .await;
    assert_eq!(next["securities"]["nodes"].as_array().map(Vec::len), Some(2), "{next}");
}

/// `occurredAt` from 1970-01-01 up to (not including) 2100-01-01, in writes, filters and
/// analytics.
async fn occurred_at_out_of_range(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let create = "mutation($at: DateTime) { createTransaction(input: { amount: \"1\", kind: DEBIT, occurredAt: $at }) { id occurredAt } }";
    let out = ["1969-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"];
    for at in out {
        let body = app.gql(Some(token), create, json!({ "at": at })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{at}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "occurredAt", "{body}");
    }
    let mut ids = vec![];
    for at in ["1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z"] {
        let data = app.data(Some(token), create, json!({ "at": at })).await;
        ids.push(data["createTransaction"]["id"].clone());
    }
    let update = "mutation($id: ID!, $at: DateTime) { updateTransaction(id: $id, input: { occurredAt: $at }) { id } }";
    for at in out {
        let body = app.gql(Some(token), update, json!({ "id": ids[0], "at": at })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "update {at}: {body}");
    }
    for (from, to) in [
        (Some("1969-12-31T23:59:59Z"), None),
        (None, Some("2100-01-01T00:00:00.000001Z")),
        (Some("0001-01-01T00:00:00Z"), None),
        (None, Some("9999-12-31T23:59:59Z")),
    ] {
        let vars = json!({ "from": from, "to": to });
        let body = app
            .gql(
                Some(token),
                "query($from: DateTime, $to: DateTime) { transactions(filter: { from: $from, to: $to }) { totalCount } }",
                vars.clone(),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "filter {vars}: {body}");
        let body = app
            .gql(
                Some(token),
                "query($from: DateTime, $to: DateTime) { transactionAnalytics(from: $from, to: $to) { count } }",
                vars.clone(),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "analytics {vars}: {body}");
    }
    let data = app
        .data(
            Some(token),
            "{ transactions(filter: { from: \"1970-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["transactions"]["totalCount"], 2);
}

/// Time arguments of market data at the ends of what the DateTime and Date scalars parse:
/// refused or answered, never INTERNAL.
async fn market_times_far_out(app: TestApp) {
    for (query, vars) in [
        (
            "query($t: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_DAY, before: $t) { time } }",
            json!({ "t": "9999-12-31T23:59:59Z" }),
        ),
        (
            "query($t: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_DAY, before: $t) { time } }",
            json!({ "t": "0001-01-01T00:00:00Z" }),
        ),
        (
            "query($t: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_MINUTE, after: $t, limit: 1000) { time } }",
            json!({ "t": "0001-01-01T00:00:00Z" }),
        ),
        (
            "query($t: DateTime) { klines(symbol: \"AAPL.US\", interval: ONE_MONTH, after: $t) { time } }",
            json!({ "t": "9999-12-31T23:59:59Z" }),
        ),
        (
            "query($f: Date!, $t: Date!) { security(symbol: \"AAPL.US\") { fundamentals(from: $f, to: $t) { nodes { date } } } }",
            json!({ "f": "0001-01-01", "t": "0001-12-31" }),
        ),
        (
            "query($f: Date!, $t: Date!) { security(symbol: \"AAPL.US\") { fundamentals(from: $f, to: $t) { nodes { date } } } }",
            json!({ "f": "9999-01-01", "t": "9999-12-31" }),
        ),
    ] {
        let body = app.gql(None, query, vars.clone()).await;
        let code = body["errors"][0]["extensions"]["code"].as_str();
        assert!(code.is_none() || code == Some("BAD_USER_INPUT"), "{query} {vars}: {body}");
    }
}

/// Duplicates in `quotes(symbols:)`, literal or through canonicalisation: one quote per
/// position, in order, never INTERNAL.
async fn duplicate_symbols_answered_once_per_position(app: TestApp) {
    for symbols in [
        json!(["AAPL.US", "AAPL.US"]),
        json!(["700.HK", "0700.HK"]),
        json!(["AAPL.US", "700.HK", "aapl.us", "0700.HK", "AAPL.US"]),
    ] {
        let data = app
            .data(None, "query($s: [String!]!) { quotes(symbols: $s) { symbol last } }", json!({ "s": symbols }))
            .await;
        let quotes = data["quotes"].as_array().expect("a list");
        assert_eq!(quotes.len(), symbols.as_array().map(Vec::len).unwrap_or(0), "{data}");
        for (quote, asked) in quotes.iter().zip(symbols.as_array().into_iter().flatten()) {
            let canonical = asked.as_str().unwrap_or("").to_ascii_uppercase().trim_start_matches('0').to_owned();
            assert_eq!(quote["symbol"], canonical.as_str(), "{data}");
        }
        for (i, a) in quotes.iter().enumerate() {
            for b in &quotes[i + 1..] {
                if a["symbol"] == b["symbol"] {
                    assert_eq!(a, b, "one instrument, one quote: {data}");
                }
            }
        }
    }
}

/// Changing the currency keeps the stored value (amounts are integers scaled by 10^4 whatever
/// the currency) and re-checks its digits: 12.34 USD is 12.340 BHD, never 1.234 or 12340.
async fn currency_change_never_reinterprets_the_amount(app: TestApp) {
    let user = app.new_user().await;
    let token = user.access_token.as_str();
    let update = "mutation($id: ID!, $input: UpdateTransactionInput!) { updateTransaction(id: $id, input: $input) { amount currency } }";
    let data = app
        .data(
            Some(token),
            "mutation { createTransaction(input: { amount: \"12.34\", kind: DEBIT }) { id } }",
            json!({}),
        )
        .await;
    let id = data["createTransaction"]["id"].clone();
    let body = app.gql(Some(token), update, json!({ "id": id, "input": { "currency": "JPY" } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let data = app.data(Some(token), update, json!({ "id": id, "input": { "currency": "BHD" } })).await;
    assert_eq!(data["updateTransaction"], json!({ "amount": "12.340", "currency": "BHD" }));
    let data = app.data(Some(token), update, json!({ "id": id, "input": { "currency": "USD" } })).await;
    assert_eq!(data["updateTransaction"], json!({ "amount": "12.34", "currency": "USD" }));
    let data =
        app.data(Some(token), update, json!({ "id": id, "input": { "currency": "JPY", "amount": "1234" } })).await;
    assert_eq!(data["updateTransaction"], json!({ "amount": "1234", "currency": "JPY" }));
}

crate::backend_tests!(
    nul_bytes_in_every_string_argument,
    over_long_strings,
    crafted_cursors,
    occurred_at_out_of_range,
    duplicate_symbols_answered_once_per_position,
    market_times_far_out,
    currency_change_never_reinterprets_the_amount,
);
