//! A bad symbol is named in its error, but never echoed in full when it is long: a 300-character
//! (or larger) string is cut at 32 characters with an ellipsis, in every operation that takes a
//! symbol, so a hostile client cannot make responses or logs carry its payload.

use serde_json::{Value, json};

use crate::helpers::*;

/// Every query that takes a symbol, each given `$s`.
const OPERATIONS: &[&str] = &[
    "query($s: String!) { quote(symbol: $s) { symbol } }",
    "query($s: String!) { quotes(symbols: [\"AAPL.US\", $s]) { symbol } }",
    "query($s: String!) { security(symbol: $s) { symbol } }",
    "query($s: String!) { klines(symbol: $s, interval: ONE_DAY) { time } }",
    "query($s: String!) { orderBook(symbol: $s) { symbol } }",
    "query($s: String!) { ticks(symbol: $s) { price } }",
];

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("no error message in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_character_bad_symbol_is_named_but_cut_in_every_error() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let shapes = [
        format!("{}.US", "A".repeat(297)),     // a stock code far too long
        format!("{}:AAPL", "X".repeat(295)),   // an unknown prefix that long
        format!("CRYPTO:{}", "B".repeat(293)), // a pair far too long
        format!("FX:{}", "€".repeat(297)),     // multi-byte: cut on a character boundary
    ];
    for symbol in &shapes {
        assert_eq!(symbol.chars().count(), 300);
        let shown: String = symbol.chars().take(32).collect();
        for operation in OPERATIONS {
            let body = app.gql(None, operation, json!({ "s": symbol })).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{operation}: {body}");
            let text = message(&body);
            assert!(text.contains(&format!("`{shown}…`")), "{operation}: {text}");
            assert!(text.chars().count() < 250, "{} characters: {text}", text.chars().count());
            // The whole response, not just the message, stays short of the payload.
            assert!(!body.to_string().contains(&symbol.chars().take(40).collect::<String>()), "{body}");
        }
    }
    // A short bad symbol is still shown whole, with no ellipsis.
    let body = app.gql(None, OPERATIONS[0], json!({ "s": "NOPE" })).await;
    assert!(message(&body).contains("`NOPE`") && !message(&body).contains('…'), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_bad_currency_is_cut_too() {
    let app = spawn_app(Backend::Sqlite, &[]).await.unwrap();
    let user = app.new_user().await;
    let currency = "Q".repeat(300);
    let query = "query($c: String) { transactionAnalytics(currency: $c) { count } }";
    let body = app.gql(Some(&user.access_token), query, json!({ "c": currency })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(message(&body).contains(&format!("`{}…`", "Q".repeat(32))), "{body}");
    assert!(!body.to_string().contains(&"Q".repeat(40)), "{body}");
}
