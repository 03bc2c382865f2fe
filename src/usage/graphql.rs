//! `tenant { usage(from, to, granularity) }`: the resolver's logic and its output types.
//!
//! The `Tenant` object belongs to the tenant admin API; its `usage` field is a one-line
//! delegation to [`tenant_usage`](crate::usage::graphql::tenant_usage), which owns the rule (tenant admins only, their own tenant
//! only) and the translation of the service's report.

use async_graphql::{Context, Enum, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    UsageRecord, UsageService,
    report::{self, UsagePeriod},
};
use crate::{
    error::{AppError, ErrorCode},
    graphql::{RequestContext, scalars::Timestamp, service},
};

/// How usage is grouped: per UTC hour (as stored) or per UTC day.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One row per actor per UTC hour.
    Hour,
    /// One row per actor per UTC day (midnight to midnight UTC).
    Day,
}

impl From<Granularity> for report::Granularity {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Hour => Self::Hour,
            Granularity::Day => Self::Day,
        }
    }
}

/// A count that may pass 32 bits (a month of response bytes does), as a JSON number: exact up
/// to 2^53, far beyond any count here. GraphQL's `Int` is 32-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BigInt(pub u64);

/// A non-negative whole number that may pass GraphQL's 32-bit `Int` (counts and byte totals),
/// as a JSON number: exact up to 2^53 (9007199254740992), beyond any count finql reports.
#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n.as_u64().map(BigInt).ok_or_else(|| InputValueError::custom("a non-negative integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::from(self.0)
    }
}

/// What one actor (an API key or a user) of the tenant used in one period.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UsagePeriod")]
pub struct UsagePeriodObject {
    /// Start of the UTC hour or day.
    pub start: Timestamp,
    /// End of the period (exclusive).
    pub end: Timestamp,
    /// `key:<prefix>` for an API key, `user:<id>` for a user, `overflow` for actors counted
    /// together while a replica's meter was full.
    pub actor: String,
    /// GraphQL operations executed (a batch of N counts N; refused ones included).
    pub requests: BigInt,
    /// Query cost units charged.
    pub cost: BigInt,
    /// Operations answered with at least one error.
    pub errors: BigInt,
    /// Operations refused with `RATE_LIMITED`.
    pub rate_limited: BigInt,
    /// Response body bytes sent.
    pub response_bytes: BigInt,
    /// Seconds of subscriptions open (whole seconds).
    pub subscription_seconds: BigInt,
}

impl UsagePeriodObject {
    fn new(period: UsagePeriod, granularity: Granularity) -> Self {
        let length = match granularity {
            Granularity::Hour => TimeDelta::hours(1),
            Granularity::Day => TimeDelta::days(1),
        };
        let c = period.counts;
        Self {
            start: Timestamp(period.start),
            end: Timestamp(period.start + length),
            actor: period.actor,
            requests: BigInt(c.requests),
            cost: BigInt(c.cost),
            errors: BigInt(c.errors),
            rate_limited: BigInt(c.rate_limited),
            response_bytes: BigInt(c.response_bytes),
            subscription_seconds: BigInt(c.subscription_seconds),
        }
    }
}

/// What answered operations count as: each is a request; one with any error is an error; one
/// with a `RATE_LIMITED` error (codes already assigned) is rate-limited. The one reading of a
/// GraphQL response for usage, shared by HTTP (a batch) and WebSocket (each message).
pub fn record_of(responses: &[async_graphql::Response], response_bytes: usize) -> UsageRecord {
    let count = |matches: &dyn Fn(&async_graphql::Response) -> bool| {
        u64::try_from(responses.iter().filter(|r| matches(r)).count()).unwrap_or(u64::MAX)
    };
    UsageRecord {
        requests: u64::try_from(responses.len()).unwrap_or(u64::MAX),
        cost: 0,
        errors: count(&|r| !r.errors.is_empty()),
        rate_limited: count(&is_rate_limited),
        response_bytes: u64::try_from(response_bytes).unwrap_or(u64::MAX),
    }
}

/// Whether one of the response's errors is `RATE_LIMITED`.
pub fn is_rate_limited(response: &async_graphql::Response) -> bool {
    let code = Value::from(ErrorCode::RateLimited.as_str());
    response.errors.iter().any(|e| e.extensions.as_ref().and_then(|ext| ext.get("code")) == Some(&code))
}

/// `Tenant.usage(from: DateTime!, to: DateTime!, granularity: Granularity! = HOUR)`: the
/// tenant's usage in `[from, to)` (widened to whole periods), one row per actor and period, in
/// period then actor order. Tenant admins only (an `ADMIN` user, or a key with the `admin`
/// scope), and only for their own tenant. Usage appears up to `FINQL_USAGE_FLUSH_SECS` late.
/// At most 31 days by hour, 366 by day (`BAD_USER_INPUT` beyond, and for `to <= from`).
pub async fn tenant_usage(
    ctx: &Context<'_>,
    tenant: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    granularity: Granularity,
) -> async_graphql::Result<Vec<UsagePeriodObject>> {
    let admin_of = RequestContext::of(ctx)?.principal.require_admin()?;
    if admin_of.id != tenant {
        return Err(AppError::Forbidden("usage of another tenant".into()).into());
    }
    let usage = service::<UsageService>(ctx)?;
    let periods = usage.report(tenant, from, to, granularity.into()).await?;
    Ok(periods.into_iter().map(|period| UsagePeriodObject::new(period, granularity)).collect())
}

#[cfg(test)]
#[path = "graphql_tests.rs"]
mod tests;
