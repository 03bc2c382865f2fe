//! The tenant admin API: every tenant sees its own plan; its admins (an `ADMIN` user, a key
//! with the `admin` scope) manage its keys and members and nothing of another tenant's;
//! members administer nothing; admins never see members' ledgers.

mod cli;
mod keys;

use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Backend, PASSWORD, TestApp, error_code, spawn_app},
};

backend_tests!(
    every_caller_sees_its_own_tenants_plan,
    admin_fields_and_mutations_never_reach_another_tenant,
    members_and_keys_without_the_admin_scope_administer_nothing,
    an_admin_never_sees_members_ledgers,
);

pub(super) const TENANT: &str = "{ tenant { id slug name plan { name ratePerSecond burst costPerMinute maxConnections \
                                 maxLiveSymbols historyDays delayMinutes fundamentals markets { market access } } } }";
pub(super) const API_KEYS: &str =
    "{ tenant { apiKeys { id prefix name scopes createdAt lastUsedAt expiresAt revokedAt ratePerSecond burst } } }";
pub(super) const MEMBERS: &str = "{ tenant { members { id email fullName role } } }";
pub(super) const CREATE_KEY: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret \
                                     apiKey { id prefix name scopes createdAt lastUsedAt expiresAt revokedAt } } }";
pub(super) const REVOKE_KEY: &str = "mutation($id: ID!) { revokeApiKey(id: $id) { id prefix revokedAt } }";
pub(super) const CREATE_USER: &str =
    "mutation($input: CreateUserInput!) { createUser(input: $input) { id email fullName role } }";
pub(super) const SET_ROLE: &str =
    "mutation($user: ID!, $role: Role!) { setMemberRole(userId: $user, role: $role) { id role } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { \
                     accessToken user { id role } } }";

/// The data of a request sent with the API key `key`, failing the test on any error.
pub(super) async fn key_data(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let (status, _, body) = app.gql_key(key, query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

/// Creates a user in the tenant of the admin key `admin` and logs them in: (id, access token).
pub(super) async fn add_user(app: &TestApp, admin: &str, email: &str, role: &str) -> (String, String) {
    let input = json!({ "input": { "email": email, "password": PASSWORD, "fullName": "Added User", "role": role } });
    let created = key_data(app, admin, CREATE_USER, input).await;
    assert_eq!(created["createUser"]["role"], role, "{created}");
    let id = created["createUser"]["id"].as_str().unwrap().to_owned();
    let login = app.data(None, LOGIN, json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(login["login"]["user"]["id"], id.as_str());
    (id, login["login"]["accessToken"].as_str().unwrap().to_owned())
}

fn unique(what: &str) -> String {
    format!("{what}-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn every_caller_sees_its_own_tenants_plan(app: TestApp) {
    let basic = app.tenant_key("desk-basic", "basic", "market").await;
    let pro = app.tenant_key("desk-pro", "pro", "live").await;
    let plans = app.state.tenancy.plans();
    for (key, slug, plan) in [(&basic, "desk-basic", "basic"), (&pro, "desk-pro", "pro")] {
        let data = key_data(&app, key, TENANT, json!({})).await;
        let tenant = &data["tenant"];
        assert_eq!(tenant["slug"], slug, "{data}");
        let expected = plans.get(plan).unwrap();
        let shown = &tenant["plan"];
        assert_eq!(shown["name"], plan, "{data}");
        assert_eq!(shown["ratePerSecond"], expected.rate_per_second, "{data}");
        assert_eq!(shown["burst"], expected.burst);
        assert_eq!(shown["costPerMinute"], expected.cost_per_minute);
        assert_eq!(shown["maxConnections"], expected.max_connections);
        assert_eq!(shown["maxLiveSymbols"], expected.max_live_symbols);
        assert_eq!(shown["historyDays"], expected.history_days);
        assert_eq!(shown["delayMinutes"], expected.delay_minutes);
        assert_eq!(shown["fundamentals"], expected.fundamentals);
        let markets: Vec<(String, String)> = shown["markets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["market"].as_str().unwrap().to_owned(), m["access"].as_str().unwrap().to_owned()))
            .collect();
        let wanted: Vec<(String, String)> =
            expected.all_markets().map(|(m, a)| (m.to_owned(), a.as_str().to_uppercase())).collect();
        assert_eq!(&markets[..wanted.len()], &wanted[..], "{data}");
    }
    // The two plans differ, so the answers above cannot both be one hard-coded plan.
    assert_ne!(plans.get("basic").unwrap().rate_per_second, plans.get("pro").unwrap().rate_per_second);
    // A user sees their tenant (the default one, for self sign-up) as a MEMBER.
    let user = app.new_user().await;
    let data = app.data(Some(&user.access_token), "{ tenant { slug } me { role } }", json!({})).await;
    assert_eq!(data["tenant"]["slug"], app.state.config.tenancy.default_tenant.as_str(), "{data}");
    assert_eq!(data["me"]["role"], "MEMBER");
    // No credentials, or bad ones: no tenant.
    let body = app.gql(None, "{ tenant { slug } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let (_, _, body) = app.gql_key("fq_abcdefghijkl_nope", "{ tenant { slug } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

async fn admin_fields_and_mutations_never_reach_another_tenant(app: TestApp) {
    let admin_a = app.tenant_key("tenant-a", "pro", "admin").await;
    let admin_b = app.tenant_key("tenant-b", "pro", "admin").await;
    // Tenant A makes a key and a user.
    let created = key_data(&app, &admin_a, CREATE_KEY, json!({ "input": { "name": "a-ingest" } })).await;
    let a_key = &created["createApiKey"];
    let a_key_id = a_key["apiKey"]["id"].as_str().unwrap().to_owned();
    let a_secret = a_key["secret"].as_str().unwrap().to_owned();
    assert!(a_secret.starts_with(&format!("fq_{}_", a_key["apiKey"]["prefix"].as_str().unwrap())), "{created}");
    assert_eq!(a_key["apiKey"]["scopes"], json!(["MARKET", "LIVE", "ADMIN"]), "default scopes: {created}");
    let a_email = unique("a-member");
    let (a_user, a_token) = add_user(&app, &admin_a, &a_email, "MEMBER").await;

    // A sees them; B sees neither, nor anything else of A's.
    let a_keys = key_data(&app, &admin_a, API_KEYS, json!({})).await;
    let a_key_ids: Vec<&str> =
        a_keys["tenant"]["apiKeys"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(a_key_ids.len(), 2, "the test key and a-ingest: {a_keys}");
    assert!(a_key_ids.contains(&a_key_id.as_str()));
    let a_members = key_data(&app, &admin_a, MEMBERS, json!({})).await;
    assert_eq!(
        a_members["tenant"]["members"],
        json!([{ "id": a_user, "email": a_email, "fullName": "Added User", "role": "MEMBER" }])
    );
    let b_keys = key_data(&app, &admin_b, API_KEYS, json!({})).await;
    let b_key_list = b_keys["tenant"]["apiKeys"].as_array().unwrap();
    assert_eq!(b_key_list.len(), 1, "only B's own key: {b_keys}");
    assert!(!a_key_ids.contains(&b_key_list[0]["id"].as_str().unwrap()));
    let b_members = key_data(&app, &admin_b, MEMBERS, json!({})).await;
    assert_eq!(b_members["tenant"]["members"], json!([]), "{b_members}");
    let b_tenant = key_data(&app, &admin_b, "{ tenant { slug plan { name } } }", json!({})).await;
    assert_eq!(b_tenant["tenant"], json!({ "slug": "tenant-b", "plan": { "name": "pro" } }));

    // B cannot touch A's key or member: NOT_FOUND, exactly as for an id that does not exist.
    let (_, _, body) = app.gql_key(&admin_b, REVOKE_KEY, json!({ "id": a_key_id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], format!("no API key `{a_key_id}`"), "{body}");
    let missing_id = uuid::Uuid::now_v7().to_string();
    let (_, _, missing) = app.gql_key(&admin_b, REVOKE_KEY, json!({ "id": missing_id })).await;
    assert_eq!(error_code(&missing), "NOT_FOUND", "{missing}");
    assert_eq!(missing["errors"][0]["message"], format!("no API key `{missing_id}`"), "{missing}");
    let (_, _, body) = app.gql_key(&admin_b, SET_ROLE, json!({ "user": a_user, "role": "ADMIN" })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // ... and A's key and member are as they were.
    let still = key_data(&app, &a_secret, "{ tenant { slug } }", json!({})).await;
    assert_eq!(still["tenant"]["slug"], "tenant-a");
    let me = app.data(Some(&a_token), "{ me { role } tenant { slug } }", json!({})).await;
    assert_eq!(me, json!({ "me": { "role": "MEMBER" }, "tenant": { "slug": "tenant-a" } }));
    // A user B creates joins B, whatever the email.
    let (_, b_token) = add_user(&app, &admin_b, &unique("b-member"), "ADMIN").await;
    let b_admin_view = app.data(Some(&b_token), MEMBERS, json!({})).await;
    let emails: Vec<&str> =
        b_admin_view["tenant"]["members"].as_array().unwrap().iter().map(|m| m["email"].as_str().unwrap()).collect();
    assert!(!emails.contains(&a_email.as_str()), "{b_admin_view}");
    assert_eq!(emails.len(), 1);
    // An admin user of B revoking A's key: NOT_FOUND too.
    let body = app.gql(Some(&b_token), REVOKE_KEY, json!({ "id": a_key_id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

async fn members_and_keys_without_the_admin_scope_administer_nothing(app: TestApp) {
    let admin = app.tenant_key("desk-roles", "pro", "admin").await;
    let market_key = app.tenant_key("desk-roles", "pro", "market,live").await;
    let (member, member_token) = add_user(&app, &admin, &unique("member"), "MEMBER").await;
    let (boss, boss_token) = add_user(&app, &admin, &unique("boss"), "ADMIN").await;
    let victim = key_data(&app, &admin, CREATE_KEY, json!({ "input": { "name": "victim" } })).await;
    let key_id = victim["createApiKey"]["apiKey"]["id"].clone();
    let denied: [(&str, Value); 6] = [
        (API_KEYS, json!({})),
        (MEMBERS, json!({})),
        (CREATE_KEY, json!({ "input": { "name": "sneaky" } })),
        (REVOKE_KEY, json!({ "id": key_id })),
        (CREATE_USER, json!({ "input": { "email": unique("sneaky"), "password": PASSWORD, "fullName": "S" } })),
        (SET_ROLE, json!({ "user": member, "role": "ADMIN" })),
    ];
    for (query, variables) in &denied {
        let body = app.gql(Some(&member_token), query, variables.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "member: {query}: {body}");
        let (_, _, body) = app.gql_key(&market_key, query, variables.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "key without admin: {query}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("`admin` scope"), "{body}");
        // The admin user may (each call runs once more below where it changes something).
        let body = app.gql(Some(&boss_token), query, variables.clone()).await;
        if *query == SET_ROLE {
            assert_eq!(body["data"]["setMemberRole"]["role"], "ADMIN", "{body}");
            // Back to MEMBER for what follows.
            let body = app.gql(Some(&boss_token), SET_ROLE, json!({ "user": member, "role": "MEMBER" })).await;
            assert_eq!(body["data"]["setMemberRole"]["role"], "MEMBER", "{body}");
        } else {
            assert!(body["errors"].is_null(), "admin user: {query}: {body}");
        }
    }
    // Nothing the member tried happened: still one created key ("sneaky" by the admin user).
    let names: Vec<String> = key_data(&app, &admin, API_KEYS, json!({})).await["tenant"]["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "sneaky").count(), 1, "{names:?}");
    // A member promoted administers at once (this replica forgets the cached role) ...
    let promoted = key_data(&app, &admin, SET_ROLE, json!({ "user": member, "role": "ADMIN" })).await;
    assert_eq!(promoted["setMemberRole"]["role"], "ADMIN");
    let body = app.gql(Some(&member_token), MEMBERS, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["tenant"]["members"].as_array().unwrap().len(), 3, "{body}");
    // ... and demoted, no longer.
    key_data(&app, &admin, SET_ROLE, json!({ "user": member, "role": "MEMBER" })).await;
    let body = app.gql(Some(&member_token), MEMBERS, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // An admin cannot change their own role.
    let body = app.gql(Some(&boss_token), SET_ROLE, json!({ "user": boss, "role": "MEMBER" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let me = app.data(Some(&boss_token), "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "ADMIN");
}

async fn an_admin_never_sees_members_ledgers(app: TestApp) {
    let admin = app.tenant_key("desk-ledger", "pro", "admin").await;
    let (_, member_token) = add_user(&app, &admin, &unique("member"), "MEMBER").await;
    let (_, boss_token) = add_user(&app, &admin, &unique("boss"), "ADMIN").await;
    let create = "mutation { createTransaction(input: { amount: \"12.50\", kind: DEBIT }) { id } }";
    app.data(Some(&member_token), create, json!({})).await;
    let count = "{ transactions(first: 10) { totalCount edges { node { id } } } }";
    let mine = app.data(Some(&member_token), count, json!({})).await;
    assert_eq!(mine["transactions"]["totalCount"], 1, "{mine}");
    // The tenant's admin user sees only their own (empty) ledger, and the admin key none.
    let boss = app.data(Some(&boss_token), count, json!({})).await;
    assert_eq!(boss["transactions"]["totalCount"], 0, "{boss}");
    let (_, _, body) = app.gql_key(&admin, count, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // Nor can a member's ledger be reached through `members`: `User` has no such field.
    let body = app.gql(Some(&boss_token), "{ tenant { members { transactions { totalCount } } } }", json!({})).await;
    assert!(body["data"].is_null(), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("Unknown field \"transactions\""), "{body}");
}

/// With self sign-up off, users join only through a tenant admin's `createUser`.
async fn closed_sign_up_leaves_users_to_admins(backend: Backend) {
    let Some(app) = spawn_app(backend, &[("FINQL_OPEN_SIGNUP", "false")]).await else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let sign_up = "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }";
    let email = unique("closed");
    let body =
        app.gql(None, sign_up, json!({ "input": { "email": email, "password": PASSWORD, "fullName": "C" } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let admin = app.tenant_key("closed-desk", "pro", "admin").await;
    // Default role MEMBER; the user logs in and is in the admin's tenant.
    let input = json!({ "input": { "email": email, "password": PASSWORD, "fullName": "Closed User" } });
    let created = key_data(&app, &admin, CREATE_USER, input).await;
    assert_eq!(created["createUser"]["role"], "MEMBER", "{created}");
    let login = app.data(None, LOGIN, json!({ "email": email, "password": PASSWORD })).await;
    let token = login["login"]["accessToken"].as_str().unwrap();
    let data = app.data(Some(token), "{ me { email role } tenant { slug } }", json!({})).await;
    assert_eq!(data, json!({ "me": { "email": email, "role": "MEMBER" }, "tenant": { "slug": "closed-desk" } }));
    // The usual account rules hold: a taken email, a short password, no name.
    let bad = [
        (json!({ "email": email, "password": PASSWORD, "fullName": "Again" }), "email"),
        (json!({ "email": unique("short"), "password": "short", "fullName": "S" }), "password"),
        (json!({ "email": unique("noname"), "password": PASSWORD, "fullName": " " }), "fullName"),
        (json!({ "email": "not-an-email", "password": PASSWORD, "fullName": "N" }), "email"),
    ];
    for (input, field) in bad {
        let (_, _, body) = app.gql_key(&admin, CREATE_USER, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
}

mod closed_sign_up {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::closed_sign_up_leaves_users_to_admins(super::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::closed_sign_up_leaves_users_to_admins(super::Backend::Postgres).await;
    }
}
