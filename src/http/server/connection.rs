//! One accepted connection: hyper's HTTP/1 with upgrades, the per-request work
//! `into_make_service_with_connect_info` used to do, and the idle watchdog.
//!
//! Timeouts, by phase of a connection (finql keeps the clocks itself, in `Activity`):
//! - a new connection must deliver its first request head within the header-read timeout of
//!   being accepted: a client that connects and says nothing, or dribbles its head, is cut;
//! - between requests on a keep-alive connection, silence is allowed for the idle timeout
//!   (load balancers pool connections to replicas for a minute; cutting them sooner races their
//!   reuse and shows as sporadic 502s); the first byte of the next request starts the
//!   header-read timeout again. hyper's own `header_read_timeout` is off: in hyper 1.12 it
//!   also runs from the moment a keep-alive connection goes idle (hyperium/hyper#3828), which
//!   would end every keep-alive after the short header timeout;
//! - reading the body: `DeadlineBody`, one deadline for the whole body;
//! - anything else (a response the client stopped reading, a stall no other timer covers): the
//!   connection closes when no byte moved either way for the idle timeout while no handler of
//!   it was running. A running handler is not idleness: the request deadline bounds it.
//!
//! An upgraded connection (WebSocket) leaves all of this: hyper hands the socket to the
//! WebSocket task and this connection's future ends, taking the watchdog with it. The WebSocket
//! layer has its own rules (pings every `FINQL_WS_KEEPALIVE_SECS`, the slow-client close); an
//! HTTP idle timeout on top would cut quiet subscriptions whose keep-alive interval is longer.
//! The connection's `Slot` travels with the socket, so a WebSocket still counts against the cap.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{Notify, watch},
    time::{Duration, Instant},
};
use tower::ServiceExt;

use super::{
    admission::{RETRY_AFTER_SECS, Slot},
    body::DeadlineBody,
};
use crate::{config::ConnectionSettings, error::ErrorCode, http::error_body};

/// Whether a connection is served normally or from the probe reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Normal,
    Reserve,
}

/// The paths a reserve connection may ask for: the probes.
const PROBE_PATHS: [&str; 2] = ["/health", "/ready"];

/// The header-read timeout of a reserve connection (when shorter than the normal one). A probe
/// sends its request as soon as it connects, and Kubernetes gives a probe one second by
/// default; a flood's silent connections that land in the reserve are cut this soon, so the
/// reserve is free again for the next probe.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one connection until it closes, turns idle, or the server drains (`drain` changes or
/// its sender goes away).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    lane: Lane,
    router: Router,
    settings: ConnectionSettings,
    mut drain: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let header_timeout = match lane {
        Lane::Normal => settings.header_read_timeout,
        Lane::Reserve => settings.header_read_timeout.min(RESERVE_HEADER_TIMEOUT),
    };
    let io = TokioIo::new(TrackedIo { stream, activity: activity.clone(), _slot: slot });
    let body_timeout = settings.body_read_timeout;
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(request, peer, lane, router.clone(), body_timeout, service_activity.clone())
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Kept by `Activity` instead (see the module comment).
        .header_read_timeout(None)
        // Records the request's header spelling, handed back on a WebSocket upgrade only
        // (`header_spelling`); other responses are written in lower case as before.
        .preserve_header_case(true)
        // A reserve connection answers one probe and closes, making room for the next.
        .keep_alive(lane == Lane::Normal);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
                return;
            }
            expiry = activity.expired(header_timeout, settings.idle_timeout) => {
                tracing::debug!(%peer, ?expiry, "closing a connection");
                return;
            }
            _ = drain.changed(), if !draining => {
                draining = true;
                // Finishes the request in flight, then closes; an idle connection closes now.
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: what `into_make_service_with_connect_info` did (the peer address as
/// `ConnectInfo`, which the GraphQL handlers read), the body deadline, and the reserve's rule.
async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    lane: Lane,
    router: Router,
    body_timeout: Duration,
    activity: Arc<Activity>,
) -> Result<Response<Body>, Infallible> {
    let _busy = activity.busy();
    if lane == Lane::Reserve && !PROBE_PATHS.contains(&request.uri().path()) {
        return Ok(reserve_refusal());
    }
    let expired = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = request.into_parts();
    let spelling = parts.headers.contains_key(header::UPGRADE).then(|| header_spelling(&parts.extensions));
    parts.extensions.insert(ConnectInfo(peer));
    let body = Body::new(DeadlineBody::new(body, body_timeout, expired.clone()));
    let mut response = match router.oneshot(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if expired.load(Ordering::Acquire) {
        return Ok(body_timeout_response(body_timeout));
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(spelling) = spelling
    {
        response.extensions_mut().extend(spelling);
    }
    Ok(response)
}

/// hyper's record of how the client spelled its header names (kept by `preserve_header_case`
/// in a private extension), to hand back on the upgrade's 101: hyper then writes the
/// response's headers that the request also had (`Sec-WebSocket-Protocol`, `Upgrade`,
/// `Connection`) in the client's spelling, and the others in lower case as always. Some
/// WebSocket clients look the subprotocol up case-sensitively (`http::ws` says which). The
/// record is private to hyper, so the request's extensions are copied whole, less the upgrade
/// handle (the socket belongs to the WebSocket task).
fn header_spelling(extensions: &axum::http::Extensions) -> axum::http::Extensions {
    let mut spelling = extensions.clone();
    spelling.remove::<hyper::upgrade::OnUpgrade>();
    spelling
}

/// What anything but a probe gets on a reserve connection.
fn reserve_refusal() -> Response<Body> {
    let mut response =
        error_body(StatusCode::SERVICE_UNAVAILABLE, "too many connections; retry later", ErrorCode::RateLimited);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What a client gets when its body did not arrive in time; the connection closes after it
/// (the rest of the body would otherwise be read as the next request).
fn body_timeout_response(limit: Duration) -> Response<Body> {
    let message = format!("request body not received within {} ms", limit.as_millis());
    let mut response = error_body(StatusCode::REQUEST_TIMEOUT, &message, ErrorCode::BadUserInput);
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a connection's clock ran out.
#[derive(Debug)]
enum Expiry {
    /// A request head took longer than the header-read timeout.
    HeaderRead,
    /// Nothing moved for the idle timeout while no handler ran.
    Idle,
}

/// `head_started_ms` when no request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// A connection's clocks: when it last moved a byte, when the request head being read began,
/// and how many of its requests are being handled.
struct Activity {
    origin: Instant,
    /// Milliseconds after `origin` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    /// Milliseconds after `origin` at which the head now being read began ([`NO_HEAD`] when
    /// none is): the accept for the first request, the first byte for the next ones.
    head_started_ms: AtomicU64,
    /// Handlers running (at most one on HTTP/1; a counter keeps it simple and safe).
    busy: AtomicUsize,
    /// Wakes the watchdog when a head starts (its deadline may be sooner than the one it sleeps to).
    head_started: Notify,
}

/// Marks a handler running until dropped.
struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        // The handler's time does not count as idle time.
        self.0.touch();
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            head_started: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn touch(&self) {
        self.last_ms.fetch_max(self.now_ms(), Ordering::AcqRel);
    }

    /// Bytes arrived: between requests, they are the start of the next head.
    fn read_some(&self) {
        self.touch();
        if self.busy.load(Ordering::Acquire) == 0
            && self
                .head_started_ms
                .compare_exchange(NO_HEAD, self.now_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.head_started.notify_one();
        }
    }

    /// A head was parsed and its handler starts.
    fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(NO_HEAD, Ordering::Release);
        Busy(self)
    }

    /// Resolves when the head being read is late, or nothing moved for `idle` while no handler ran.
    async fn expired(&self, header: Duration, idle: Duration) -> Expiry {
        loop {
            let now = Instant::now();
            let head = self.head_started_ms.load(Ordering::Acquire);
            let mut wake = now + idle;
            if head != NO_HEAD {
                let deadline = self.at(head) + header;
                if now >= deadline {
                    return Expiry::HeaderRead;
                }
                wake = wake.min(deadline);
            }
            if self.busy.load(Ordering::Acquire) == 0 {
                let deadline = self.at(self.last_ms.load(Ordering::Acquire)) + idle;
                if now >= deadline {
                    return Expiry::Idle;
                }
                wake = wake.min(deadline);
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = self.head_started.notified() => {}
            }
        }
    }
}

/// The socket, recording activity, and holding the connection's place in the count for as long
/// as the socket lives (through an upgrade, too).
struct TrackedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for TrackedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
