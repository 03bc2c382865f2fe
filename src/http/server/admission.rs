//! Who gets a connection: the cap on open connections, the reserve kept for probes, and the
//! fast refusal of everyone else.
//!
//! Every accepted socket is one file descriptor and one task until it closes, WebSockets
//! included, so the count is of open sockets, not of requests: a `Slot` travels with the
//! socket (into the WebSocket after an upgrade) and frees its place when the socket is dropped.
//! Up to `max` sockets are served normally; the next `reserve` are served only for `/health`
//! and `/ready` (an orchestrator that cannot probe a busy replica kills it, which turns a flood
//! into an outage); beyond that a socket gets a canned `503` written without waiting and is
//! closed at once, so it never sits in the backlog or holds a descriptor.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::error::ErrorCode;

/// How long a refused client is told to wait (`Retry-After`, seconds): a flood passes or a
/// replica is added in seconds; a longer hint would only keep honest clients away longer.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The connection counter shared by the accept loop and every [`Slot`].
#[derive(Debug)]
pub struct ConnectionLimiter {
    /// Sockets open now (normal and reserve).
    open: AtomicUsize,
    /// Sockets served normally.
    max: usize,
    /// Sockets beyond `max` served for probes only.
    reserve: usize,
}

/// What an accepted socket may do.
#[derive(Debug)]
pub enum Admission {
    /// Served normally.
    Normal(Slot),
    /// Over the cap but within the reserve: `/health` and `/ready` only, one request.
    Reserve(Slot),
    /// Over the cap and the reserve: refused (see [`refuse`]).
    Refused,
}

/// One open socket's place in the count, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<ConnectionLimiter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimiter {
    pub fn new(max: usize, reserve: usize) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), max, reserve })
    }

    /// Takes a place for a newly accepted socket, if there is one.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before < self.max {
            Admission::Normal(Slot(self.clone()))
        } else if before < self.max.saturating_add(self.reserve) {
            Admission::Reserve(Slot(self.clone()))
        } else {
            self.open.fetch_sub(1, Ordering::AcqRel);
            Admission::Refused
        }
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// The whole answer to a refused socket: a `503` with `Retry-After` and a GraphQL-shaped error,
/// built once per server.
pub fn refusal_bytes() -> Bytes {
    let body = serde_json::json!({ "errors": [{
        "message": "too many connections; retry later",
        "extensions": { "code": ErrorCode::RateLimited.as_str() },
    }] })
    .to_string();
    Bytes::from(format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: {RETRY_AFTER_SECS}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// Answers a refused socket without waiting and closes it. A fresh socket's send buffer is
/// empty, so the write goes out whole; if it does not, the client sees the connection closed,
/// which is a refusal too. Never awaits: a flood must not make the accept loop wait.
pub fn refuse(stream: TcpStream, refusal: &[u8]) {
    if let Err(err) = stream.try_write(refusal) {
        tracing::trace!(%err, "could not write the refusal");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_cap_then_the_reserve_then_refuses() {
        let limiter = ConnectionLimiter::new(2, 1);
        let first = limiter.admit();
        let second = limiter.admit();
        let third = limiter.admit();
        assert!(matches!(first, Admission::Normal(_)));
        assert!(matches!(second, Admission::Normal(_)));
        assert!(matches!(third, Admission::Reserve(_)));
        assert!(matches!(limiter.admit(), Admission::Refused));
        assert_eq!(limiter.open(), 3, "a refusal takes no place");
        drop(first);
        assert_eq!(limiter.open(), 2);
        assert!(matches!(limiter.admit(), Admission::Reserve(_)), "the freed place is the highest");
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let refusal = refusal_bytes();
        let text = std::str::from_utf8(&refusal).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    }
}
