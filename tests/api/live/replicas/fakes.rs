//! The stand-ins of the live replica tests: an upstream that records what it is told, and a
//! Redis that can go away.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use finql::live::{LiveEvent, MarketStream, StreamCommand, Topic};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Upstream streams running at once, across every fake of one test, and the most ever seen.
#[derive(Default)]
pub struct Running {
    pub now: AtomicUsize,
    pub max: AtomicUsize,
}

/// A stand-in for the upstream (iTick): records subscriptions, pushes what the test emits.
pub struct FakeUpstream {
    running: Arc<Running>,
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    starts: usize,
    subscribed: HashSet<String>,
    events: Option<mpsc::Sender<LiveEvent>>,
}

pub fn label(topic: &Topic) -> String {
    format!("{}/{:?}", topic.instrument.symbol, topic.channel)
}

impl FakeUpstream {
    pub fn new(running: &Arc<Running>) -> Arc<Self> {
        Arc::new(Self { running: running.clone(), state: Mutex::default() })
    }

    pub fn is_running(&self) -> bool {
        self.state.lock().unwrap().events.is_some()
    }

    pub fn starts(&self) -> usize {
        self.state.lock().unwrap().starts
    }

    pub fn subscribed(&self) -> HashSet<String> {
        self.state.lock().unwrap().subscribed.clone()
    }

    /// Pushes an event as the upstream would; false if the stream is not running.
    pub async fn emit(&self, event: LiveEvent) -> bool {
        let sender = self.state.lock().unwrap().events.clone();
        match sender {
            Some(sender) => sender.send(event).await.is_ok(),
            None => false,
        }
    }
}

impl MarketStream for FakeUpstream {
    fn name(&self) -> &'static str {
        "itick"
    }

    fn run(
        self: Arc<Self>,
        mut commands: mpsc::UnboundedReceiver<StreamCommand>,
        events: mpsc::Sender<LiveEvent>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let now = self.running.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.running.max.fetch_max(now, Ordering::SeqCst);
            {
                let mut state = self.state.lock().unwrap();
                state.starts += 1;
                state.events = Some(events);
            }
            loop {
                let command = tokio::select! {
                    () = shutdown.cancelled() => break,
                    command = commands.recv() => command,
                };
                let mut state = self.state.lock().unwrap();
                match command {
                    Some(StreamCommand::Subscribe(topics)) => state.subscribed.extend(topics.iter().map(label)),
                    Some(StreamCommand::Unsubscribe(topics)) => {
                        for topic in &topics {
                            state.subscribed.remove(&label(topic));
                        }
                    }
                    None => break,
                }
            }
            {
                let mut state = self.state.lock().unwrap();
                state.events = None;
                state.subscribed.clear();
            }
            self.running.now.fetch_sub(1, Ordering::SeqCst);
        })
    }
}

/// A TCP proxy in front of Redis that the test can cut (every connection dropped, new ones
/// refused) and restore: Redis going away, as seen by one replica.
pub struct RedisProxy {
    pub url: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<CancellationToken>>,
}

impl RedisProxy {
    pub async fn start(redis: &str) -> Self {
        let mut url = url::Url::parse(redis).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(listener.local_addr().unwrap().port())).unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(CancellationToken::new()));
        let (accepting, tokens) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused, in effect
                }
                let cut = tokens.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Self { url: url.to_string(), up, connections }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().unwrap().cancel();
    }

    pub fn restore(&self) {
        *self.connections.lock().unwrap() = CancellationToken::new();
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A `redis-server` of the test's own (no persistence), on a port that stays the same when the
/// test kills it and starts a new, empty one: Redis restarting and losing everything, as a
/// deployment without persistence sees it. The shared test Redis must never be restarted.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one; None (saying so) when `redis-server` is not on PATH.
    pub async fn start() -> Option<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut redis = Self { port, child: None, dir: tempfile::tempdir().unwrap() };
        match redis.spawn() {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: redis-server is not on PATH");
                return None;
            }
            Err(err) => panic!("redis-server does not start: {err}"),
        }
        redis.wait_until_it_answers().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills it outright (SIGKILL): every connection drops, everything in it is lost.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }

    /// Starts a new, empty one on the same port and returns once it answers PING.
    pub async fn start_again(&mut self) -> tokio::time::Instant {
        self.spawn().expect("redis-server starts again");
        self.wait_until_it_answers().await
    }

    /// Polls PING (up to 10 s); returns when it first answered.
    async fn wait_until_it_answers(&self) -> tokio::time::Instant {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return tokio::time::Instant::now();
            }
            assert!(tokio::time::Instant::now() < deadline, "the private redis-server does not answer");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
