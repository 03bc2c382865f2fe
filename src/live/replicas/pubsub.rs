//! The reader of a replica's pub/sub connection.

use std::sync::Arc;

use futures::StreamExt;
use redis::aio::PubSubStream;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::wire;
use crate::live::LiveEvent;

/// Reads the pub/sub connection until it closes: demand notifications wake the loop, events go
/// to the hub.
pub(super) async fn read(
    mut messages: PubSubStream,
    demand_channel: String,
    demand_changed: Arc<Notify>,
    events: mpsc::Sender<LiveEvent>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = messages.next() => message,
        };
        let Some(message) = message else { return };
        if message.get_channel_name() == demand_channel {
            demand_changed.notify_one();
            continue;
        }
        match wire::decode_event(message.get_payload_bytes()) {
            // A closed hub means the process is shutting down: nothing to do.
            Some(event) => {
                let _ = events.send(event).await;
            }
            None => tracing::warn!(channel = message.get_channel_name(), "dropping a live event that does not decode"),
        }
    }
}
