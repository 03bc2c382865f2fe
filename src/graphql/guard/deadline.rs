//! The execution deadline (`FINQL_REQUEST_TIMEOUT_MS`): no request holds the server longer,
//! whatever it waits on (a silent upstream, a slow database, a lock).
//!
//! What the client sees: an error with `extensions.code` `TIMEOUT` and the message "request
//! exceeded its time limit of N ms".
//! - Over HTTP, a single operation answers **504 Gateway Timeout** with that error and no
//!   `data` (the GraphQL-over-HTTP spec's shape for a response without a result). Not 200: there
//!   is no partial result to deliver, and a 2xx would tell caches, proxies and monitoring that
//!   the request succeeded. Not 400: the request was valid. 504 rather than 503 because the
//!   deadline is almost always spent waiting on a dependency (the market-data upstream, the
//!   database), which is what 504 says; clients and gateways treat it as "retry later".
//! - In an HTTP batch the deadline covers the batch as a whole (one HTTP request): operations
//!   finished in time keep their results, the others get the error, and the batch answers 200,
//!   as batches always do.
//! - Over WebSocket a query or mutation past its deadline gets an `error` message with the
//!   error, which ends the operation. Subscriptions are not bounded: they are meant to last, and
//!   their first event may rightly wait for the first trade.
//!
//! Execution is cancelled at the deadline (its future is dropped). For a mutation this means
//! the write may or may not have happened: a client retries it with the same idempotency key.

use std::{future::Future, time::Duration};

use async_graphql::{Response, ServerError};
use tokio::time::Instant;

use crate::error::ErrorCode;

/// Runs `execution` until `deadline`; past it, the answer is the `TIMEOUT` error.
pub async fn run_until(execution: impl Future<Output = Response>, deadline: Instant, limit: Duration) -> Response {
    match before(Some(deadline), execution).await {
        Some(response) => response,
        None => Response::from_errors(vec![timeout_error(limit)]),
    }
}

/// `future`'s output, or `None` when `deadline` passes first. No deadline: no limit.
pub async fn before<T>(deadline: Option<Instant>, future: impl Future<Output = T>) -> Option<T> {
    let Some(deadline) = deadline else { return Some(future.await) };
    match tokio::time::timeout_at(deadline, future).await {
        Ok(output) => Some(output),
        Err(_) => {
            tracing::warn!("request exceeded its time limit");
            None
        }
    }
}

/// The error for a request cut off at its deadline.
pub fn timeout_error(limit: Duration) -> ServerError {
    let mut err = ServerError::new(format!("request exceeded its time limit of {} ms", limit.as_millis()), None);
    err.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::Timeout.as_str());
    err
}

/// Whether `response` is the answer of a request cut off at its deadline.
pub fn is_timeout(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && response.errors.iter().any(|err| {
            err.extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from(ErrorCode::Timeout.as_str()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // On tokio's paused clock: a pending future lets it jump to the deadline at once.
    #[tokio::test(start_paused = true)]
    async fn execution_past_the_deadline_is_a_timeout_error() {
        let limit = Duration::from_millis(20);
        let never = std::future::pending::<Response>();
        let started = Instant::now();
        let response = run_until(never, started + limit, limit).await;
        assert_eq!(started.elapsed(), limit, "cut off at the deadline, not before or after");
        assert!(is_timeout(&response));
        assert_eq!(response.errors[0].message, "request exceeded its time limit of 20 ms");

        let quick = async { Response::new(async_graphql::Value::from(1)) };
        let response = run_until(quick, Instant::now() + limit, limit).await;
        assert!(!is_timeout(&response) && response.errors.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_nothing_is_cut_off() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            7
        };
        assert_eq!(before(None, slow).await, Some(7));
        assert_eq!(before(Some(Instant::now()), std::future::pending::<u8>()).await, None);
    }
}
