//! One upstream connection: connect, authenticate, subscribe, heartbeat, read pushes, and on
//! any failure reconnect with backoff and subscribe again to everything it carries.
//!
//! A connection task owns the socket and its list of wanted `(symbol, channel)` pairs. The
//! stream sends it subscribe/unsubscribe commands; they change the list at once, and reach iTick
//! as soon as the connection is live (right away when it is, all together after the next
//! authentication otherwise). Commands that arrive together are merged into one diff, so a burst
//! of single-topic commands becomes one `subscribe` message per set of types.
//!
//! Liveness: a ping every `ping_interval` (iTick drops clients silent for a minute); any frame
//! at all resets the silence clock, and `silence_timeout` without one means the connection is
//! dead even if TCP has not noticed: reconnect.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tokio::{
    sync::mpsc,
    time::{Instant, MissedTickBehavior, sleep, sleep_until, timeout},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};
use tokio_util::sync::CancellationToken;

use super::{
    ItickStreamConfig,
    protocol::{self, Inbound},
    stats::{ConnectionState, Counters},
};
use crate::{
    live::{Channel, LiveEvent, Topic},
    market::Instrument,
    sources::{itick::symbols, retry},
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A change to what one connection carries.
#[derive(Debug)]
pub enum ConnCommand {
    Subscribe(Vec<Topic>),
    Unsubscribe(Vec<Topic>),
}

/// Everything a connection task needs besides its commands.
pub struct Connection {
    pub slot: u64,
    pub endpoint: &'static str,
    pub config: Arc<ItickStreamConfig>,
    pub counters: Arc<Counters>,
    pub events: mpsc::Sender<LiveEvent>,
    pub cancel: CancellationToken,
}

/// Why a session ended.
enum Outcome {
    /// Cancelled, commands closed, or the hub gone: stop for good.
    Stop,
    /// iTick said no to the token.
    AuthRejected(String),
    /// Anything else: try again after a backoff.
    Lost(String),
}

/// The symbols a connection carries.
#[derive(Default)]
struct Wanted {
    /// `CODE$REGION` -> the instrument and its wanted channels.
    symbols: BTreeMap<String, (Instrument, HashSet<Channel>)>,
}

impl Wanted {
    fn apply(&mut self, command: ConnCommand) {
        match command {
            ConnCommand::Subscribe(topics) => {
                for topic in topics {
                    let key = symbols::upstream_symbol(&topic.instrument);
                    self.symbols
                        .entry(key)
                        .or_insert_with(|| (topic.instrument, HashSet::new()))
                        .1
                        .insert(topic.channel);
                }
            }
            ConnCommand::Unsubscribe(topics) => {
                for topic in topics {
                    let key = symbols::upstream_symbol(&topic.instrument);
                    if let Some((_, channels)) = self.symbols.get_mut(&key) {
                        channels.remove(&topic.channel);
                        if channels.is_empty() {
                            self.symbols.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// `CODE$REGION` -> sorted `types`.
    fn types(&self) -> BTreeMap<String, Vec<String>> {
        self.symbols
            .iter()
            .map(|(key, (_, channels))| {
                let mut types: Vec<String> = channels.iter().map(|c| protocol::channel_type(*c)).collect();
                types.sort();
                (key.clone(), types)
            })
            .collect()
    }

    /// The instrument a push names, if wanted. Codes compare normalised (`00700` is `700`); a
    /// push without a region matches when its code is unambiguous on this connection.
    fn find(&self, key: &(String, String)) -> Option<(&Instrument, &HashSet<Channel>)> {
        let mut found = None;
        for (instrument, channels) in self.symbols.values() {
            let (code, region) = symbols::push_key(&instrument.code, &instrument.region);
            if code != key.0 {
                continue;
            }
            if region == key.1 {
                return Some((instrument, channels));
            }
            if key.1.is_empty() {
                if found.is_some() {
                    return None;
                }
                found = Some((instrument, channels));
            }
        }
        found
    }
}

/// `(subscribe, unsubscribe)` messages taking iTick from `before` to `after`.
fn diff(before: &BTreeMap<String, Vec<String>>, after: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut added: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut removed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (symbol, types) in after {
        let old = before.get(symbol);
        let new: Vec<String> = types.iter().filter(|t| old.is_none_or(|o| !o.contains(t))).cloned().collect();
        if !new.is_empty() {
            added.insert(symbol.clone(), new);
        }
    }
    for (symbol, types) in before {
        let now = after.get(symbol);
        let gone: Vec<String> = types.iter().filter(|t| now.is_none_or(|n| !n.contains(t))).cloned().collect();
        if !gone.is_empty() {
            removed.insert(symbol.clone(), gone);
        }
    }
    let mut messages = protocol::subscription_messages("unsubscribe", &removed);
    messages.extend(protocol::subscription_messages("subscribe", &added));
    messages
}

impl Connection {
    /// Runs until cancelled or until its command channel closes.
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<ConnCommand>) {
        let mut wanted = Wanted::default();
        let mut backoff = self.backoff();
        let mut first = true;
        loop {
            // Commands that came while waiting: apply before connecting.
            loop {
                match commands.try_recv() {
                    Ok(command) => wanted.apply(command),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return self.finish(),
                }
            }
            if !first {
                Counters::bump(&self.counters.reconnects);
            }
            first = false;
            Counters::bump(&self.counters.connects);
            self.report(ConnectionState::Connecting, &wanted);
            let started = Instant::now();
            let outcome = self.session(&mut wanted, &mut commands).await;
            let (delay, state) = match outcome {
                Outcome::Stop => return self.finish(),
                Outcome::AuthRejected(msg) => {
                    Counters::bump(&self.counters.auth_failures);
                    let error = format!("iTick rejected the token (check ITICK_TOKEN): {msg}");
                    tracing::error!(
                        stream = "itick",
                        endpoint = self.endpoint,
                        retry_in_s = self.config.auth_backoff.as_secs(),
                        "{error}"
                    );
                    self.counters.set_error(error);
                    (self.config.auth_backoff, ConnectionState::AuthRejected)
                }
                Outcome::Lost(why) => {
                    // A connection that held for a while starts the backoff over.
                    if started.elapsed() >= self.config.backoff_max {
                        backoff = self.backoff();
                    }
                    let delay = backoff.next().unwrap_or(self.config.backoff_max);
                    tracing::warn!(
                        stream = "itick",
                        endpoint = self.endpoint,
                        retry_in_ms = delay.as_millis() as u64,
                        why = %why,
                        "iTick connection lost"
                    );
                    self.counters.set_error(format!("{}: {why}", self.endpoint));
                    (delay, ConnectionState::Waiting)
                }
            };
            self.report(state, &wanted);
            tokio::select! {
                _ = self.cancel.cancelled() => return self.finish(),
                _ = self.events.closed() => return self.finish(),
                _ = sleep(delay) => {}
            }
        }
    }

    /// Reconnect waits: the providers' one policy, endless (`sources::retry`).
    fn backoff(&self) -> backon::ExponentialBackoff {
        retry::backoff(self.config.backoff_min, self.config.backoff_max, None)
    }

    fn finish(&self) {
        self.counters.remove_connection(self.slot);
    }

    fn report(&self, state: ConnectionState, wanted: &Wanted) {
        self.counters.set_connection(self.slot, self.endpoint, state, wanted.symbols.len());
    }

    fn url(&self) -> String {
        format!("{}/{}", self.config.ws_url, self.endpoint)
    }

    async fn session(&self, wanted: &mut Wanted, commands: &mut mpsc::UnboundedReceiver<ConnCommand>) -> Outcome {
        let connecting = async {
            let mut request = self.url().into_client_request().map_err(|e| format!("bad URL: {e}"))?;
            let token = HeaderValue::from_str(self.config.token.expose()).map_err(|_| "token not a header value")?;
            request.headers_mut().insert("token", token);
            let connect = tokio_tungstenite::connect_async(request);
            match timeout(self.config.auth_timeout, connect).await {
                Err(_) => Err("connection timed out".to_owned()),
                Ok(Err(e)) => Err(format!("cannot connect: {e}")),
                Ok(Ok((socket, _))) => Ok(socket),
            }
        };
        let mut socket = tokio::select! {
            _ = self.cancel.cancelled() => return Outcome::Stop,
            connected = connecting => match connected {
                Ok(socket) => socket,
                Err(why) => return Outcome::Lost(why),
            },
        };
        let outcome = self.live(&mut socket, wanted, commands).await;
        if matches!(outcome, Outcome::Stop) {
            // Polite goodbye; bounded, as the peer may be gone.
            let _ = timeout(Duration::from_millis(500), socket.close(None)).await;
        }
        outcome
    }

    async fn send(&self, socket: &mut Socket, text: String) -> Result<(), Outcome> {
        socket.send(Message::text(text)).await.map_err(|e| Outcome::Lost(format!("send failed: {e}")))
    }

    /// Waits for iTick's auth confirmation (header auth); falls back to the auth message when
    /// none comes within `auth_timeout`, and remembers that for the next connections.
    async fn authenticate(&self, socket: &mut Socket) -> Result<(), Outcome> {
        let legacy = self.counters.legacy_auth.load(Ordering::Relaxed);
        let mut sent_legacy = false;
        if legacy {
            self.send(socket, protocol::legacy_auth(self.config.token.expose())).await?;
            sent_legacy = true;
        }
        let mut deadline = Instant::now() + self.config.auth_timeout;
        loop {
            let frame = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Outcome::Stop),
                _ = sleep_until(deadline) => {
                    if sent_legacy {
                        return Err(Outcome::Lost("no auth confirmation from iTick".into()));
                    }
                    tracing::info!(stream = "itick", endpoint = self.endpoint, "no auth confirmation after the token header: sending the auth message");
                    self.send(socket, protocol::legacy_auth(self.config.token.expose())).await?;
                    sent_legacy = true;
                    deadline = Instant::now() + self.config.auth_timeout;
                    continue;
                }
                frame = socket.next() => frame,
            };
            let text = match frame {
                None => return Err(Outcome::Lost("closed during authentication".into())),
                Some(Err(e)) => return Err(Outcome::Lost(format!("read failed during authentication: {e}"))),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Err(Outcome::Lost(format!("closed during authentication: {frame:?}")));
                }
                Some(Ok(_)) => continue,
            };
            match protocol::classify(text.as_str()) {
                Inbound::Auth { ok: true, .. } => {
                    if sent_legacy && !legacy {
                        self.counters.legacy_auth.store(true, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Inbound::Auth { ok: false, msg } => return Err(Outcome::AuthRejected(msg)),
                Inbound::Connected => tracing::debug!(stream = "itick", endpoint = self.endpoint, "connected"),
                other => tracing::debug!(stream = "itick", endpoint = self.endpoint, ?other, "ignored before auth"),
            }
        }
    }

    async fn live(
        &self,
        socket: &mut Socket,
        wanted: &mut Wanted,
        commands: &mut mpsc::UnboundedReceiver<ConnCommand>,
    ) -> Outcome {
        if let Err(outcome) = self.authenticate(socket).await {
            return outcome;
        }
        self.report(ConnectionState::Live, wanted);
        tracing::info!(stream = "itick", endpoint = self.endpoint, symbols = wanted.symbols.len(), "iTick stream live");
        for message in protocol::subscription_messages("subscribe", &wanted.types()) {
            if let Err(outcome) = self.send(socket, message).await {
                return outcome;
            }
        }
        let mut ping = tokio::time::interval_at(Instant::now() + self.config.ping_interval, self.config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return Outcome::Stop,
                command = commands.recv() => {
                    let Some(command) = command else { return Outcome::Stop };
                    let before = wanted.types();
                    wanted.apply(command);
                    while let Ok(command) = commands.try_recv() {
                        wanted.apply(command);
                    }
                    self.report(ConnectionState::Live, wanted);
                    for message in diff(&before, &wanted.types()) {
                        if let Err(outcome) = self.send(socket, message).await {
                            return outcome;
                        }
                    }
                }
                _ = ping.tick() => {
                    if let Err(outcome) = self.send(socket, protocol::ping(Utc::now())).await {
                        return outcome;
                    }
                    Counters::bump(&self.counters.pings);
                }
                _ = sleep_until(last_seen + self.config.silence_timeout) => {
                    return Outcome::Lost(format!(
                        "nothing received for {} ms",
                        self.config.silence_timeout.as_millis()
                    ));
                }
                frame = socket.next() => {
                    last_seen = Instant::now();
                    let text = match frame {
                        None => return Outcome::Lost("closed by iTick".into()),
                        Some(Err(e)) => return Outcome::Lost(format!("read failed: {e}")),
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => return Outcome::Lost(format!("closed by iTick: {frame:?}")),
                        Some(Ok(_)) => continue,
                    };
                    if let Some(event) = self.handle(text.as_str(), wanted) {
                        self.counters.saw_upstream_time(event.upstream_time());
                        tokio::select! {
                            _ = self.cancel.cancelled() => return Outcome::Stop,
                            sent = self.events.send(event) => {
                                if sent.is_err() {
                                    return Outcome::Stop;
                                }
                                Counters::bump(&self.counters.events);
                            }
                        }
                    }
                }
            }
        }
    }

    /// One text frame; returns the event a valid push becomes.
    fn handle(&self, text: &str, wanted: &Wanted) -> Option<LiveEvent> {
        match protocol::classify(text) {
            Inbound::Push(data) => return self.push(&data, wanted),
            Inbound::Pong => Counters::bump(&self.counters.pongs),
            Inbound::Reply { ok: true, .. } | Inbound::Connected | Inbound::Auth { ok: true, .. } => {}
            Inbound::Reply { action, ok: false, msg } => {
                Counters::bump(&self.counters.subscribe_errors);
                tracing::warn!(stream = "itick", endpoint = self.endpoint, %action, reason = %msg, "iTick refused a request");
            }
            Inbound::Auth { ok: false, msg } => {
                tracing::warn!(stream = "itick", endpoint = self.endpoint, reason = %msg, "auth failure on a live connection");
            }
            Inbound::Other(what) => {
                tracing::debug!(stream = "itick", endpoint = self.endpoint, %what, "ignored a frame")
            }
        }
        None
    }

    fn push(&self, data: &serde_json::Value, wanted: &Wanted) -> Option<LiveEvent> {
        let ignore = |why: &str| {
            Counters::bump(&self.counters.ignored);
            tracing::debug!(stream = "itick", endpoint = self.endpoint, why, "ignored a push");
        };
        let Some((kind, key)) = protocol::push_target(data) else {
            ignore("no type or symbol");
            return None;
        };
        let Some(channel) = protocol::parse_channel_type(&kind) else {
            ignore("unknown type");
            return None;
        };
        let Some((instrument, channels)) = wanted.find(&key) else {
            ignore("symbol not subscribed");
            return None;
        };
        if !channels.contains(&channel) {
            ignore("channel not subscribed");
            return None;
        }
        match protocol::parse_push(data, instrument, channel, Utc::now()) {
            Ok(event) => Some(event),
            Err(why) => {
                let rejected = self.counters.rejected.fetch_add(1, Ordering::Relaxed) + 1;
                // A broken feed can send thousands of bad pushes a second: warn about the first
                // few, then only at powers of two (the counter has the full story).
                if rejected <= 10 || rejected.is_power_of_two() {
                    tracing::warn!(stream = "itick", symbol = %instrument.symbol.as_str(), %kind, %why, rejected, "rejected a push from iTick");
                } else {
                    tracing::debug!(stream = "itick", symbol = %instrument.symbol.as_str(), %kind, %why, rejected, "rejected a push from iTick");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_become_messages() {
        let before: BTreeMap<String, Vec<String>> =
            [("AAPL$US".into(), vec!["quote".into(), "tick".into()]), ("MSFT$US".into(), vec!["quote".into()])].into();
        let after: BTreeMap<String, Vec<String>> =
            [("AAPL$US".into(), vec!["quote".into()]), ("NVDA$US".into(), vec!["quote".into()])].into();
        let messages: Vec<serde_json::Value> =
            diff(&before, &after).iter().map(|m| serde_json::from_str(m).unwrap()).collect();
        assert_eq!(
            messages,
            [
                serde_json::json!({"ac": "unsubscribe", "params": "MSFT$US", "types": "quote"}),
                serde_json::json!({"ac": "unsubscribe", "params": "AAPL$US", "types": "tick"}),
                serde_json::json!({"ac": "subscribe", "params": "NVDA$US", "types": "quote"}),
            ]
        );
        assert!(diff(&after, &after).is_empty());
    }
}
