//! Access and refresh tokens, and the credentials a request presents.
//!
//! Access tokens are short-lived JWTs (HS256, algorithm pinned on validation so a token cannot
//! choose `none` or another algorithm). Refresh tokens are 256 random bits, opaque to clients,
//! stored only as a SHA-256 hash (a database leak does not leak usable tokens; a fast hash is
//! enough because the input is random, not a password).

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    config::AuthConfig,
    error::{AppError, AppResult},
};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
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

/// Who a request says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header: public operations only.
    Anonymous,
    /// A valid access token for this user.
    User(Uuid),
    /// A header was sent but is unusable; the reason is safe to show the client.
    Invalid(&'static str),
}

impl Credentials {
    /// The authenticated user, or `UNAUTHENTICATED`.
    pub fn require_user(&self) -> AppResult<Uuid> {
        match self {
            Self::User(id) => Ok(*id),
            Self::Anonymous => Err(AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <accessToken>`".into(),
            )),
            Self::Invalid(reason) => Err(AppError::Unauthenticated((*reason).into())),
        }
    }
}

impl TokenIssuer {
    pub fn new(config: &AuthConfig) -> Self {
        let secret = config.jwt_secret.expose();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        // Tolerates clock skew between replicas; small against a 15-minute lifetime.
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: chrono::Duration::from_std(config.access_token_ttl).unwrap_or(chrono::Duration::minutes(15)),
            refresh_ttl: chrono::Duration::from_std(config.refresh_token_ttl).unwrap_or(chrono::Duration::days(30)),
        }
    }

    pub fn refresh_ttl(&self) -> chrono::Duration {
        self.refresh_ttl
    }

    pub fn issue_access(&self, user_id: Uuid) -> AppResult<AccessToken> {
        let now = Utc::now();
        let expires_at = now + self.access_ttl;
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok(AccessToken { token, expires_at })
    }

    /// Reads an `Authorization` header value (or `None` when absent).
    pub fn credentials(&self, authorization: Option<&str>) -> Credentials {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Credentials::Anonymous;
        };
        let Some(token) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
        else {
            return Credentials::Invalid("the Authorization header must be `Bearer <accessToken>`");
        };
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => match Uuid::parse_str(&data.claims.sub) {
                Ok(id) => Credentials::User(id),
                Err(_) => Credentials::Invalid("invalid access token"),
            },
            Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                Credentials::Invalid("access token expired: renew it with refreshToken")
            }
            Err(_) => Credentials::Invalid("invalid access token"),
        }
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
        TokenIssuer::new(&AuthConfig {
            jwt_secret: Secret::new(secret.as_bytes().to_vec()),
            issuer: "finql".into(),
            audience: "finql-api".into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(86_400),
        })
    }

    #[test]
    fn round_trip_and_rejections() {
        let tokens = issuer("0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let access = tokens.issue_access(user).unwrap();
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
