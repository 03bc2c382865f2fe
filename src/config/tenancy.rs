//! The tenancy settings: which plans exist, which tenant and plan newcomers get, and what
//! happens to rate limits when Redis is gone.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::bail;

use super::{
    parse_or,
    plans::{Plan, Plans},
};

/// What the shared (Redis) rate limiter does while Redis does not answer. A per-deployment
/// choice, because both answers are right for someone: a market-data desk prefers serving with
/// limits held per replica (at worst N times the plan across N replicas) to refusing its own
/// users; a provider billing by use prefers refusing to serving unmetered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisOutage {
    /// `local` (default): each replica applies the plan's limits on its own.
    Local,
    /// `refuse`: requests are refused with `RATE_LIMITED` until Redis answers again.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct TenancySettings {
    /// `FINQL_PLANS_FILE`: the plan file (TOML); the built-in plans when unset.
    pub plans: Plans,
    /// `FINQL_DEFAULT_TENANT` (default `default`): the slug of the tenant `signUp` joins,
    /// created on first start.
    pub default_tenant: String,
    /// `FINQL_DEFAULT_PLAN` (default `developer` in development, `basic` in production): the
    /// default tenant's plan when it is created.
    pub default_plan: String,
    /// `FINQL_OPEN_SIGNUP` (default true): whether anyone may `signUp`. When false, tenant
    /// admins add users with `createUser`.
    pub open_signup: bool,
    /// `FINQL_ANONYMOUS_PLAN` (default `anonymous` in development, none in production): the
    /// plan of callers without credentials; `none` (or unset in production) requires a key or
    /// a token on every request.
    pub anonymous_plan: Option<Arc<Plan>>,
    /// `FINQL_RATE_LIMIT_REDIS_OUTAGE` (`local` | `refuse`, default `local`).
    pub redis_outage: RedisOutage,
    /// `FINQL_PLAN_LIMITS` (default true): whether the plans' request rates and cost budgets
    /// are applied (`tenancy::limits`). Off only for a deployment that meters elsewhere (its
    /// own gateway), and for the benchmark's baseline; `extensions.cost` is returned either way.
    pub plan_limits: bool,
    /// `FINQL_USAGE_FLUSH_SECS` (default 10): how often usage counted in memory is written.
    pub usage_flush: Duration,
}

impl TenancySettings {
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>, production: bool) -> anyhow::Result<Self> {
        let plans = Plans::load(get("FINQL_PLANS_FILE").map(PathBuf::from).as_deref())?;
        let known = |var: &str, name: &str| -> anyhow::Result<Arc<Plan>> {
            match plans.get(name) {
                Some(plan) => Ok(plan.clone()),
                None => bail!("{var}=`{name}` is not a plan: the plans are {}", plans.names().join(", ")),
            }
        };
        let default_plan =
            get("FINQL_DEFAULT_PLAN").unwrap_or_else(|| if production { "basic" } else { "developer" }.into());
        known("FINQL_DEFAULT_PLAN", &default_plan)?;
        let anonymous_plan = match get("FINQL_ANONYMOUS_PLAN") {
            Some(name) if name.trim().eq_ignore_ascii_case("none") => None,
            Some(name) => Some(known("FINQL_ANONYMOUS_PLAN", name.trim())?),
            None if production => None,
            None => Some(known("FINQL_ANONYMOUS_PLAN", "anonymous")?),
        };
        let default_tenant = get("FINQL_DEFAULT_TENANT").unwrap_or_else(|| "default".into());
        if let Err(why) = check_slug(&default_tenant) {
            bail!("FINQL_DEFAULT_TENANT=`{default_tenant}`: {why}");
        }
        Ok(Self {
            plans,
            default_tenant,
            default_plan,
            open_signup: parse_or(get, "FINQL_OPEN_SIGNUP", true)?,
            anonymous_plan,
            redis_outage: match get("FINQL_RATE_LIMIT_REDIS_OUTAGE").as_deref().map(str::trim) {
                None | Some("local") => RedisOutage::Local,
                Some("refuse") => RedisOutage::Refuse,
                Some(other) => bail!("FINQL_RATE_LIMIT_REDIS_OUTAGE must be `local` or `refuse`, not `{other}`"),
            },
            plan_limits: parse_or(get, "FINQL_PLAN_LIMITS", true)?,
            usage_flush: match parse_or(get, "FINQL_USAGE_FLUSH_SECS", 10u64)? {
                0 => bail!("FINQL_USAGE_FLUSH_SECS must be at least 1"),
                n => Duration::from_secs(n),
            },
        })
    }
}

/// A tenant slug: 2 to 63 lower-case letters, digits and `-`, starting with a letter (safe in a
/// URL, a Redis key, a log line and a file name).
pub fn check_slug(slug: &str) -> Result<(), &'static str> {
    let ok = (2..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && slug.as_bytes()[0].is_ascii_lowercase();
    if ok { Ok(()) } else { Err("a tenant slug is 2 to 63 lower-case letters, digits or `-`, starting with a letter") }
}
