//! The iTick WebSocket stream (`wss://api.itick.org/{stock|forex|indices|crypto}`; protocol notes
//! in `shared/itick.md`): live quotes, trades, order books and forming bars.
//!
//! iTick plans allow very few sockets (1 to 12) and at most 500 symbols on each, so the stream
//! packs topics onto as few connections as possible (`plan`): one per endpoint, another only
//! when one would exceed 500 symbols, and connections are merged or closed when unsubscribes
//! leave more than needed. Each connection (`connection`) authenticates with the `token`
//! header (falling back to the older auth message when the server does not confirm), subscribes
//! in batches, pings every `ITICK_WS_PING_SECS`, treats `ITICK_WS_SILENCE_SECS` without any
//! frame as a dead connection, and reconnects with the providers' backoff (`sources::retry`),
//! subscribing again to everything it carries. A rejected token is logged at error and retried
//! only after `ITICK_WS_AUTH_BACKOFF_SECS`: retrying sooner cannot fix a key, and hammering
//! would count against the plan.
//!
//! Pushes are parsed as the REST adapter parses them (`parse`) and held to `market::validate`
//! (`protocol`): rejected ones are logged and
//! counted, never delivered. `ItickStream::stats` shows connections and counters.
//!
//! Configuration (see `config::ItickSettings`): `ITICK_TOKEN`, `ITICK_WS_URL`,
//! `ITICK_WS_PING_SECS` (30), `ITICK_WS_SILENCE_SECS` (2 x ping), `ITICK_WS_BACKOFF_MIN_MS`
//! (500), `ITICK_WS_BACKOFF_MAX_SECS` (60), `ITICK_WS_AUTH_BACKOFF_SECS` (300); the connect and
//! auth wait is `ITICK_TIMEOUT_MS` (5000).

/// One connection: auth, subscriptions, heartbeat, pushes, reconnects.
mod connection;
/// Which connection carries which symbol (pure).
pub mod plan;
/// The wire format and push validation (pure).
pub mod protocol;
/// Connection states and counters.
pub mod stats;

use std::{collections::HashMap, sync::Arc, sync::atomic::Ordering, time::Duration};

use futures::future::BoxFuture;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use stats::{ConnectionState, ConnectionStatus, ItickStreamStats};

use self::{
    connection::{ConnCommand, Connection},
    plan::{Action, Planner},
    stats::Counters,
};
use super::symbols;
use crate::{
    config::{ItickSettings, Secret},
    live::{LiveEvent, MarketStream, StreamCommand},
};

/// How the stream connects and keeps connections healthy.
#[derive(Clone, Debug)]
pub struct ItickStreamConfig {
    /// `wss://api.itick.org` (no trailing slash; the endpoint is appended), or a local fake.
    pub ws_url: String,
    pub token: Secret<String>,
    /// Heartbeat interval (iTick: at least every 30 s).
    pub ping_interval: Duration,
    /// No frame at all for this long: the connection is dead.
    pub silence_timeout: Duration,
    /// Bound on connecting, and the wait for an auth confirmation before the fallback.
    pub auth_timeout: Duration,
    /// Reconnect backoff bounds.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Wait after a rejected token.
    pub auth_backoff: Duration,
    /// Symbols per connection (iTick: 500).
    pub max_symbols_per_connection: usize,
}

impl ItickStreamConfig {
    /// Production defaults for `ws_url` and `token`.
    pub fn new(ws_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            ws_url: ws_url.into(),
            token: Secret::new(token.into()),
            ping_interval: Duration::from_secs(30),
            silence_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            auth_backoff: Duration::from_secs(300),
            max_symbols_per_connection: protocol::MAX_SYMBOLS_PER_CONNECTION,
        }
    }
}

/// The iTick live stream; see the module docs.
pub struct ItickStream {
    config: Arc<ItickStreamConfig>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for ItickStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItickStream").field("ws_url", &self.config.ws_url).finish_non_exhaustive()
    }
}

impl ItickStream {
    pub fn new(mut config: ItickStreamConfig) -> anyhow::Result<Self> {
        config.ws_url = config.ws_url.trim().trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&config.ws_url)
            .map_err(|e| anyhow::anyhow!("invalid iTick WebSocket URL `{}`: {e}", config.ws_url))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "ws" | "wss"),
            "invalid iTick WebSocket URL `{}`: expected ws:// or wss://",
            config.ws_url
        );
        anyhow::ensure!(!config.token.expose().trim().is_empty(), "the iTick token is empty");
        tokio_tungstenite::tungstenite::http::HeaderValue::from_str(config.token.expose())
            .map_err(|_| anyhow::anyhow!("the iTick token contains characters not allowed in an HTTP header"))?;
        for (name, value) in [
            ("ping interval", config.ping_interval),
            ("silence timeout", config.silence_timeout),
            ("auth timeout", config.auth_timeout),
            ("minimum backoff", config.backoff_min),
        ] {
            anyhow::ensure!(!value.is_zero(), "the iTick stream's {name} must be positive");
        }
        anyhow::ensure!(
            config.silence_timeout > config.ping_interval,
            "the iTick stream's silence timeout must exceed the ping interval (pongs prove liveness)"
        );
        config.max_symbols_per_connection =
            config.max_symbols_per_connection.clamp(1, protocol::MAX_SYMBOLS_PER_CONNECTION);
        // wss:// goes through rustls, which needs the process-wide provider (ring).
        crate::sources::http::install_crypto_provider();
        Ok(Self { config: Arc::new(config), counters: Arc::default() })
    }

    /// From the environment's settings; fails without `ITICK_TOKEN`.
    pub fn from_settings(settings: &ItickSettings) -> anyhow::Result<Self> {
        let token = settings
            .token
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the iTick live stream needs ITICK_TOKEN (the iTick API key)"))?;
        Self::new(ItickStreamConfig {
            ws_url: settings.ws_url.clone(),
            token,
            ping_interval: settings.ws_ping_interval,
            silence_timeout: settings.ws_silence_timeout,
            auth_timeout: settings.timeout,
            backoff_min: settings.ws_backoff_min,
            backoff_max: settings.ws_backoff_max,
            auth_backoff: settings.ws_auth_backoff,
            max_symbols_per_connection: protocol::MAX_SYMBOLS_PER_CONNECTION,
        })
    }

    /// Whether iTick streams this instrument at all (futures: no). Topics it does not are
    /// counted and logged, never subscribed; a caller can refuse them up front instead.
    pub fn supports(instrument: &crate::market::Instrument) -> bool {
        symbols::endpoint(instrument.asset_class).is_some()
    }

    pub fn config(&self) -> &ItickStreamConfig {
        &self.config
    }

    /// Connections and counters, now.
    pub fn stats(&self) -> ItickStreamStats {
        self.counters.snapshot()
    }

    async fn supervise(
        self: Arc<Self>,
        mut commands: mpsc::UnboundedReceiver<StreamCommand>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
    ) {
        let mut planner = Planner::new(self.config.max_symbols_per_connection);
        let mut slots: HashMap<u64, Slot> = HashMap::new();
        let mut commands_open = true;
        loop {
            let command = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = events.closed() => break,
                command = commands.recv(), if commands_open => command,
            };
            let Some(command) = command else {
                // Nobody will change the subscriptions any more: keep serving them.
                commands_open = false;
                continue;
            };
            let mut actions = Vec::new();
            self.plan(&mut planner, command, &mut actions);
            while let Ok(command) = commands.try_recv() {
                self.plan(&mut planner, command, &mut actions);
            }
            for action in actions {
                self.carry_out(action, &mut slots, &events, &shutdown);
            }
            self.counters.subscribed_topics.store(planner.len(), Ordering::Relaxed);
        }
        for slot in slots.values() {
            slot.cancel.cancel();
        }
        for (_, slot) in slots.drain() {
            let _ = slot.task.await;
        }
    }

    fn plan(&self, planner: &mut Planner, command: StreamCommand, actions: &mut Vec<Action>) {
        match command {
            StreamCommand::Subscribe(topics) => {
                let refused = planner.subscribe(topics, actions);
                if !refused.is_empty() {
                    self.counters.unsupported.fetch_add(refused.len() as u64, Ordering::Relaxed);
                    let symbols: Vec<&str> = refused.iter().map(|t| t.instrument.symbol.as_str()).collect();
                    tracing::warn!(
                        stream = "itick",
                        ?symbols,
                        "iTick has no live stream for these (futures): not subscribed"
                    );
                }
            }
            StreamCommand::Unsubscribe(topics) => planner.unsubscribe(topics, actions),
        }
    }

    fn carry_out(
        &self,
        action: Action,
        slots: &mut HashMap<u64, Slot>,
        events: &mpsc::Sender<LiveEvent>,
        shutdown: &CancellationToken,
    ) {
        match action {
            Action::Open { slot, endpoint } => {
                let (tx, rx) = mpsc::unbounded_channel();
                let cancel = shutdown.child_token();
                let connection = Connection {
                    slot,
                    endpoint,
                    config: self.config.clone(),
                    counters: self.counters.clone(),
                    events: events.clone(),
                    cancel: cancel.clone(),
                };
                let task = tokio::spawn(connection.run(rx));
                slots.insert(slot, Slot { commands: tx, cancel, task });
            }
            Action::Subscribe { slot, topics } => {
                if let Some(s) = slots.get(&slot) {
                    let _ = s.commands.send(ConnCommand::Subscribe(topics));
                }
            }
            Action::Unsubscribe { slot, topics } => {
                if let Some(s) = slots.get(&slot) {
                    let _ = s.commands.send(ConnCommand::Unsubscribe(topics));
                }
            }
            Action::Close { slot } => {
                if let Some(s) = slots.remove(&slot) {
                    s.cancel.cancel();
                }
            }
        }
    }
}

/// A running connection task, as the supervisor holds it.
struct Slot {
    commands: mpsc::UnboundedSender<ConnCommand>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl MarketStream for ItickStream {
    fn name(&self) -> &'static str {
        "itick"
    }

    fn run(
        self: Arc<Self>,
        commands: mpsc::UnboundedReceiver<StreamCommand>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(self.supervise(commands, events, shutdown))
    }
}
