//! Errors.
//!
//! Which type to use where:
//! - services return `AppResult`; every failure a client can cause is an `AppError` variant
//!   with a message written for that client. There is no second error type per domain: the
//!   market services return `AppError` too, and where one answer is shared by several waiters
//!   (a DataLoader's batch, a per-symbol result of one upstream call) it is cloned;
//! - anything else (database down, a bug) is `AppError::Internal`, made with
//!   [`AppError::internal`](crate::error::AppError::internal) and passed up unchanged: it is
//!   logged with its cause chain at the edge (the conversion below), once however many clones
//!   reach it, and the client sees only "internal error" with code `INTERNAL` (and the
//!   request's `traceId`);
//! - a market-data provider returns `SourceError` (`market::source`): what went wrong at the
//!   provider, in its own words, which may hold URLs or credentials. It becomes an `AppError` in
//!   one place, the `From<SourceFailure>` beside it (`SourceError::about` adds the symbol and
//!   what was asked for), which yields:
//!
//!   | `SourceError`                            | `extensions.code`      | the client is told            |
//!   |------------------------------------------|------------------------|-------------------------------|
//!   | `NotFound`                               | `NOT_FOUND`            | the source lacks the symbol   |
//!   | `Down` (breaker open, out of budget)     | `UPSTREAM_UNAVAILABLE` | the source's state; retry     |
//!   | `Unavailable`, `Unauthorized`, `Invalid` | `UPSTREAM_UNAVAILABLE` | retry (the cause is logged)   |
//!
//!   A quote's source failure is first answered from the last known quote (`stale`) when there
//!   is one; the table applies when there is none;
//! - resolvers return `async_graphql::Result` and convert with `?`: the conversion below is the
//!   only place where `extensions.code` is set for domain errors. Errors produced by
//!   async-graphql itself (parse, validation, argument coercion) get their codes in
//!   `graphql::guard`; errors answered before GraphQL runs (HTTP and WebSocket protocol) use
//!   [`ErrorCode`](crate::error::ErrorCode) directly.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::ErrorExtensions;

/// The codes a client can rely on, as `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    /// A value the request was sent with is wrong: an argument a service refuses, a variable
    /// that does not coerce to its type, an edge limit (with a `reason`). Show it to the user.
    BadUserInput,
    /// The document is not GraphQL (a syntax error): a bug in the client, as Apollo names it.
    GraphqlParseFailed,
    /// The document is GraphQL but not valid against the schema (an unknown field, a literal
    /// argument of the wrong type): a bug in the client, often an out-of-date generated one.
    GraphqlValidationFailed,
    RateLimited,
    UpstreamUnavailable,
    /// A persisted document's id (APQ's `sha256Hash`, a `documentId`) this server does not
    /// know: Apollo's code, on which its persisted-query link sends the query to register it.
    PersistedQueryNotFound,
    /// Safelist mode (`FINQL_PERSISTED_ONLY`): the id is not one of the manifest's documents
    /// (Apollo Router's code; Apollo's link does not retry it).
    PersistedQueryNotInList,
    /// Safelist mode: the request sent a document's text (free text, or an APQ registration)
    /// where only an id is accepted (Apollo Router's code).
    PersistedQueryIdRequired,
    /// finql's own database could not be had in time (every pooled connection busy past
    /// `FINQL_DB_ACQUIRE_TIMEOUT_MS`, or the database unreachable): a passing overload, not a
    /// bug. With `extensions.retryAfter`; the HTTP answer carries `Retry-After`.
    ServiceUnavailable,
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
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Self::PersistedQueryIdRequired => "PERSISTED_QUERY_ID_REQUIRED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Timeout => "TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Deliberately not `Display`: async-graphql converts any `Display` error into a GraphQL error
/// without a code, and `?` would pick that conversion silently. Without `Display`, the only
/// conversion is the one below, which sets the code.
///
/// `Clone`, so that one answer can be handed to every waiter: a DataLoader gives each field that
/// asked for a key the same `Result`, and a batch answers all the symbols in it. An internal
/// cause is shared by the clones, not copied ([`InternalCause`]).
#[derive(Clone, Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    /// Outside what the caller's plan grants (a market, fundamentals, history depth, real-time
    /// data): `FORBIDDEN` with `extensions.reason: "ENTITLEMENT_REQUIRED"` and, when one market
    /// is at fault, `extensions.market`.
    EntitlementRequired {
        message: String,
        market: Option<String>,
    },
    NotFound(String),
    /// `field` names the input field at fault, when there is one (`extensions.field`).
    BadUserInput {
        message: String,
        field: Option<&'static str>,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    /// A market-data source failed or is down. The message says what could not be had and, for
    /// a source that is down, its state ("itick: circuit open"): never a URL or the provider's
    /// own text.
    UpstreamUnavailable(String),
    /// The database could not be had in time: `SERVICE_UNAVAILABLE`, retry after
    /// `retry_after_secs`. The cause is logged, never sent.
    ServiceUnavailable {
        retry_after_secs: u64,
    },
    /// Anything the client did not cause. Built with [`AppError::internal`].
    Internal(Arc<InternalCause>),
}

/// The cause of an [`AppError::Internal`], shared by its clones and logged by the first of them
/// to reach the edge: one log line per failure, however many fields waited for it.
#[derive(Debug)]
pub struct InternalCause {
    error: anyhow::Error,
    logged: AtomicBool,
}

impl InternalCause {
    /// Logs the cause unless a clone already did. The span of the request carries its trace
    /// id, so the line can be matched to the `traceId` the client is given.
    fn log_once(&self) {
        if !self.logged.swap(true, Ordering::Relaxed) {
            tracing::error!(error = format!("{:#}", self.error), "internal error");
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: None }
    }

    pub fn bad_field(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: Some(field) }
    }

    /// The database could not be had: logged here (a warning: an overload, not a bug), answered
    /// `SERVICE_UNAVAILABLE` with a retry hint.
    fn database_unavailable(err: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "no database connection in time");
        Self::ServiceUnavailable { retry_after_secs: DATABASE_RETRY_AFTER_SECS }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(InternalCause { error: err.into(), logged: AtomicBool::new(false) }))
    }

    /// What the client is told. Internal causes are never part of it.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::UpstreamUnavailable(m) => {
                m.clone()
            }
            Self::BadUserInput { message, .. } | Self::EntitlementRequired { message, .. } => message.clone(),
            Self::RateLimited { retry_after_secs } => format!("rate limit exceeded; retry in {retry_after_secs} s"),
            Self::ServiceUnavailable { retry_after_secs } => {
                format!("the service is temporarily unavailable; retry in {retry_after_secs} s")
            }
            Self::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) | Self::EntitlementRequired { .. } => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadUserInput { .. } => ErrorCode::BadUserInput,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::UpstreamUnavailable(_) => ErrorCode::UpstreamUnavailable,
            Self::ServiceUnavailable { .. } => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Seconds a client is told to wait when the database could not be had: long enough for a
/// burst to drain, short enough not to matter to a person.
const DATABASE_RETRY_AFTER_SECS: u64 = 1;

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        match err {
            // No connection in time (pool exhausted or closed), or none could be opened.
            sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => Self::database_unavailable(err),
            err => Self::internal(err),
        }
    }
}

/// The few statements written for sqlx directly (the audit writer's bulk insert).
impl From<sea_orm::sqlx::Error> for AppError {
    fn from(err: sea_orm::sqlx::Error) -> Self {
        use sea_orm::sqlx::Error;
        match err {
            Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::Tls(_) => Self::database_unavailable(err),
            err => Self::internal(err),
        }
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
            cause.log_once();
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            match &err {
                AppError::BadUserInput { field: Some(field), .. } => ext.set("field", *field),
                AppError::RateLimited { retry_after_secs } | AppError::ServiceUnavailable { retry_after_secs } => {
                    ext.set("retryAfter", *retry_after_secs)
                }
                AppError::EntitlementRequired { market, .. } => {
                    ext.set("reason", "ENTITLEMENT_REQUIRED");
                    if let Some(market) = market {
                        ext.set("market", market.as_str());
                    }
                }
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

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use async_graphql::Value;

    use super::*;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_internal_error_is_logged_once_with_its_cause_and_never_shown() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let shown: Vec<async_graphql::Error> = tracing::subscriber::with_default(subscriber, || {
            let cause = anyhow::anyhow!("disk on fire at /var/lib/finql").context("loading the catalog");
            let err = AppError::internal(cause);
            // Three fields waited for the same answer (a DataLoader hands each a clone).
            vec![err.clone().into(), err.clone().into(), err.into()]
        });
        for err in &shown {
            assert_eq!(err.message, "internal error");
            let code = err.extensions.as_ref().and_then(|ext| ext.get("code"));
            assert_eq!(code, Some(&Value::from("INTERNAL")));
        }
        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logs.matches("internal error").count(), 1, "{logs}");
        assert!(logs.contains("loading the catalog: disk on fire at /var/lib/finql"), "the cause chain: {logs}");
    }

    #[test]
    fn client_errors_keep_their_codes_and_extensions() {
        let cases = [
            (AppError::Unauthenticated("who?".into()), "UNAUTHENTICATED"),
            (AppError::Forbidden("no".into()), "FORBIDDEN"),
            (AppError::NotFound("none".into()), "NOT_FOUND"),
            (AppError::bad_field("limit", "too many"), "BAD_USER_INPUT"),
            (AppError::RateLimited { retry_after_secs: 3 }, "RATE_LIMITED"),
            (AppError::UpstreamUnavailable("down".into()), "UPSTREAM_UNAVAILABLE"),
        ];
        for (err, code) in cases {
            let message = err.message();
            let shown = async_graphql::Error::from(err);
            let ext = shown.extensions.as_ref().unwrap();
            assert_eq!(ext.get("code"), Some(&Value::from(code)));
            assert_eq!(shown.message, message);
            match code {
                "BAD_USER_INPUT" => assert_eq!(ext.get("field"), Some(&Value::from("limit"))),
                "RATE_LIMITED" => assert_eq!(ext.get("retryAfter"), Some(&Value::from(3u64))),
                _ => {}
            }
        }
    }

    #[test]
    fn no_database_connection_in_time_is_service_unavailable_not_internal() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};
        let unavailable = [
            AppError::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
            AppError::from(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)),
            AppError::from(DbErr::Conn(RuntimeErr::Internal("refused".into()))),
            AppError::from(sqlx::Error::PoolTimedOut),
            AppError::from(sqlx::Error::PoolClosed),
        ];
        for err in unavailable {
            let shown = async_graphql::Error::from(err);
            let ext = shown.extensions.as_ref().unwrap();
            assert_eq!(ext.get("code"), Some(&Value::from("SERVICE_UNAVAILABLE")), "{shown:?}");
            assert_eq!(ext.get("retryAfter"), Some(&Value::from(1u64)));
            assert!(!shown.message.contains("pool") && !shown.message.contains("refused"), "{}", shown.message);
        }
        // A failing statement is still a bug of ours.
        let query = AppError::from(DbErr::Custom("syntax error at or near".into()));
        assert_eq!(query.code(), ErrorCode::Internal);
    }
}
