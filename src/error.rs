//! Errors.
//!
//! Which type to use where:
//! - services return `AppResult`; every failure a client can cause is an `AppError` variant
//!   with a message written for that client;
//! - anything else (database down, a bug) is `AppError::Internal`: its cause is logged here,
//!   once, and the client sees only "internal error" with code `INTERNAL`;
//! - resolvers return `async_graphql::Result` and convert with `?`: the conversion below is the
//!   only place where `extensions.code` is set for domain errors. Errors produced by
//!   async-graphql itself (parse, validation, argument coercion) get their codes in
//!   `graphql::guard`.

use async_graphql::ErrorExtensions;

/// The codes a client can rely on, as `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    RateLimited,
    UpstreamUnavailable,
    /// The request ran past its deadline (`FINQL_REQUEST_TIMEOUT_MS`); set at the edge, never by a
    /// service. A timed-out mutation may or may not have been applied.
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::RateLimited => "RATE_LIMITED",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::Timeout => "TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Deliberately not `Display`: async-graphql converts any `Display` error into a GraphQL error
/// without a code, and `?` would pick that conversion silently. Without `Display`, the only
/// conversion is the one below, which sets the code.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    /// `field` names the input field at fault, when there is one (`extensions.field`).
    BadUserInput {
        message: String,
        field: Option<&'static str>,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    UpstreamUnavailable(String),
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: None }
    }

    pub fn bad_field(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: Some(field) }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// What the client is told. Internal causes are never part of it.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::UpstreamUnavailable(m) => {
                m.clone()
            }
            Self::BadUserInput { message, .. } => message.clone(),
            Self::RateLimited { retry_after_secs } => format!("rate limit exceeded; retry in {retry_after_secs} s"),
            Self::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::UpstreamUnavailable(_) => ErrorCode::UpstreamUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        if let AppError::Internal(cause) = &err {
            // The span of the request carries its trace id, so this line can be matched to it.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            match &err {
                AppError::BadUserInput { field: Some(field), .. } => ext.set("field", *field),
                AppError::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
}

/// Whether a database error is a unique-constraint violation (duplicate email, token hash, …),
/// on SQLite and PostgreSQL alike.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// For a write of a user's own record: a foreign-key violation means the owner (the user the
/// access token names) no longer exists, which is the token's fault, not the server's.
pub fn owner_gone_or(err: sea_orm::DbErr) -> AppError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
            AppError::Unauthenticated("invalid access token".into())
        }
        _ => err.into(),
    }
}
