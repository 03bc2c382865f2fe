//! Access and refresh tokens, and the [`Credentials`](crate::identity::Credentials) an `Authorization` value is worth.
//!
//! Access tokens are short-lived JWTs (HS256, algorithm pinned on validation so a token cannot
//! choose `none` or another algorithm). Refresh tokens are 256 random bits, opaque to clients,
//! stored only as a SHA-256 hash (a database leak does not leak usable tokens; a fast hash is
//! enough because the input is random, not a password).
//!
//! Checking an access token, the same for HTTP and WebSocket ([`TokenIssuer::authenticate`]):
//! the signature, issuer and audience; then the times, by this module rather than by
//! `jsonwebtoken`, so that one rule (and one leeway, `FINQL_JWT_LEEWAY_SECS`) serves a request
//! and a socket's expiry timer alike, to the millisecond: refused when `exp + leeway` has
//! passed, when `iat` or `nbf` is later than `now + leeway` (a token from the future is forged
//! or from a broken clock), or when its lifetime `exp - iat` is longer than
//! `FINQL_ACCESS_TOKEN_TTL_SECS` (no token this server signs lives longer); and last, its
//! session (`sid`, the refresh-token family) must not be revoked (`revocation`), so logout
//! ends access tokens too. A token without `sid` (signed before sessions existed) is accepted
//! until it expires: it cannot be revoked, but it lives at most one access lifetime.

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::revocation::Revocations;
use crate::{
    config::AuthConfig,
    error::{AppError, AppResult},
    identity::Credentials,
};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    /// The session: the refresh-token family the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<Uuid>,
    iss: String,
    aud: String,
}

/// Issues and checks tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
    /// Clock skew tolerated on `exp`, `iat` and `nbf`, in milliseconds.
    leeway_ms: i64,
    revocations: Revocations,
}

/// A freshly issued access token.
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A freshly generated refresh token: the value for the client, the hash for the database.
pub struct RefreshSecret {
    pub token: String,
    pub hash: String,
}

/// A checked access token: what a long-lived connection must re-check as time passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessGrant {
    pub user_id: Uuid,
    /// The session (`sid`), when the token names one.
    pub session: Option<Uuid>,
    /// When the token stops being accepted: `exp` plus the leeway.
    pub valid_until: DateTime<Utc>,
}

/// What an `Authorization` value is worth, with the details a socket needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    Anonymous,
    User(AccessGrant),
    Invalid(&'static str),
}

impl From<Authentication> for Credentials {
    fn from(auth: Authentication) -> Self {
        match auth {
            Authentication::Anonymous => Self::Anonymous,
            Authentication::User(grant) => Self::User(grant.user_id),
            Authentication::Invalid(reason) => Self::Invalid(reason),
        }
    }
}

/// Why a token that was valid no longer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lapsed {
    Expired,
    Revoked,
}

impl Lapsed {
    /// For a client: what happened and what to do.
    pub fn message(self) -> &'static str {
        match self {
            Self::Expired => EXPIRED,
            Self::Revoked => REVOKED,
        }
    }

    /// Short, for a WebSocket close reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Expired => "access token expired",
            Self::Revoked => "session revoked",
        }
    }
}

const EXPIRED: &str = "access token expired: renew it with refreshToken";
const REVOKED: &str = "session revoked: log in again";
const INVALID: &str = "invalid access token";

impl TokenIssuer {
    pub fn new(config: &AuthConfig, revocations: Revocations) -> Self {
        let secret = config.jwt_secret.expose();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        // Times are checked by `check_times` (one rule for requests and sockets).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: chrono::Duration::from_std(config.access_token_ttl).unwrap_or(chrono::Duration::minutes(15)),
            refresh_ttl: chrono::Duration::from_std(config.refresh_token_ttl).unwrap_or(chrono::Duration::days(30)),
            leeway_ms: config.leeway.as_millis().min(i64::MAX as u128) as i64,
            revocations,
        }
    }

    pub fn refresh_ttl(&self) -> chrono::Duration {
        self.refresh_ttl
    }

    /// The set of ended sessions these tokens are checked against.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Signs an access token for `user_id` in `session` (its refresh-token family).
    pub fn issue_access(&self, user_id: Uuid, session: Uuid) -> AppResult<AccessToken> {
        let now = Utc::now();
        // JWT times are whole seconds: the expiry the client is told is the one the token has.
        let exp = (now + self.access_ttl).timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp,
            nbf: None,
            sid: Some(session),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        let expires_at = DateTime::from_timestamp(exp, 0).unwrap_or(now + self.access_ttl);
        Ok(AccessToken { token, expires_at })
    }

    /// Reads an `Authorization` header value (or `None` when absent).
    pub fn credentials(&self, authorization: Option<&str>) -> Credentials {
        self.authenticate(authorization).into()
    }

    /// Like [`TokenIssuer::credentials`], keeping what a connection needs to re-check later.
    pub fn authenticate(&self, authorization: Option<&str>) -> Authentication {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Authentication::Anonymous;
        };
        let Some(token) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
        else {
            return Authentication::Invalid("the Authorization header must be `Bearer <accessToken>`");
        };
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => data.claims,
            Err(_) => return Authentication::Invalid(INVALID),
        };
        let Ok(user_id) = Uuid::parse_str(&claims.sub) else {
            return Authentication::Invalid(INVALID);
        };
        let valid_until = match self.check_times(&claims, Utc::now().timestamp_millis()) {
            Ok(until) => until,
            Err(reason) => return Authentication::Invalid(reason),
        };
        let grant = AccessGrant { user_id, session: claims.sid, valid_until };
        match self.check(&grant) {
            Ok(()) => Authentication::User(grant),
            Err(lapsed) => Authentication::Invalid(lapsed.message()),
        }
    }

    /// Whether a grant still holds: not expired (leeway included), its session not revoked.
    pub fn check(&self, grant: &AccessGrant) -> Result<(), Lapsed> {
        if Utc::now() >= grant.valid_until {
            return Err(Lapsed::Expired);
        }
        if grant.session.is_some_and(|session| self.revocations.is_revoked(session)) {
            return Err(Lapsed::Revoked);
        }
        Ok(())
    }

    /// The time claims at `now_ms`: when the token stops being accepted, or why it is refused.
    fn check_times(&self, claims: &Claims, now_ms: i64) -> Result<DateTime<Utc>, &'static str> {
        let ms = |secs: i64| secs.saturating_mul(1000);
        let latest_start = now_ms.saturating_add(self.leeway_ms);
        if ms(claims.iat) > latest_start || claims.nbf.is_some_and(|nbf| ms(nbf) > latest_start) {
            return Err("access token not valid yet");
        }
        if claims.exp.saturating_sub(claims.iat) > self.access_ttl.num_seconds() {
            return Err("access token lifetime is longer than this server issues");
        }
        let until = ms(claims.exp).saturating_add(self.leeway_ms);
        if now_ms >= until {
            return Err(EXPIRED);
        }
        DateTime::from_timestamp_millis(until).ok_or(INVALID)
    }
}

impl RefreshSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_refresh_token(&token);
        Self { token, hash }
    }
}

pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::Duration;

    fn issuer(secret: &str) -> TokenIssuer {
        TokenIssuer::new(
            &AuthConfig {
                jwt_secret: Secret::new(secret.as_bytes().to_vec()),
                issuer: "finql".into(),
                audience: "finql-api".into(),
                access_token_ttl: Duration::from_secs(900),
                refresh_token_ttl: Duration::from_secs(86_400),
                leeway: Duration::from_secs(5),
            },
            Revocations::local(Duration::from_secs(900)),
        )
    }

    fn claims(iat: i64, exp: i64, nbf: Option<i64>) -> Claims {
        Claims {
            sub: Uuid::new_v4().to_string(),
            iat,
            exp,
            nbf,
            sid: None,
            iss: "finql".into(),
            aud: "finql-api".into(),
        }
    }

    #[test]
    fn times_are_checked_with_the_leeway_to_the_millisecond() {
        let tokens = issuer("0123456789abcdef0123456789abcdef");
        let now = 1_800_000_000_000i64;
        let secs = now / 1000;
        // Expired 4.999 s ago: inside the 5 s leeway; 5 s ago: refused.
        let until = tokens.check_times(&claims(secs - 100, secs, None), now + 4_999).unwrap();
        assert_eq!(until.timestamp_millis(), now + 5_000);
        assert_eq!(tokens.check_times(&claims(secs - 100, secs, None), now + 5_000), Err(EXPIRED));
        // From the future: `iat` or `nbf` beyond the leeway.
        assert!(tokens.check_times(&claims(secs + 5, secs + 100, None), now).is_ok());
        assert!(tokens.check_times(&claims(secs + 6, secs + 100, None), now).is_err());
        assert!(tokens.check_times(&claims(secs, secs + 100, Some(secs + 6)), now).is_err());
        assert!(tokens.check_times(&claims(secs, secs + 100, Some(secs + 5)), now).is_ok());
        // Longer-lived than this server issues.
        assert!(tokens.check_times(&claims(secs, secs + 900, None), now).is_ok());
        assert!(tokens.check_times(&claims(secs, secs + 901, None), now).is_err());
    }

    #[tokio::test]
    async fn a_revoked_session_ends_its_tokens() {
        let tokens = issuer("0123456789abcdef0123456789abcdef");
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let header = format!("Bearer {}", tokens.issue_access(user, session).unwrap().token);
        let Authentication::User(grant) = tokens.authenticate(Some(&header)) else { panic!("valid") };
        assert_eq!((grant.user_id, grant.session), (user, Some(session)));
        tokens.revocations().revoke(session).await;
        assert_eq!(tokens.check(&grant), Err(Lapsed::Revoked));
        assert_eq!(tokens.credentials(Some(&header)), Credentials::Invalid(REVOKED));
    }

    #[test]
    fn round_trip_and_rejections() {
        let tokens = issuer("0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let access = tokens.issue_access(user, Uuid::new_v4()).unwrap();
        assert_eq!(tokens.credentials(Some(&format!("Bearer {}", access.token))), Credentials::User(user));
        assert_eq!(tokens.credentials(None), Credentials::Anonymous);
        assert!(matches!(tokens.credentials(Some(&access.token)), Credentials::Invalid(_)));
        let other = issuer("another-secret-another-secret-xx");
        assert_eq!(
            other.credentials(Some(&format!("Bearer {}", access.token))),
            Credentials::Invalid("invalid access token")
        );
        // alg=none with the same claims must not pass.
        let parts: Vec<&str> = access.token.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{none_header}.{}.", parts[1]);
        assert!(matches!(tokens.credentials(Some(&format!("Bearer {forged}"))), Credentials::Invalid(_)));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = RefreshSecret::generate();
        let b = RefreshSecret::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash_refresh_token(&a.token));
        assert_eq!(a.hash.len(), 64);
    }
}
