//! What a caller's plan lets it see of the market: one check, used the same way by queries,
//! batches and subscriptions.
//!
//! A symbol's market is its listing region for stocks and funds (`US`, `HK`, `SH`, `SZ`) and its
//! asset class otherwise (`FX`, `IDX`, `CRYPTO`, `FUT`): the names a plan's `markets` table uses
//! (`config::plans`). The answer is the access the plan grants there (`realtime` or `delayed`),
//! or why there is none: no credentials where the deployment requires them
//! (`UNAUTHENTICATED`), a key without the scope (`FORBIDDEN`), a market outside the plan
//! (`FORBIDDEN`, `reason: ENTITLEMENT_REQUIRED`, `market`).
//!
//! A query resolver asks for a [`Grant`][G] per symbol ([`grant`][g]) and lets it shape the
//! answer:
//! - **delayed** markets see nothing younger than the plan's `delay_minutes` (`Grant::cutoff`):
//!   quotes as of the cutoff, no kline ending after it, no tick after it; order books are
//!   real-time only (`Grant::require_order_book`).
//! - **history** reaches `history_days` back (`Grant::horizon`). A window the caller *names*
//!   (`before`, `after`, `from`) reaching past it is refused (`Grant::require_since`), where the
//!   instrument traded before the horizon: silently shortening what was asked for would read
//!   as "no data there". What the caller does not bound (the latest bars, ticks, the list of
//!   corporate actions) is clipped to it (`Grant::keeps`).
//! - **fundamentals** need the plan's `fundamentals` ([`require_fundamentals`][f]).
//!
//! [G]: crate::market::entitlements::Grant
//! [g]: crate::market::entitlements::grant
//! [f]: crate::market::entitlements::require_fundamentals

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    config::{Access, Plan},
    error::{AppError, AppResult},
    identity::{Principal, Scope},
    reference::{Symbol, symbol::Namespace},
};

/// The plan market a symbol belongs to (a `config::plans::MARKETS` name).
pub fn market_of(symbol: &Symbol) -> &'static str {
    match symbol.namespace() {
        Namespace::Forex => "FX",
        Namespace::Index => "IDX",
        Namespace::Crypto => "CRYPTO",
        Namespace::Future => "FUT",
        Namespace::Equity => match symbol.as_str().rsplit_once('.').map(|(_, region)| region) {
            Some("US") => "US",
            Some("HK") => "HK",
            Some("SH") => "SH",
            Some("SZ") => "SZ",
            // `Symbol::parse` admits no other equity region; should one be added without a
            // plan market, it is in none, so no plan's explicit markets grant it by accident.
            _ => "OTHER",
        },
    }
}

/// The access `principal` has to `symbol`'s market data through `scope` (`Market` for queries,
/// `Live` for subscriptions): `Realtime` or `Delayed`, never `None` (that is an error).
pub fn access(principal: &Principal, symbol: &Symbol, scope: Scope) -> AppResult<Access> {
    let plan = principal.require_plan()?;
    principal.require_scope(scope)?;
    let market = market_of(symbol);
    match plan.access(market) {
        Access::None => Err(AppError::EntitlementRequired {
            message: format!("your plan (`{}`) does not include the {market} market ({symbol})", plan.name),
            market: Some(market.to_owned()),
        }),
        granted => Ok(granted),
    }
}

/// What a plan lets one caller see of one symbol's market data, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `Realtime` or `Delayed`.
    pub access: Access,
    /// The symbol's plan market (`US`, `HK`, `FX`, ...), named in refusals.
    pub market: &'static str,
    /// The moment the grant was made for (the request's now).
    pub now: DateTime<Utc>,
    /// The plan's `delay_minutes`.
    pub delay: chrono::Duration,
    /// The plan's `history_days`.
    pub history_days: u32,
    /// The plan's name, for messages.
    pub plan: String,
}

/// [`access`], with what the plan says about delay and history depth, for a request made at
/// `now`.
pub fn grant(principal: &Principal, symbol: &Symbol, scope: Scope, now: DateTime<Utc>) -> AppResult<Grant> {
    let access = access(principal, symbol, scope)?;
    let plan = principal.require_plan()?;
    Ok(Grant::of(plan, access, market_of(symbol), now))
}

impl Grant {
    fn of(plan: &Plan, access: Access, market: &'static str, now: DateTime<Utc>) -> Self {
        Self { access, market, now, delay: plan.delay(), history_days: plan.history_days, plan: plan.name.clone() }
    }

    pub fn is_delayed(&self) -> bool {
        self.access == Access::Delayed
    }

    /// The latest moment whose prices may be shown: `now - delay_minutes` for a delayed market,
    /// `None` (no limit) for a real-time one.
    pub fn cutoff(&self) -> Option<DateTime<Utc>> {
        self.is_delayed().then(|| self.now - self.delay)
    }

    /// The latest moment the caller sees prices of: the cutoff for a delayed market, now for a
    /// real-time one. A window ending at or before it is closed: its bars no longer change.
    pub fn latest(&self) -> DateTime<Utc> {
        self.cutoff().unwrap_or(self.now)
    }

    /// The earliest moment history may reach: `now - history_days`.
    pub fn horizon(&self) -> DateTime<Utc> {
        self.now - chrono::Duration::days(i64::from(self.history_days))
    }

    /// Whether data stamped `at` is within the plan: not before the horizon, and (delayed) not
    /// after the cutoff. What clips unbounded lists.
    pub fn keeps(&self, at: DateTime<Utc>) -> bool {
        at >= self.horizon() && self.cutoff().is_none_or(|cutoff| at <= cutoff)
    }

    /// `ENTITLEMENT_REQUIRED` when a window the caller named (`field`) starts before the
    /// horizon, and the plan hides history there: an instrument `listed` on or after the
    /// horizon's day has no bar before it, so nothing is withheld and the window answers as for
    /// any plan (empty before the listing day).
    pub fn require_since(
        &self,
        symbol: &Symbol,
        field: &str,
        since: DateTime<Utc>,
        listed: Option<NaiveDate>,
    ) -> AppResult<()> {
        if since >= self.horizon() || listed.is_some_and(|listed| listed >= self.horizon_day()) {
            return Ok(());
        }
        Err(AppError::EntitlementRequired {
            message: format!(
                "`{field}` reaches further back than your plan (`{}`) allows for {symbol}: history goes back {} \
                 days, to {}",
                self.plan,
                self.history_days,
                self.horizon().format("%Y-%m-%dT%H:%M:%SZ"),
            ),
            market: Some(self.market.to_owned()),
        })
    }

    /// The first day history may reach (the horizon's UTC date): what daily data (fundamentals,
    /// corporate actions) is measured against.
    pub fn horizon_day(&self) -> NaiveDate {
        self.horizon().date_naive()
    }

    /// [`Self::require_since`] for a window named by days (`from` of fundamentals).
    pub fn require_since_day(
        &self,
        symbol: &Symbol,
        field: &str,
        since: NaiveDate,
        listed: Option<NaiveDate>,
    ) -> AppResult<()> {
        if since >= self.horizon_day() {
            return Ok(());
        }
        self.require_since(symbol, field, since.and_time(chrono::NaiveTime::MIN).and_utc(), listed)
    }

    /// `ENTITLEMENT_REQUIRED` for a delayed market: an order book is only meaningful live, and
    /// a delayed one cannot be built from what sources keep.
    pub fn require_order_book(&self, symbol: &Symbol) -> AppResult<()> {
        if !self.is_delayed() {
            return Ok(());
        }
        Err(AppError::EntitlementRequired {
            message: format!(
                "order books are real-time only, and your plan (`{}`) has the {} market delayed ({symbol})",
                self.plan, self.market
            ),
            market: Some(self.market.to_owned()),
        })
    }
}

/// `ENTITLEMENT_REQUIRED` unless the caller's plan lets it pin `source` (its `sources`), and
/// has `grant`'s market in real time: a pinned source answers with what it has now.
pub fn require_source(principal: &Principal, grant: &Grant, symbol: &Symbol, source: &str) -> AppResult<()> {
    let plan = principal.require_plan()?;
    if !plan.allows_source(source) {
        return Err(AppError::EntitlementRequired {
            message: format!("your plan (`{}`) does not include the source `{source}`", plan.name),
            market: None,
        });
    }
    if grant.is_delayed() {
        return Err(AppError::EntitlementRequired {
            message: format!(
                "a pinned source answers in real time, and your plan (`{}`) has the {} market delayed ({symbol})",
                grant.plan, grant.market
            ),
            market: Some(grant.market.to_owned()),
        });
    }
    Ok(())
}

/// `ENTITLEMENT_REQUIRED` unless the caller's plan includes fundamentals.
pub fn require_fundamentals(principal: &Principal) -> AppResult<()> {
    let plan = principal.require_plan()?;
    if plan.fundamentals {
        return Ok(());
    }
    Err(AppError::EntitlementRequired {
        message: format!("your plan (`{}`) does not include fundamentals", plan.name),
        market: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        config::Plans,
        identity::{Credentials, KeyGrant, Scopes},
    };

    fn principal(plan: &str, scopes: &str) -> Principal {
        let grant =
            KeyGrant { id: uuid::Uuid::nil(), prefix: "p".into(), scopes: Scopes::parse(scopes).unwrap(), rate: None };
        Principal {
            credentials: Credentials::ApiKey(grant),
            tenant: None,
            role: None,
            plan: Some(Arc::clone(Plans::builtin().get(plan).unwrap())),
        }
    }

    #[test]
    fn markets_follow_the_plan() {
        let basic = principal("basic", "market,live");
        let sym = |s: &str| Symbol::parse(s).unwrap();
        assert_eq!(access(&basic, &sym("AAPL.US"), Scope::Market).unwrap(), Access::Realtime);
        assert_eq!(access(&basic, &sym("700.HK"), Scope::Live).unwrap(), Access::Delayed);
        assert_eq!(access(&basic, &sym("FX:EURUSD"), Scope::Market).unwrap(), Access::Realtime);
        let err = access(&basic, &sym("600519.SH"), Scope::Market).unwrap_err();
        assert!(matches!(&err, AppError::EntitlementRequired { market: Some(m), .. } if m == "SH"), "{err:?}");
        assert!(matches!(access(&basic, &sym("IDX:SPX"), Scope::Market), Err(AppError::EntitlementRequired { .. })));
    }

    #[test]
    fn scopes_and_missing_plans_refuse() {
        let market_only = principal("pro", "market");
        let aapl = Symbol::parse("AAPL.US").unwrap();
        assert!(matches!(access(&market_only, &aapl, Scope::Live), Err(AppError::Forbidden(_))));
        let nobody = Principal::without_tenant(Credentials::Anonymous, None);
        assert!(matches!(access(&nobody, &aapl, Scope::Market), Err(AppError::Unauthenticated(_))));
        let invalid = Principal::without_tenant(Credentials::Invalid("invalid API key"), None);
        assert!(matches!(grant(&invalid, &aapl, Scope::Market, Utc::now()), Err(AppError::Unauthenticated(_))));
        assert!(matches!(require_fundamentals(&invalid), Err(AppError::Unauthenticated(_))));
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn delay_and_history_bound_what_a_grant_keeps() {
        let basic = principal("basic", "market");
        let now = at("2026-11-25T15:00:00Z");
        let hk = grant(&basic, &Symbol::parse("700.HK").unwrap(), Scope::Market, now).unwrap();
        assert_eq!(hk.cutoff(), Some(at("2026-11-25T14:45:00Z")));
        assert!(hk.keeps(at("2026-11-25T14:45:00Z")));
        assert!(!hk.keeps(at("2026-11-25T14:45:01Z")), "younger than the delay");
        assert!(!hk.keeps(at("2026-10-26T14:59:59Z")), "older than 30 days");
        assert!(
            matches!(hk.require_order_book(&Symbol::parse("700.HK").unwrap()), Err(AppError::EntitlementRequired { market: Some(m), .. }) if m == "HK")
        );
        let us = grant(&basic, &Symbol::parse("AAPL.US").unwrap(), Scope::Market, now).unwrap();
        assert_eq!(us.cutoff(), None);
        assert!(us.keeps(now));
        assert!(us.require_order_book(&Symbol::parse("AAPL.US").unwrap()).is_ok());
        let aapl = Symbol::parse("AAPL.US").unwrap();
        assert!(us.require_since(&aapl, "after", at("2026-10-26T15:00:00Z"), None).is_ok());
        let err = us.require_since(&aapl, "after", at("2026-10-26T14:59:59Z"), None).unwrap_err();
        assert!(matches!(&err, AppError::EntitlementRequired { market: Some(m), .. } if m == "US"), "{err:?}");
        let listed = |day: &str| Some(day.parse::<NaiveDate>().unwrap());
        assert!(us.require_since(&aapl, "after", at("2000-01-01T00:00:00Z"), listed("1980-12-12")).is_err());
        assert!(
            us.require_since(&aapl, "after", at("2000-01-01T00:00:00Z"), listed("2026-10-26")).is_ok(),
            "listed on the horizon's day: nothing is hidden"
        );
    }

    #[test]
    fn fundamentals_follow_the_plan() {
        assert!(matches!(
            require_fundamentals(&principal("basic", "market")),
            Err(AppError::EntitlementRequired { market: None, .. })
        ));
        assert!(require_fundamentals(&principal("pro", "market")).is_ok());
    }
}
