//! Password hashing with argon2id.
//!
//! Parameters are OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1). One hash takes tens of
//! milliseconds of CPU, so it runs on the blocking pool (never on the async workers, where it
//! would stall every other request), and a semaphore caps how many run at once: a burst of
//! logins then queues instead of allocating 19 MiB per attempt without bound.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use tokio::sync::Semaphore;

use crate::{
    config::Secret,
    error::{AppError, AppResult},
};

/// Minimum and maximum password length in characters. The maximum stops multi-megabyte
/// "passwords" from being hashed.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verified against when the email is unknown, so that
    /// "no such user" takes as long as "wrong password" (no user enumeration by timing).
    dummy_hash: Arc<str>,
}

/// A password that passed the length rules. Only constructed by [`Password::parse`].
pub struct Password(Secret<String>);

impl Password {
    pub fn parse(raw: String) -> AppResult<Self> {
        let chars = raw.chars().count();
        if chars < MIN_LEN {
            return Err(AppError::bad_field("password", format!("password must be at least {MIN_LEN} characters")));
        }
        if chars > MAX_LEN {
            return Err(AppError::bad_field("password", format!("password must be at most {MAX_LEN} characters")));
        }
        Ok(Self(Secret::new(raw)))
    }
}

#[allow(clippy::expect_used, reason = "the parameters are constants, checked by every test that hashes")]
fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// `max_concurrent` hashes may run at once (one per core is the useful maximum).
    pub async fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let dummy = tokio::task::spawn_blocking(|| {
            let random: String = uuid::Uuid::new_v4().to_string();
            argon2().hash_password(random.as_bytes()).map(|h| h.to_string())
        })
        .await?
        .map_err(|err| anyhow::anyhow!("hashing the timing-equaliser password: {err}"))?;
        Ok(Self { permits: Arc::new(Semaphore::new(max_concurrent.max(1))), dummy_hash: dummy.into() })
    }

    pub async fn hash(&self, password: Password) -> AppResult<String> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.0.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| AppError::internal(anyhow::anyhow!("argon2 hashing failed: {err}")))
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Checks `candidate` against `stored`; with no stored hash, burns the same time and fails.
    pub async fn verify(&self, candidate: String, stored: Option<String>) -> AppResult<bool> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|err| AppError::internal(anyhow::anyhow!("stored password hash is malformed: {err}")))?;
            // Parameters come from the stored hash, so raising them later keeps old hashes valid.
            let matches = argon2().verify_password(candidate.as_bytes(), &parsed).is_ok();
            Ok(known && matches)
        })
        .await
        .map_err(AppError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2).await.unwrap();
        let hash = hasher.hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn length_rules() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert!(Password::parse("ééééééée".into()).is_ok(), "counts characters, not bytes");
    }
}
