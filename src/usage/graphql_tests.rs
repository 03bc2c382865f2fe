//! `tenant_usage` behind a one-field schema, as `Tenant.usage` will call it: who may read
//! which tenant's usage, argument errors, and counts past 32 bits.

use std::{sync::Arc, time::Duration};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use chrono::{DateTime, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::Database;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::{
    config::plans::Plans,
    graphql::{ClientInfo, scalars::Timestamp},
    identity::{Credentials, KeyGrant, Principal, Role, Scope, Scopes, TenantRef},
    usage::Counts,
};

struct Query;

#[Object]
impl Query {
    /// Stands in for `Tenant.usage` on the tenant `tenant`.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        tenant: Uuid,
        from: Timestamp,
        to: Timestamp,
        #[graphql(default_with = "Granularity::Hour")] granularity: Granularity,
    ) -> async_graphql::Result<Vec<UsagePeriodObject>> {
        tenant_usage(ctx, tenant, from.0, to.0, granularity).await
    }
}

fn principal(tenant: Uuid, credentials: Credentials, role: Option<Role>) -> Principal {
    let plans = Plans::load(None).unwrap();
    Principal {
        credentials,
        tenant: Some(TenantRef { id: tenant, slug: Arc::from("t") }),
        role,
        plan: plans.get("pro").cloned(),
    }
}

fn key(scopes: Scopes) -> Credentials {
    Credentials::ApiKey(KeyGrant { id: Uuid::new_v4(), prefix: "k".into(), scopes, rate: None })
}

const QUERY: &str = "query($t: UUID!, $from: DateTime!, $to: DateTime!, $g: Granularity!) { \
    usage(tenant: $t, from: $from, to: $to, granularity: $g) { start end actor requests responseBytes } }";

#[tokio::test]
async fn admins_read_their_own_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(format!("sqlite://{}/usage.db?mode=rwc", dir.path().display())).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let now = DateTime::parse_from_rfc3339("2026-12-01T10:20:00Z").unwrap().with_timezone(&Utc);
    let usage = UsageService::with_clock(db, Duration::from_secs(60), 100, Arc::new(move || now));
    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    // Past 32 bits: GraphQL's Int could not carry it.
    let big = Counts { requests: 3, response_bytes: 5_000_000_000, ..Counts::default() };
    usage.record_for(mine, "key:abc", big);
    usage.record_for(theirs, "key:xyz", Counts { requests: 1, ..Counts::default() });
    usage.flush().await.unwrap();
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).data(usage).finish();
    let run = async |who: Principal, tenant: Uuid, from: &str, to: &str, g: &str| -> Value {
        let variables = json!({ "t": tenant, "from": from, "to": to, "g": g });
        let request = async_graphql::Request::new(QUERY)
            .variables(async_graphql::Variables::from_json(variables))
            .data(RequestContext::new(who, ClientInfo::default()));
        serde_json::to_value(schema.execute(request).await).unwrap()
    };
    let admin = || principal(mine, Credentials::User(Uuid::new_v4()), Some(Role::Admin));
    let (from, to) = ("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");

    let body = run(admin(), mine, from, to, "DAY").await;
    assert_eq!(
        body["data"]["usage"],
        json!([{ "start": "2026-12-01T00:00:00.000000Z", "end": "2026-12-02T00:00:00.000000Z", "actor": "key:abc",
                 "requests": 3, "responseBytes": 5_000_000_000u64 }]),
        "{body}"
    );
    let admin_key = principal(mine, key(Scopes::ALL), None);
    let body = run(admin_key, mine, from, to, "HOUR").await;
    assert_eq!(body["data"]["usage"][0]["start"], "2026-12-01T10:00:00.000000Z", "{body}");

    let code = |body: &Value| body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
    // Another tenant's usage, even for an admin.
    assert_eq!(code(&run(admin(), theirs, from, to, "DAY").await), "FORBIDDEN");
    // Members, and keys without the admin scope.
    let member = principal(mine, Credentials::User(Uuid::new_v4()), Some(Role::Member));
    assert_eq!(code(&run(member, mine, from, to, "DAY").await), "FORBIDDEN");
    let market_key = principal(mine, key(Scopes::default().with(Scope::Market)), None);
    assert_eq!(code(&run(market_key, mine, from, to, "DAY").await), "FORBIDDEN");
    let anonymous = Principal::without_tenant(Credentials::Anonymous, None);
    assert_eq!(code(&run(anonymous, mine, from, to, "DAY").await), "UNAUTHENTICATED");
    // Ranges: reversed, too long by the hour.
    let body = run(admin(), mine, to, from, "DAY").await;
    assert_eq!((code(&body), &body["errors"][0]["extensions"]["field"]), ("BAD_USER_INPUT".into(), &json!("to")));
    assert_eq!(code(&run(admin(), mine, "2026-01-01T00:00:00Z", to, "HOUR").await), "BAD_USER_INPUT");
}
