//! What a caller's plan lets it see of the market: one check, used the same way by queries,
//! batches and subscriptions.
//!
//! A symbol's market is its listing region for stocks and funds (`US`, `HK`, `SH`, `SZ`) and its
//! asset class otherwise (`FX`, `IDX`, `CRYPTO`, `FUT`): the names a plan's `markets` table uses
//! (`config::plans`). The answer is the access the plan grants there (`realtime` or `delayed`),
//! or why there is none: no credentials where the deployment requires them
//! (`UNAUTHENTICATED`), a key without the scope (`FORBIDDEN`), a market outside the plan
//! (`FORBIDDEN`, `reason: ENTITLEMENT_REQUIRED`, `market`).

use crate::{
    config::Access,
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
    }
}
