//! Who a request says it is (the credentials it presented, checked), and who that makes it in
//! finql: a tenant, a role or a key's scopes, and the tenant's plan.
//!
//! A leaf, so that the domains that check credentials (`accounts` for tokens, `tenancy` for API
//! keys) and the GraphQL kit (which carries them with every request) share the types without
//! the kit importing a domain.

use std::{fmt, sync::Arc};

use uuid::Uuid;

use crate::{
    config::Plan,
    error::{AppError, AppResult},
};

/// Who a request says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: public operations only, under the anonymous plan if the deployment has
    /// one.
    Anonymous,
    /// A valid access token for this user.
    User(Uuid),
    /// A valid, unrevoked, unexpired API key of a tenant.
    ApiKey(KeyGrant),
    /// Credentials were sent but are unusable; the reason is safe to show the client.
    Invalid(&'static str),
}

/// What an accepted API key grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    pub id: Uuid,
    /// The visible part of the key (`fq_<prefix>_…`), for logs and usage.
    pub prefix: String,
    pub scopes: Scopes,
    /// The key's own rate limit, when lower than its tenant's: requests per second and burst.
    pub rate: Option<(u32, u32)>,
}

impl Credentials {
    /// The authenticated user, or `UNAUTHENTICATED` (`FORBIDDEN` for an API key: a key is a
    /// machine credential of a tenant, not a person, and personal data needs a person).
    pub fn require_user(&self) -> AppResult<Uuid> {
        match self {
            Self::User(id) => Ok(*id),
            Self::Anonymous => Err(AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <accessToken>`".into(),
            )),
            Self::ApiKey(_) => Err(AppError::Forbidden(
                "this needs a user's access token: an API key is not a person (log in and send \
                 `Authorization: Bearer <accessToken>`)"
                    .into(),
            )),
            Self::Invalid(reason) => Err(AppError::Unauthenticated((*reason).into())),
        }
    }
}

/// A user's role in their tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Member,
    /// Manages the tenant's keys and members, and sees its plan and usage; never members'
    /// personal data.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "MEMBER",
            Self::Admin => "ADMIN",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "MEMBER" => Some(Self::Member),
            "ADMIN" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// What an API key may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Market and reference data (queries).
    Market,
    /// Live data (subscriptions).
    Live,
    /// The tenant admin API.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Market, Scope::Live, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Market => "market",
            Self::Live => "live",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Market => 1,
            Self::Live => 2,
            Self::Admin => 4,
        }
    }
}

/// A set of [`Scope`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const ALL: Scopes = Scopes(7);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }

    /// `market,live,admin` (any order, any subset, at least one): the form the database and the
    /// CLI use.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut scopes = Self::default();
        for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|scope| scope.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("unknown scope `{name}`: the scopes are market, live and admin"))?;
            scopes = scopes.with(scope);
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed: market, live or admin".into());
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// The tenant a caller belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: Arc<str>,
}

/// Who the credentials make the caller in finql: its tenant, its role (users), and the plan
/// whose limits and entitlements apply. Resolved once per request (and per WebSocket
/// connection) from the credentials.
#[derive(Clone, Debug)]
pub struct Principal {
    pub credentials: Credentials,
    /// `None` for anonymous callers (and invalid credentials).
    pub tenant: Option<TenantRef>,
    /// A user's role in the tenant; `None` for keys and anonymous callers.
    pub role: Option<Role>,
    /// `None` when the caller may reach no data at all: anonymous where the deployment has no
    /// anonymous plan, or invalid credentials.
    pub plan: Option<Arc<Plan>>,
}

impl Principal {
    /// A caller without a tenant: anonymous (under `plan`, if any) or with refused credentials.
    pub fn without_tenant(credentials: Credentials, plan: Option<Arc<Plan>>) -> Self {
        let plan = if matches!(credentials, Credentials::Invalid(_)) { None } else { plan };
        Self { credentials, tenant: None, role: None, plan }
    }

    /// The tenant as a metric label: its slug, or `-` for anonymous and unknown callers (one
    /// value for them all keeps the label set as small as the tenant list).
    pub fn tenant_label(&self) -> metrics::SharedString {
        match &self.tenant {
            Some(tenant) => tenant.slug.clone().into(),
            None => "-".into(),
        }
    }

    /// The plan whose limits and entitlements apply, or why there is none.
    pub fn require_plan(&self) -> AppResult<&Arc<Plan>> {
        match (&self.plan, &self.credentials) {
            (Some(plan), _) => Ok(plan),
            (None, Credentials::Invalid(reason)) => Err(AppError::Unauthenticated((*reason).into())),
            // Known, but the tenant's plan is gone from the plan file (an operator's mistake,
            // logged where the tenant is looked up): who it is does not help.
            (None, _) if self.tenant.is_some() => Err(AppError::Forbidden(
                "your tenant's plan is not offered by this deployment: ask its operator to set another".into(),
            )),
            (None, _) => Err(AppError::Unauthenticated(
                "authentication required: send an API key (`Authorization: Bearer fq_…` or `X-API-Key`) \
                 or `Authorization: Bearer <accessToken>`"
                    .into(),
            )),
        }
    }

    /// The caller's tenant, or `UNAUTHENTICATED`.
    pub fn require_tenant(&self) -> AppResult<&TenantRef> {
        match (&self.tenant, &self.credentials) {
            (Some(tenant), _) => Ok(tenant),
            (None, Credentials::Invalid(reason)) => Err(AppError::Unauthenticated((*reason).into())),
            (None, _) => {
                Err(AppError::Unauthenticated("authentication required: send an API key or an access token".into()))
            }
        }
    }

    /// Whether the caller may reach `scope`: users hold every scope a person has (market and
    /// live; admin by role), keys the scopes they were created with.
    pub fn has_scope(&self, scope: Scope) -> bool {
        match &self.credentials {
            Credentials::ApiKey(key) => key.scopes.contains(scope),
            Credentials::User(_) => scope != Scope::Admin || self.role == Some(Role::Admin),
            Credentials::Anonymous => scope != Scope::Admin,
            Credentials::Invalid(_) => false,
        }
    }

    /// `FORBIDDEN` unless the caller holds `scope`.
    pub fn require_scope(&self, scope: Scope) -> AppResult<()> {
        self.require_plan()?;
        if self.has_scope(scope) {
            return Ok(());
        }
        Err(AppError::Forbidden(match (&self.credentials, scope) {
            (Credentials::ApiKey(_), _) => format!("this API key lacks the `{}` scope", scope.as_str()),
            (_, Scope::Admin) => "only the tenant's admins may do this".into(),
            _ => format!("the `{}` scope is needed", scope.as_str()),
        }))
    }

    /// The tenant of an admin caller (an `ADMIN` user, or a key with the `admin` scope), or
    /// `UNAUTHENTICATED`/`FORBIDDEN`.
    pub fn require_admin(&self) -> AppResult<&TenantRef> {
        let tenant = self.require_tenant()?;
        self.require_scope(Scope::Admin)?;
        Ok(tenant)
    }

    /// Who is counted in usage and named in the audit: `user:<id>`, `key:<prefix>` or
    /// `anonymous`.
    pub fn actor(&self) -> String {
        match &self.credentials {
            Credentials::User(id) => format!("user:{id}"),
            Credentials::ApiKey(key) => format!("key:{}", key.prefix),
            Credentials::Anonymous | Credentials::Invalid(_) => "anonymous".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        assert_eq!(Scopes::parse("market, LIVE").unwrap().to_string(), "market,live");
        assert_eq!(Scopes::parse("admin,market,live").unwrap(), Scopes::ALL);
        assert!(Scopes::parse("").unwrap_err().contains("at least one"));
        assert!(Scopes::parse("market,trade").unwrap_err().contains("unknown scope `trade`"));
    }

    #[test]
    fn a_key_is_not_a_person() {
        let key =
            Credentials::ApiKey(KeyGrant { id: Uuid::nil(), prefix: "abc".into(), scopes: Scopes::ALL, rate: None });
        assert!(matches!(key.require_user(), Err(AppError::Forbidden(_))));
    }

    #[test]
    fn a_tenant_without_its_plan_is_forbidden_and_a_stranger_unauthenticated() {
        let key = KeyGrant { id: Uuid::nil(), prefix: "abc".into(), scopes: Scopes::ALL, rate: None };
        let tenant = TenantRef { id: Uuid::nil(), slug: "desk".into() };
        let orphan = Principal { credentials: Credentials::ApiKey(key), tenant: Some(tenant), role: None, plan: None };
        assert!(matches!(orphan.require_plan(), Err(AppError::Forbidden(m)) if m.contains("operator")));
        let stranger = Principal::without_tenant(Credentials::Anonymous, None);
        assert!(matches!(stranger.require_plan(), Err(AppError::Unauthenticated(_))));
    }
}
