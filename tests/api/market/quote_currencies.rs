//! Quote currencies and lot sizes: a forex pair is in its quote currency (USDCNH in CNH, the
//! offshore yuan, not CNY), a `…USDT` crypto pair in USDT with the exchange's fractional step as
//! its lot; both codes are accepted for quotes only, never as money in the ledger.

use rust_decimal::Decimal;
use serde_json::json;

use crate::helpers::*;

const CLASS: &str = "query($c: AssetClass!) { securities(assetClass: $c, first: 100) {
  nodes { symbol currency lotSize } } }";

crate::backend_tests!(pairs_are_in_their_quote_currency_with_exact_lots);

async fn pairs_are_in_their_quote_currency_with_exact_lots(app: TestApp) {
    let forex = app.data(None, CLASS, json!({ "c": "FOREX" })).await;
    let forex = forex["securities"]["nodes"].as_array().unwrap().clone();
    assert_eq!(forex.len(), 13);
    for pair in &forex {
        let symbol = pair["symbol"].as_str().unwrap();
        assert_eq!(pair["currency"].as_str().unwrap(), &symbol[symbol.len() - 3..], "{pair}");
        assert_eq!(pair["lotSize"], "100000", "a standard lot: {pair}");
    }
    let currency = |symbol: &str| forex.iter().find(|p| p["symbol"] == symbol).unwrap()["currency"].clone();
    assert_eq!(currency("FX:USDJPY"), "JPY");
    assert_eq!(currency("FX:USDCNH"), "CNH");

    let crypto = app.data(None, CLASS, json!({ "c": "CRYPTO" })).await;
    let crypto = crypto["securities"]["nodes"].as_array().unwrap().clone();
    assert_eq!(crypto.len(), 11);
    for pair in &crypto {
        assert!(pair["symbol"].as_str().unwrap().ends_with("USDT"), "{pair}");
        assert_eq!(pair["currency"], "USDT", "{pair}");
        let lot: Decimal = pair["lotSize"].as_str().expect("lotSize is a decimal string").parse().unwrap();
        assert!(lot > Decimal::ZERO && lot <= Decimal::ONE, "{pair}");
    }
    let lot = |symbol: &str| crypto.iter().find(|p| p["symbol"] == symbol).unwrap()["lotSize"].clone();
    assert_eq!(lot("CRYPTO:BTCUSDT"), "0.00001");
    assert_eq!(lot("CRYPTO:ETHUSDT"), "0.0001");
    assert_eq!(lot("CRYPTO:DOGEUSDT"), "1");

    let board = app.data(None, "{ security(symbol: \"700.HK\") { currency lotSize } }", json!({})).await;
    assert_eq!(board["security"], json!({ "currency": "HKD", "lotSize": "100" }));

    // Quote-only codes are not money: the ledger refuses them.
    let user = app.new_user().await;
    let create = "mutation($c: String) { createTransaction(input: {amount: \"10\", currency: $c, kind: DEBIT, category: \"x\"}) { id } }";
    for code in ["USDT", "CNH"] {
        let body = app.gql(Some(&user.access_token), create, json!({ "c": code })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{code}: {body}");
    }
    let body = app.gql(Some(&user.access_token), create, json!({ "c": "CNY" })).await;
    assert!(body["data"]["createTransaction"]["id"].is_string(), "{body}");
}
