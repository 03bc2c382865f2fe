//! The sending half of a connection: one task owns the socket's sink, and everything else
//! queues through an [`Outbox`].
//!
//! Every wait here is bounded by `FINQL_WS_SLOW_CLIENT_MS` ("slow timeout"), because a client
//! controls how fast its socket drains and may stop reading altogether:
//! - whether the client reads at all is asked directly: while messages flow (keep-alives
//!   included), the writer adds a WebSocket Ping frame to a write at most every
//!   [`PROBE_INTERVAL`] of the slow timeout, and a client that has not answered it with a Pong
//!   within the slow timeout is *stalled*. Every WebSocket client answers pings by itself
//!   (RFC 6455; browsers below the page's code), but only as it reads, so the answer is proof
//!   of reading. Waiting for the socket's buffers to fill is no test: the kernel grows a
//!   loopback or fast link's send buffer to megabytes, which a ping flood (one coalesced
//!   `pong` each) or a trickle of updates takes minutes to fill;
//! - the writer gives each write (a batch of queued messages, one flush) the slow timeout; a
//!   client that leaves its socket full that long is stalled too;
//! - a message queued by an operation or by the reader waits at most the slow timeout for room
//!   in the outbox (the outbox is full only while the writer is stuck in a write, so this is
//!   the same condition seen from the other side); running out of time is a stall too;
//! - keep-alives are never queued behind a full outbox (a client that is not reading has no
//!   use for them), and `pong`s are coalesced: a ping flood asks for one pending pong at most;
//! - on a stall the writer abandons the write and puts the 1008 "slow consumer" close frame
//!   right behind what the socket already took, gives it [`CLOSE_LINGER`] to go out (a client
//!   that reads again sees it), and drops the socket.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures::{SinkExt, stream::SplitSink};
use serde_json::json;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// Messages queued for one client before its operations wait. Enough to absorb bursts; small
/// enough that a stalled client holds little memory.
const OUTBOX: usize = 256;

/// Messages written to the socket per flush, at most.
const WRITE_BATCH: usize = 64;

/// How long a stalled client's socket is kept after its 1008 close was queued: time for a
/// client that resumes reading to drain its backlog and read why. Its operations and upstream
/// topics are released at once; only the socket's buffers wait, and not for long.
pub(super) const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// The shortest time between two reading probes, as a fraction (1/n) of the slow timeout: a
/// client that stops reading is found at most 1 + 1/n slow timeouts later, for one 10-byte
/// frame per 1/n slow timeout while messages flow (every 2.5 s by default).
const PROBE_INTERVAL: u32 = 4;

/// Close code for a client that does not read its messages (RFC 6455: policy violation).
pub(super) const SLOW_CONSUMER: u16 = 1008;

/// Where a connection's messages go. Cheap to clone (each operation holds one).
#[derive(Clone)]
pub(super) struct Outbox {
    queue: mpsc::Sender<Message>,
    /// A `pong` is owed (set by the reader, taken by the writer; repeated requests coalesce).
    pong: Arc<Notify>,
    /// Cancelled once the client is found stalled: everything stops, the writer says why.
    stalled: CancellationToken,
    slow_timeout: Duration,
    /// The highest reading probe the client answered.
    answered: Arc<AtomicU64>,
}

/// The connection is stalled or gone: the message was not queued.
#[derive(Debug)]
pub(super) struct Gone;

impl Outbox {
    /// Queues a message, waiting at most the slow timeout for room.
    pub(super) async fn send(&self, message: Message) -> Result<(), Gone> {
        if self.stalled.is_cancelled() {
            return Err(Gone);
        }
        match self.queue.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Gone),
            // Boxed, as waiting is the exception: its timer need not take room in the future
            // of every operation (which lives as long as a subscription does).
            Err(mpsc::error::TrySendError::Full(message)) => Box::pin(self.wait_to_send(message)).await,
        }
    }

    /// Queues a message once there is room, waiting at most the slow timeout.
    async fn wait_to_send(&self, message: Message) -> Result<(), Gone> {
        tokio::select! {
            biased;
            () = self.stalled.cancelled() => Err(Gone),
            sent = self.queue.send_timeout(message, self.slow_timeout) => match sent {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    self.stalled.cancel();
                    Err(Gone)
                }
                Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Gone),
            },
        }
    }

    pub(super) async fn send_json(&self, message: serde_json::Value) -> Result<(), Gone> {
        self.send(Message::Text(message.to_string().into())).await
    }

    /// Queues a message only if there is room now (keep-alives).
    pub(super) fn offer(&self, message: serde_json::Value) {
        let _ = self.queue.try_send(Message::Text(message.to_string().into()));
    }

    /// Asks for a `pong` (graphql-transport-ws). Any number of asks before it is written make one.
    pub(super) fn pong(&self) {
        self.pong.notify_one();
    }

    /// A Pong frame arrived: the client read everything written before the probe it answers.
    pub(super) fn pong_frame(&self, payload: &[u8]) {
        if let Ok(bytes) = <[u8; 8]>::try_from(payload) {
            self.answered.fetch_max(u64::from_be_bytes(bytes), Ordering::Relaxed);
        }
    }

    /// Cancelled when the client is found stalled.
    pub(super) fn stalled(&self) -> &CancellationToken {
        &self.stalled
    }
}

/// Starts the writer for `sink`; it ends after writing a close frame, when every [`Outbox`] is
/// dropped, or on a stall.
pub(super) fn spawn(sink: SplitSink<WebSocket, Message>, slow_timeout: Duration) -> (Outbox, JoinHandle<()>) {
    let (queue, outgoing) = mpsc::channel(OUTBOX);
    let outbox = Outbox {
        queue,
        pong: Arc::new(Notify::new()),
        stalled: CancellationToken::new(),
        slow_timeout,
        answered: Arc::new(AtomicU64::new(0)),
    };
    let writer = Writer {
        sink,
        outgoing,
        pong: outbox.pong.clone(),
        stalled: outbox.stalled.clone(),
        slow_timeout,
        answered: outbox.answered.clone(),
        probe: 0,
        probed_at: None,
    };
    (outbox, tokio::spawn(writer.run()))
}

struct Writer {
    sink: SplitSink<WebSocket, Message>,
    outgoing: mpsc::Receiver<Message>,
    pong: Arc<Notify>,
    stalled: CancellationToken,
    slow_timeout: Duration,
    answered: Arc<AtomicU64>,
    /// The last reading probe sent, and when.
    probe: u64,
    probed_at: Option<Instant>,
}

impl Writer {
    /// When the client's answer to the last probe is due (`None`: answered, or none sent).
    fn probe_due(&self) -> Option<Instant> {
        let sent = self.probed_at?;
        (self.answered.load(Ordering::Relaxed) < self.probe).then(|| sent + self.slow_timeout)
    }

    /// A new probe for this write, if the last was answered and is old enough.
    fn next_probe(&mut self) -> Option<Message> {
        if self.probe_due().is_some()
            || self.probed_at.is_some_and(|sent| sent.elapsed() < self.slow_timeout / PROBE_INTERVAL)
        {
            return None;
        }
        self.probe += 1;
        self.probed_at = Some(Instant::now());
        Some(Message::Ping(Bytes::copy_from_slice(&self.probe.to_be_bytes())))
    }

    async fn run(mut self) {
        loop {
            let due = self.probe_due();
            let first = tokio::select! {
                biased;
                () = self.stalled.cancelled() => break,
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                    if self.probe_due().is_some_and(|due| due <= Instant::now()) {
                        self.stalled.cancel();
                        break;
                    }
                    continue;
                }
                message = self.outgoing.recv() => match message {
                    Some(message) => message,
                    None => return self.finish().await,
                },
                () = self.pong.notified() => Message::Text(json!({ "type": "pong" }).to_string().into()),
            };
            // What else is already queued goes out in the same write: a burst of updates
            // costs one flush, not one syscall each.
            let mut batch = Vec::with_capacity(8);
            let mut closing = matches!(first, Message::Close(_));
            batch.push(first);
            while !closing && batch.len() < WRITE_BATCH {
                let Ok(message) = self.outgoing.try_recv() else { break };
                closing = matches!(message, Message::Close(_));
                batch.push(message);
            }
            if !closing && let Some(probe) = self.next_probe() {
                batch.push(probe);
            }
            let sink = &mut self.sink;
            let write = async move {
                for message in batch {
                    sink.feed(message).await?;
                }
                sink.flush().await
            };
            let written = tokio::select! {
                biased;
                () = self.stalled.cancelled() => break,
                written = tokio::time::timeout(self.slow_timeout, write) => written,
            };
            match written {
                Ok(Ok(())) if closing => return self.finish().await,
                Ok(Ok(())) => {}
                // The socket is gone: nothing more can be said on it.
                Ok(Err(_)) => return,
                Err(_) => {
                    self.stalled.cancel();
                    break;
                }
            }
        }
        // Stalled: the reason goes right behind what the socket already took.
        let reason = format!("slow consumer: messages unread for {} ms", self.slow_timeout.as_millis());
        let frame = CloseFrame { code: SLOW_CONSUMER, reason: Utf8Bytes::from(reason) };
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        })
        .await;
    }

    /// The close handshake, bounded like every other write.
    async fn finish(mut self) {
        let _ = tokio::time::timeout(self.slow_timeout, self.sink.close()).await;
    }
}
