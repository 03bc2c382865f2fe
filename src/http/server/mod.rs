//! The HTTP server: finql's own accept loop around hyper, in place of `axum::serve`.
//!
//! `axum::serve` has no header-read timeout, no idle timeout and no connection cap, and it
//! answers a full descriptor table by sleeping a second per failed accept. The review held 500
//! idle or half-sent connections open for over 90 s, and 1,100 made `/health` time out with
//! "too many open files". This loop:
//! - raises the open-files limit and fits the connection cap inside it (`descriptors`);
//! - admits each accepted socket as normal, reserve (probes only) or refused (`admission`),
//!   refusing without ever waiting, so a flood is answered as fast as it arrives;
//! - serves each connection with hyper's HTTP/1 (WebSocket upgrades included) under the
//!   header, body and idle timeouts (`connection`, `body`);
//! - survives running out of descriptors (`EMFILE`/`ENFILE`): it backs off briefly and
//!   retries instead of spinning on the error or giving up;
//! - on shutdown closes the listener (new connections are refused by the kernel), lets each
//!   connection finish its request in flight and close, and waits up to the grace period.
//!
//! HTTP/1 only, as before (axum's `http2` feature was never on): a load balancer in front
//! speaks HTTP/1 to replicas, and hyper's HTTP/2 has no header-read timeout.

use std::{io, time::Duration};

use axum::Router;
use tokio::{net::TcpListener, sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionSettings;

/// The connection cap, the probe reserve and the fast refusal.
pub mod admission;
/// The whole-body read deadline.
pub mod body;
/// One connection: hyper, `ConnectInfo`, the idle watchdog.
pub mod connection;
/// The open-files limit, raised and checked against the cap.
pub mod descriptors;

use admission::{Admission, ConnectionLimiter};
use connection::Lane;

/// The pause after an accept failed for want of resources (descriptors, buffers, memory): the
/// failure repeats at once while the condition lasts, so retrying without a pause spins a core,
/// and a descriptor freed by a closing connection is reused within this time.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The longest run of accept failures logged once: a flood at the descriptor limit fails
/// thousands of accepts a second, and one warning a second says as much.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// Where connections come from, and what serves them.
pub struct Server {
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    /// Descriptors kept for the rest of the process beyond [`descriptors::DESCRIPTOR_MARGIN`]
    /// (the database pool).
    extra_descriptors: u64,
}

impl Server {
    pub fn new(listener: TcpListener, router: Router, settings: ConnectionSettings, extra_descriptors: u64) -> Self {
        Self { listener, router, settings, extra_descriptors }
    }

    /// Accepts until `stop` is cancelled, then drains: connections finish the request in flight
    /// and close, for up to `grace`. Upgraded connections (WebSockets) are not waited for; they
    /// close on the application's own shutdown signal.
    pub async fn run(self, stop: CancellationToken, grace: Duration) -> anyhow::Result<()> {
        let Self { listener, router, settings, extra_descriptors } = self;
        let margin = descriptors::DESCRIPTOR_MARGIN.saturating_add(extra_descriptors);
        let open_files = descriptors::raise_open_files_limit();
        let max = descriptors::fitting_cap(settings.max_connections, settings.reserve, margin, open_files);
        let limiter = ConnectionLimiter::new(max, settings.reserve);
        let refusal = admission::refusal_bytes();
        let (drain_tx, drain_rx) = watch::channel(());
        let mut accept_failures = AcceptFailures::default();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    if accept_failures.record(&err) {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                    continue;
                }
            };
            // Small writes (a WebSocket `complete` right after `next`, a short response) must
            // not wait for the peer's delayed ACK: Nagle's algorithm off.
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "could not set TCP_NODELAY");
            }
            let (slot, lane) = match limiter.admit() {
                Admission::Normal(slot) => (slot, Lane::Normal),
                Admission::Reserve(slot) => (slot, Lane::Reserve),
                Admission::Refused => {
                    tracing::debug!(%peer, open = limiter.open(), "refusing a connection over the cap");
                    admission::refuse(stream, &refusal);
                    continue;
                }
            };
            tokio::spawn(connection::serve(
                stream,
                peer,
                slot,
                lane,
                router.clone(),
                settings.clone(),
                drain_rx.clone(),
            ));
        }
        // The kernel refuses new connections from here on.
        drop(listener);
        drop(drain_rx);
        // Fails only when no connection is left to tell.
        let _ = drain_tx.send(());
        match tokio::time::timeout(grace, drain_tx.closed()).await {
            Ok(()) => tracing::debug!("every HTTP connection closed"),
            Err(_) => tracing::warn!(?grace, "shutdown grace period over; dropping remaining connections"),
        }
        Ok(())
    }
}

/// Accept failures: which ones call for a pause, and when they were last logged.
#[derive(Default)]
struct AcceptFailures {
    last_warning: Option<Instant>,
    /// Failures since the last warning.
    unreported: u64,
}

impl AcceptFailures {
    /// Logs `err` (at most once per [`ACCEPT_WARNING_INTERVAL`]) and says whether to pause
    /// before the next accept. A connection that failed on its own (reset or aborted before it
    /// was accepted) is no reason to pause: the next one is likely fine.
    fn record(&mut self, err: &io::Error) -> bool {
        if matches!(
            err.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
        ) {
            tracing::debug!(%err, "a connection failed before it was accepted");
            return false;
        }
        self.unreported += 1;
        let now = Instant::now();
        if self.last_warning.is_none_or(|last| now.duration_since(last) >= ACCEPT_WARNING_INTERVAL) {
            tracing::warn!(%err, failures = self.unreported, "cannot accept connections; backing off");
            self.last_warning = Some(now);
            self.unreported = 0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_pauses_the_accept_loop_but_a_failed_connection_does_not() {
        let mut failures = AcceptFailures::default();
        #[cfg(unix)]
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(failures.record(&io::Error::from_raw_os_error(errno)), "errno {errno} pauses");
        }
        assert!(!failures.record(&io::ErrorKind::ConnectionAborted.into()));
        assert!(!failures.record(&io::ErrorKind::ConnectionReset.into()));
    }

    #[tokio::test]
    async fn failures_are_logged_once_a_second() {
        let mut failures = AcceptFailures::default();
        let err = io::Error::other("out of descriptors");
        failures.record(&err);
        let first = failures.last_warning.expect("the first failure is logged");
        for _ in 0..1000 {
            failures.record(&err);
        }
        assert_eq!(failures.last_warning, Some(first), "no new warning within a second");
        assert_eq!(failures.unreported, 1000, "counted for the next warning");
    }
}
