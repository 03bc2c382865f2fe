//! API keys through the admin API: creation, expiry, revocation, `lastUsedAt`, paging and bad
//! input.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{API_KEYS, CREATE_KEY, REVOKE_KEY, key_data};
use crate::{
    backend_tests,
    helpers::{PATIENCE, TestApp, error_code, within},
};

backend_tests!(
    keys_expire_and_revoke_through_the_api,
    last_used_at_records_a_keys_use,
    keys_and_members_page_and_refuse_bad_input,
);

const WHO: &str = "{ tenant { slug } }";

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap_or_else(|| panic!("not a time: {value}")).parse().unwrap()
}

async fn keys_expire_and_revoke_through_the_api(app: TestApp) {
    let admin = app.tenant_key("desk-expiry", "pro", "admin").await;
    // An expiry in the past is refused.
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let (_, _, body) = app.gql_key(&admin, CREATE_KEY, json!({ "input": { "name": "old", "expiresAt": past } })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "expiresAt", "{body}");

    // A key that expires in two seconds works until then, and is refused after, with the
    // reason (the clock here is the server's real one: the wait is on what it answers).
    let soon = Utc::now() + Duration::seconds(2);
    let input = json!({ "input": { "name": "short-lived", "scopes": ["MARKET"], "expiresAt": soon.to_rfc3339() } });
    let created = key_data(&app, &admin, CREATE_KEY, input).await;
    let key = created["createApiKey"]["apiKey"].clone();
    assert_eq!(key["scopes"], json!(["MARKET"]));
    assert_eq!(time(&key["expiresAt"]).timestamp_millis(), soon.timestamp_millis(), "{key}");
    let secret = created["createApiKey"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(key_data(&app, &secret, WHO, json!({})).await["tenant"]["slug"], "desk-expiry");
    let mut refusal = Value::Null;
    within(PATIENCE, "the key to expire", async || {
        let (_, _, body) = app.gql_key(&secret, WHO, json!({})).await;
        refusal = body;
        !refusal["errors"].is_null()
    })
    .await;
    assert!(Utc::now() >= soon, "refused before its expiry: {refusal}");
    assert_eq!(error_code(&refusal), "UNAUTHENTICATED", "{refusal}");
    assert_eq!(refusal["errors"][0]["message"], "API key expired", "{refusal}");

    // Revocation: at once on this replica, and idempotent (the first time is kept).
    let created = key_data(&app, &admin, CREATE_KEY, json!({ "input": { "name": "to-revoke" } })).await;
    let secret = created["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let id = created["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_owned();
    assert!(created["createApiKey"]["apiKey"]["revokedAt"].is_null());
    key_data(&app, &secret, WHO, json!({})).await;
    let revoked = key_data(&app, &admin, REVOKE_KEY, json!({ "id": id })).await;
    let revoked_at = time(&revoked["revokeApiKey"]["revokedAt"]);
    let (_, _, body) = app.gql_key(&secret, WHO, json!({})).await;
    assert_eq!(body["errors"][0]["message"], "API key revoked", "{body}");
    let again = key_data(&app, &admin, REVOKE_KEY, json!({ "id": id })).await;
    assert_eq!(time(&again["revokeApiKey"]["revokedAt"]), revoked_at);
    // The list shows both, with their state.
    let keys = key_data(&app, &admin, API_KEYS, json!({})).await;
    let list = keys["tenant"]["apiKeys"].as_array().unwrap();
    let named = |name: &str| list.iter().find(|k| k["name"] == name).unwrap_or_else(|| panic!("{name}: {keys}"));
    assert!(named("short-lived")["revokedAt"].is_null());
    assert!(time(&named("short-lived")["expiresAt"]) <= Utc::now());
    assert_eq!(time(&named("to-revoke")["revokedAt"]), revoked_at);
    // A key cannot outlive its revocation by revoking its revoker: the admin key revokes itself
    // and is refused from then on.
    let admin_id = list.iter().find(|k| k["scopes"] == json!(["ADMIN"])).unwrap()["id"].clone();
    key_data(&app, &admin, REVOKE_KEY, json!({ "id": admin_id })).await;
    let (_, _, body) = app.gql_key(&admin, API_KEYS, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

async fn last_used_at_records_a_keys_use(app: TestApp) {
    let admin = app.tenant_key("desk-usage", "pro", "admin").await;
    let created = key_data(&app, &admin, CREATE_KEY, json!({ "input": { "name": "reader" } })).await;
    let secret = created["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let created_at = time(&created["createApiKey"]["apiKey"]["createdAt"]);
    let last_used = async || -> Value {
        let keys = key_data(&app, &admin, API_KEYS, json!({})).await;
        keys["tenant"]["apiKeys"].as_array().unwrap().iter().find(|k| k["name"] == "reader").unwrap()["lastUsedAt"]
            .clone()
    };
    assert!(last_used().await.is_null(), "unused yet");
    let before = Utc::now();
    key_data(&app, &secret, WHO, json!({})).await;
    // Recorded off the request's path: it shows up shortly after.
    within(PATIENCE, "lastUsedAt to be recorded", async || !last_used().await.is_null()).await;
    let at = time(&last_used().await);
    assert!(at >= before && at >= created_at && at <= Utc::now(), "{at} vs {before}");
}

async fn keys_and_members_page_and_refuse_bad_input(app: TestApp) {
    let admin = app.tenant_key("desk-paging", "pro", "admin").await;
    for name in ["k1", "k2", "k3"] {
        key_data(&app, &admin, CREATE_KEY, json!({ "input": { "name": name, "ratePerSecond": 2, "burst": 4 } })).await;
    }
    let page = "query($after: ID) { tenant { apiKeys(first: 2, after: $after) { id name ratePerSecond burst } } }";
    let first = key_data(&app, &admin, page, json!({})).await;
    let first = first["tenant"]["apiKeys"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert_eq!(first[1]["name"], "k1");
    assert_eq!((first[1]["ratePerSecond"].clone(), first[1]["burst"].clone()), (json!(2), json!(4)));
    let second = key_data(&app, &admin, page, json!({ "after": first[1]["id"] })).await;
    let names: Vec<&str> =
        second["tenant"]["apiKeys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["k2", "k3"]);

    let bad: [(&str, Value, &str); 7] = [
        ("{ tenant { apiKeys(first: 0) { id } } }", json!({}), "first"),
        ("{ tenant { members(first: 501) { id } } }", json!({}), "first"),
        ("{ tenant { members(after: \"nope\") { id } } }", json!({}), "after"),
        (REVOKE_KEY, json!({ "id": "nope" }), "id"),
        (CREATE_KEY, json!({ "input": { "name": "r", "ratePerSecond": 5 } }), "burst"),
        (CREATE_KEY, json!({ "input": { "name": "r", "scopes": [] } }), "scopes"),
        (CREATE_KEY, json!({ "input": { "name": "  " } }), "name"),
    ];
    for (query, variables, field) in bad {
        let (status, _, body) = app.gql_key(&admin, query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}: {body}");
    }
    let (_, _, body) =
        app.gql_key(&admin, "mutation { setMemberRole(userId: \"x\", role: ADMIN) { id } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "userId", "{body}");
    // No key was made by the refused calls.
    let keys = key_data(&app, &admin, API_KEYS, json!({})).await;
    assert_eq!(keys["tenant"]["apiKeys"].as_array().unwrap().len(), 4, "{keys}");
}
