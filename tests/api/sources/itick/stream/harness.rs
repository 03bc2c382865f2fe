//! The harness of the stream tests: instruments from symbols, a fast configuration, the stream
//! running on channels, and polling waits.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use finql::{
    live::{Channel, LiveEvent, MarketStream, StreamCommand, Topic},
    market::Instrument,
    reference::{Symbol, service::AssetClass},
    sources::itick::{ItickStream, ItickStreamConfig},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sources::itick::fake_ws::{FakeItickWs, TOKEN};

pub fn instrument(symbol: &str) -> Instrument {
    let parsed = Symbol::parse(symbol).expect("a valid symbol");
    let (class, region, code) = match symbol.split_once(':') {
        Some(("FX", pair)) => (AssetClass::Forex, "GB".to_owned(), pair.to_owned()),
        Some(("CRYPTO", pair)) => (AssetClass::Crypto, "BA".to_owned(), pair.to_owned()),
        Some(("FUT", rest)) => {
            let (root, region) = rest.split_once('.').unwrap();
            (AssetClass::Future, region.to_owned(), root.to_owned())
        }
        _ => {
            let (code, region) = symbol.rsplit_once('.').unwrap();
            (AssetClass::Stock, region.to_owned(), code.to_owned())
        }
    };
    let market = finql::market::calendar::Region::of(class, &region).unwrap_or(finql::market::calendar::Region::Us);
    Instrument { symbol: parsed, asset_class: class, region, code, currency: "USD".into(), market, listed_at: None }
}

pub fn topic(symbol: &str, channel: Channel) -> Topic {
    Topic { instrument: instrument(symbol), channel }
}

pub fn sub(code_region: &str, kind: &str) -> (String, String) {
    (code_region.to_owned(), kind.to_owned())
}

/// Fast heartbeats, short waits, a long auth backoff.
pub fn config(fake: &FakeItickWs) -> ItickStreamConfig {
    let mut config = ItickStreamConfig::new(fake.url(), TOKEN);
    config.ping_interval = Duration::from_millis(200);
    config.silence_timeout = Duration::from_secs(2);
    config.auth_timeout = Duration::from_millis(300);
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config.auth_backoff = Duration::from_secs(30);
    config
}

/// A stream running on channels, stopped when dropped.
pub struct Running {
    pub stream: Arc<ItickStream>,
    pub commands: mpsc::UnboundedSender<StreamCommand>,
    pub events: mpsc::Receiver<LiveEvent>,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts the stream; `initial` commands are queued before it runs.
    pub fn start(config: ItickStreamConfig, initial: Vec<StreamCommand>) -> Self {
        Self::with(Arc::new(ItickStream::new(config).expect("a valid stream config")), initial)
    }

    pub fn with(stream: Arc<ItickStream>, initial: Vec<StreamCommand>) -> Self {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        for command in initial {
            commands.send(command).unwrap();
        }
        let (events_tx, events) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(stream.clone().run(commands_rx, events_tx, shutdown.clone()));
        Self { stream, commands, events, shutdown, task: Some(task) }
    }

    pub fn send(&self, command: StreamCommand) {
        self.commands.send(command).expect("the stream is running");
    }

    pub async fn next_event(&mut self) -> LiveEvent {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the stream is running")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("the stream stops").unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn params(message: &serde_json::Value) -> BTreeSet<String> {
    message["params"].as_str().unwrap().split(',').map(str::to_owned).collect()
}

/// Authenticated connections open on any endpoint.
pub fn open_anywhere(fake: &FakeItickWs) -> usize {
    crate::sources::itick::fake_ws::ENDPOINTS.iter().map(|e| fake.open_connections(e)).sum()
}
