//! The feed of a single process (no Redis): the hub's demand goes straight to the stream, which
//! runs here, and its events go straight to the hub.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Feed, LiveEvent, MarketStream, StreamCommand, Topic};

/// Runs one [`MarketStream`] and forwards `want`/`release` to it as [`StreamCommand`]s.
pub struct LocalFeed {
    commands: mpsc::UnboundedSender<StreamCommand>,
}

impl LocalFeed {
    /// Spawns `stream` (once), sending its events to `events`, until `shutdown`.
    pub fn start(stream: Arc<dyn MarketStream>, events: mpsc::Sender<LiveEvent>, shutdown: CancellationToken) -> Self {
        // Unbounded, as the trait asks: commands are few (one per topic change, batched), and
        // `want`/`release` must not wait.
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(stream.run(receiver, events, shutdown));
        Self { commands }
    }

    fn send(&self, command: StreamCommand) {
        // The stream only stops at shutdown, when demand no longer matters.
        let _ = self.commands.send(command);
    }
}

impl Feed for LocalFeed {
    fn want(&self, topics: Vec<Topic>) {
        if !topics.is_empty() {
            self.send(StreamCommand::Subscribe(topics));
        }
    }

    fn release(&self, topics: Vec<Topic>) {
        if !topics.is_empty() {
            self.send(StreamCommand::Unsubscribe(topics));
        }
    }
}
