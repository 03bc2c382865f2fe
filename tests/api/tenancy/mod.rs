//! Tenancy: API keys as credentials, sign-up into the default tenant.

mod admin;
/// Plan entitlements on market queries (markets, delay, history, fundamentals).
mod entitle;
/// Plans over WebSocket: subscription entitlements, delayed markets, live quotas.
mod live;
/// Usage metering: counts, replicas summing, the shutdown flush, `finql usage`.
mod usage;

use serde_json::json;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, error_code, spawn_app},
};

backend_tests!(an_api_key_is_a_credential_of_its_tenant_not_a_person, revoked_and_malformed_keys_are_refused);

const LEDGER: &str = "{ transactions(first: 1) { edges { node { id } } } }";

async fn an_api_key_is_a_credential_of_its_tenant_not_a_person(app: TestApp) {
    let key = app.tenant_key("desk-a", "pro", "market,live").await;
    assert!(key.starts_with("fq_"), "{key}");
    // Both ways of sending a key reach the same principal: a key, refused personal data.
    let (status, _, body) = app.gql_key(&key, LEDGER, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("API key is not a person"), "{body}");
    let body = app.gql(Some(&key), LEDGER, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // Both headers at once: refused, not guessed.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("X-API-Key", &key)
        .bearer_auth(&key)
        .json(&json!({ "query": LEDGER }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

async fn revoked_and_malformed_keys_are_refused(app: TestApp) {
    let key = app.tenant_key("desk-b", "basic", "market").await;
    let prefix = key.split('_').nth(1).unwrap().to_owned();
    app.state.tenancy.revoke_key(None, &prefix).await.unwrap();
    let (_, _, body) = app.gql_key(&key, LEDGER, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(body["errors"][0]["message"], "API key revoked", "{body}");
    // Right prefix, wrong secret; and garbage.
    let forged = format!("fq_{prefix}_{}", "A".repeat(43));
    for bad in [forged.as_str(), "fq_nope", "fq_abcdefghijkl_xyz"] {
        let (_, _, body) = app.gql_key(bad, LEDGER, json!({})).await;
        assert_eq!(body["errors"][0]["message"], "invalid API key", "{bad}: {body}");
    }
}

#[tokio::test]
async fn closed_sign_up_is_forbidden() {
    let app = spawn_app(Backend::Sqlite, &[("FINQL_OPEN_SIGNUP", "false")]).await.unwrap();
    let body = app
        .gql(
            None,
            "mutation { signUp(input: {email: \"a@example.com\", password: \"correct horse battery\", fullName: \"A\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}
/// Plan limits: request rates, cost budgets, their headers and errors, across replicas.
mod limits;
