//! Benchmark: live quotes to many WebSocket subscribers.
//!
//! ```text
//! cargo bench --bench live
//! ```
//! Optional: `LIVE_BENCH_SUBSCRIBERS` (default 1000, up to what `ulimit -n` allows),
//! `LIVE_BENCH_RATE` (upstream quote updates per second, default 1000), `LIVE_BENCH_THROTTLE_MS`
//! (each subscription's `throttleMs`, default none), `LIVE_BENCH_SYMBOLS` (symbols per
//! subscription, default 10; 0 connects without subscribing, to tell a connection's memory from
//! its subscription's), `BENCH_SECS` (default 10).
//!
//! finql runs in this process on its own 2-thread runtime with the iTick source, pointed at a
//! small upstream written here that speaks iTick's WebSocket protocol (auth, subscribe, ping)
//! and pushes quotes, round-robin over every symbol finql subscribed, at the given total rate,
//! each stamped with the time it was sent. The subscribers run in a child process (this
//! benchmark again, told so by its environment), so that each side has the machine's open
//! files to itself and the server's memory is its own: every subscriber is a
//! `graphql-transport-ws` client subscribed to `quotes` of 10 symbols spread over the
//! catalog's streamed instruments (131: stocks, funds, forex, indices, crypto; iTick streams no
//! futures). Reported: delivery latency from the upstream's stamp to the client's receipt
//! (p50/p99, in ms), updates delivered per second, and the server's memory per connection (its
//! heap, counted by this benchmark's allocator, and its resident memory, growth from connecting
//! the subscribers divided by their number).

// A benchmark that cannot unwrap has nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The counting allocator that measures heap per connection is a `GlobalAlloc`.
#![allow(unsafe_code)]

// Shared with the HTTP benchmarks; this one uses only `env_or` and `rss_kib`.
#[allow(dead_code)]
mod common;

use std::{
    alloc::{GlobalAlloc, Layout},
    cell::Cell,
    collections::HashSet,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use common::{env_or, rss_kib};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};

#[global_allocator]
static GLOBAL: ServerHeap = ServerHeap;

/// mimalloc, counting the bytes live on the server runtime's threads: the server's own memory,
/// apart from this process's other threads (the upstream's and the measuring ones).
struct ServerHeap;

static SERVER_BYTES: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static ON_SERVER: Cell<bool> = const { Cell::new(false) };
}

fn count(delta: i64) {
    if ON_SERVER.try_with(Cell::get).unwrap_or(false) {
        SERVER_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to mimalloc unchanged; the counting touches only an atomic and
// a const-initialised thread-local without destructor (no allocation).
unsafe impl GlobalAlloc for ServerHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

const CATALOG: &str = include_str!("../migration/src/catalog.csv");
const SUBSCRIPTION: &str =
    "subscription($s: [String!]!, $t: Int) { quotes(symbols: $s, throttleMs: $t) { symbol last timestamp } }";

/// The catalog's symbols that iTick streams (every class but futures).
fn streamed_symbols() -> Vec<String> {
    CATALOG
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let (symbol, class) = (fields.next()?, fields.next()?);
            (class != "FUTURE").then(|| symbol.to_owned())
        })
        .collect()
}

/// Who gets pushes: `(code, region, the connection's outbox)` per upstream subscription.
type Subscribed = Arc<Mutex<Vec<(String, String, mpsc::UnboundedSender<String>)>>>;

/// An upstream speaking iTick's WebSocket protocol (auth, subscribe, ping) on every endpoint
/// path: `rate` quote pushes a second in total, round-robin over every symbol subscribed on
/// any connection, each stamped with the time it was sent.
async fn upstream(rate: u64) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let subscribed: Subscribed = Arc::default();
    tokio::spawn(push_quotes(subscribed.clone(), rate));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(upstream_connection(tcp, subscribed.clone()));
        }
    });
    Ok(addr)
}

/// Pushes in 10 ms steps, `rate / 100` quotes per step.
async fn push_quotes(subscribed: Subscribed, rate: u64) {
    let per_step = (rate / 100).max(1) as usize;
    let mut step = tokio::time::interval(Duration::from_millis(10));
    let (mut next, mut n) = (0usize, 0u64);
    loop {
        step.tick().await;
        let targets = subscribed.lock().unwrap().clone();
        if targets.is_empty() {
            continue;
        }
        let now = chrono::Utc::now().timestamp_millis();
        for _ in 0..per_step {
            let (code, region, out) = &targets[next % targets.len()];
            next += 1;
            n += 1;
            let price = format!("{}.{:02}", 100 + n % 50, n % 100);
            let push = json!({"code": 1, "data": {
                "s": code, "r": region, "type": "quote", "ld": price, "o": price, "h": price,
                "l": price, "p": price, "t": now, "v": n, "tu": 1000, "ts": 0 }});
            // A closed connection's entries are dropped below when it ends.
            let _ = out.send(push.to_string());
        }
    }
}

async fn upstream_connection(tcp: tokio::net::TcpStream, subscribed: Subscribed) {
    let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else { return };
    let (mut sink, mut source) = socket.split();
    let (out, mut outbox) = mpsc::unbounded_channel::<String>();
    for hello in [
        json!({"code": 1, "msg": "Connected Successfully"}),
        json!({"code": 1, "resAc": "auth", "msg": "authenticated"}),
    ] {
        let _ = out.send(hello.to_string());
    }
    let writer = tokio::spawn(async move {
        while let Some(text) = outbox.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(request) = serde_json::from_str::<Value>(&text) else { continue };
        let reply = match request["ac"].as_str() {
            Some("subscribe") => {
                let mut subscribed = subscribed.lock().unwrap();
                for item in request["params"].as_str().unwrap_or("").split(',') {
                    let Some((code, region)) = item.split_once('$') else { continue };
                    let known = subscribed.iter().any(|(c, r, o)| c == code && r == region && o.same_channel(&out));
                    if !known {
                        subscribed.push((code.to_owned(), region.to_owned(), out.clone()));
                    }
                }
                json!({"code": 1, "resAc": "subscribe", "msg": "subscribe Successfully"})
            }
            Some("ping") => json!({"resAc": "pong", "data": {"params": request["params"]}}),
            _ => continue,
        };
        if out.send(reply.to_string()).is_err() {
            break;
        }
    }
    subscribed.lock().unwrap().retain(|(_, _, o)| !o.same_channel(&out));
    writer.abort();
}

struct Tally {
    latency_us: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    measuring: AtomicBool,
    /// Subscribers that ended before the measurement did, and one of their errors.
    failed: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// One subscriber: connects, authenticates, subscribes to `symbols`, and records every quote.
async fn subscriber(
    addr: SocketAddr,
    token: String,
    symbols: Vec<String>,
    throttle_ms: Option<u32>,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    // Small buffers, as the server's: 10,000 clients at tungstenite's default 128 KiB would
    // spend over a GiB on buffers in this process.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket.send(Message::text(init.to_string())).await?;
    let subscribe = json!({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION, "variables": {"s": symbols, "t": throttle_ms}}});
    if !symbols.is_empty() {
        socket.send(Message::text(subscribe.to_string())).await?;
    }
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else { continue };
        // A `next` is read by hand (the server writes `type` first): the load generator shares
        // the machine with the server, so it spends as little as it can per message.
        if text.starts_with(r#"{"type":"next""#) {
            if !tally.measuring.load(Ordering::Relaxed) {
                continue;
            }
            let stamp = text.split_once(r#""timestamp":""#).and_then(|(_, rest)| rest.split_once('"')).map(|(t, _)| t);
            if let Some(sent) = stamp.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
                let micros = (chrono::Utc::now() - sent.to_utc()).num_microseconds().unwrap_or(0).max(0);
                // One histogram for all: the subscribers share one thread, so the lock is
                // uncontended (a histogram each would cost this process ~100 KiB each).
                tally.latency_us.lock().unwrap().saturating_record(micros as u64);
                tally.delivered.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("ping") => socket.send(Message::text(json!({"type": "pong"}).to_string())).await?,
            Some("error") => anyhow::bail!("subscription refused: {message}"),
            _ => {}
        }
    }
    Ok(())
}

/// Set in the child process that runs the subscribers: the server's address, and the token
/// they subscribe with.
const CLIENTS_OF: &str = "LIVE_BENCH_CLIENTS_OF";
const CLIENTS_TOKEN: &str = "LIVE_BENCH_CLIENTS_TOKEN";

/// What the child prints once every subscriber has connected and settled.
const CONNECTED: &str = "connected";

fn main() -> anyhow::Result<()> {
    match std::env::var(CLIENTS_OF) {
        Ok(addr) => clients(addr.parse()?, std::env::var(CLIENTS_TOKEN)?),
        Err(_) => server(),
    }
}

/// The server side: the upstream and finql, measured while the child process subscribes.
fn server() -> anyhow::Result<()> {
    let rate: u64 = env_or("LIVE_BENCH_RATE", 1000);
    let subscribers: usize = env_or("LIVE_BENCH_SUBSCRIBERS", 1000);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .on_thread_start(|| ON_SERVER.with(|on| on.set(true)))
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (addr, token) = server_rt.block_on(async {
        let upstream = upstream(rate).await?;
        let vars: std::collections::HashMap<&str, String> = std::collections::HashMap::from([
            ("FINQL_ADDR", "127.0.0.1:0".into()),
            ("FINQL_DATA_DIR", dir.path().display().to_string()),
            ("JWT_SECRET", "benchmark-secret-benchmark-secret-0123".into()),
            ("FINQL_MARKET_SOURCE", "itick".into()),
            ("ITICK_TOKEN", "bench".into()),
            ("ITICK_BASE_URL", "http://127.0.0.1:9".into()),
            ("ITICK_WS_URL", format!("ws://{upstream}")),
            ("FINQL_WS_SLOW_CLIENT_MS", "60000".into()),
            // Every subscriber is the one signed-up user: its tenant's plan must hold them all.
            ("FINQL_DEFAULT_PLAN", "enterprise".into()),
            ("RUST_LOG", "warn".into()),
        ]);
        let config = finql::Config::from_lookup(|k| vars.get(k).cloned())?;
        let app = finql::App::build(config).await?;
        let addr = app.local_addr();
        tokio::spawn(app.run_until(std::future::pending()));
        let signup = json!({"query": "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
            "variables": {"i": {"email": "bench@example.com", "password": "correct horse battery", "fullName": "Bench"}}});
        let body: Value = reqwest::Client::new().post(format!("http://{addr}/graphql")).json(&signup).send().await?.json().await?;
        let token = body["data"]["signUp"]["accessToken"].as_str().ok_or_else(|| anyhow::anyhow!("sign-up failed: {body}"))?.to_owned();
        anyhow::Ok((addr, token))
    })?;
    let rss_before: u64 = rss_kib().parse().unwrap_or(0);
    let heap_before = SERVER_BYTES.load(Ordering::Relaxed);
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--bench")
        .env(CLIENTS_OF, addr.to_string())
        .env(CLIENTS_TOKEN, token)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut connected = None;
    for line in lines {
        let line = line?;
        if line == CONNECTED {
            connected = Some((rss_kib().parse::<u64>().unwrap_or(0), SERVER_BYTES.load(Ordering::Relaxed)));
        } else {
            println!("{line}");
        }
    }
    let status = child.wait()?;
    // The server notices 5,000 closes over some time: wait until its heap stops falling (a
    // second without a drop, ten at most), so that what is left is what it keeps.
    let mut heap_end = SERVER_BYTES.load(Ordering::Relaxed);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(1));
        let now = SERVER_BYTES.load(Ordering::Relaxed);
        if now >= heap_end {
            break;
        }
        heap_end = now;
    }
    let rss_end = rss_kib();
    let per_connection = |bytes: i64| bytes as f64 / 1024.0 / subscribers.max(1) as f64;
    if let Some((rss_after, heap_after)) = connected {
        println!(
            "memory: server heap {:.1} KiB per connection; server RSS {rss_before} KiB -> {rss_after} KiB, {:.1} KiB per connection",
            per_connection(heap_after - heap_before),
            rss_after.saturating_sub(rss_before) as f64 / subscribers.max(1) as f64
        );
    }
    println!(
        "after they left: server heap {:.1} KiB per connection, server RSS {rss_end} KiB",
        per_connection(heap_end - heap_before)
    );
    anyhow::ensure!(status.success(), "the subscribers' process failed: {status}");
    drop(server_rt);
    Ok(())
}

/// The subscribers' side (the child process): connects them, reports when they are settled,
/// measures, prints.
fn clients(addr: SocketAddr, token: String) -> anyhow::Result<()> {
    let subscribers: usize = env_or("LIVE_BENCH_SUBSCRIBERS", 1000);
    let rate: u64 = env_or("LIVE_BENCH_RATE", 1000);
    let secs: u64 = env_or("BENCH_SECS", 10);
    let throttle_ms: Option<u32> = std::env::var("LIVE_BENCH_THROTTLE_MS").ok().and_then(|ms| ms.parse().ok());
    let per_subscriber: usize = env_or("LIVE_BENCH_SYMBOLS", 10);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("subscribers")
        .enable_all()
        .build()?;
    client_rt.block_on(async move {
        let universe = streamed_symbols();
        let tally = Arc::new(Tally {
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
            delivered: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let done = Arc::new(AtomicBool::new(false));
        let mut symbols_used = HashSet::new();
        for i in 0..subscribers {
            let symbols: Vec<String> =
                (0..per_subscriber).map(|k| universe[(i + k * 7) % universe.len()].clone()).collect();
            symbols_used.extend(symbols.iter().cloned());
            let (token, tally, done) = (token.clone(), tally.clone(), done.clone());
            tokio::spawn(async move {
                let result = subscriber(addr, token, symbols, throttle_ms, tally.clone()).await;
                if !done.load(Ordering::Relaxed) {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    let why = result.err().map_or("closed by the server".into(), |err| format!("{err:#}"));
                    tally.failure.lock().unwrap().get_or_insert(why);
                }
            });
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!("{CONNECTED}");
        tally.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        tally.measuring.store(false, Ordering::Relaxed);
        done.store(true, Ordering::Relaxed);
        let latency = tally.latency_us.lock().unwrap().clone();
        let delivered = tally.delivered.load(Ordering::Relaxed);
        println!(
            "{subscribers} subscribers x {per_subscriber} symbols ({} distinct), upstream {rate} updates/s, throttleMs {}, {secs} s",
            symbols_used.len(),
            throttle_ms.map_or("none".to_owned(), |ms| ms.to_string()),
        );
        println!(
            "delivered {delivered} updates, {:.0} updates/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            delivered as f64 / secs as f64,
            latency.value_at_quantile(0.5) as f64 / 1000.0,
            latency.value_at_quantile(0.99) as f64 / 1000.0,
            latency.max() as f64 / 1000.0,
        );
        let failed = tally.failed.load(Ordering::Relaxed);
        if failed > 0 {
            println!("{failed} subscribers ended early; first reason: {}", tally.failure.lock().unwrap().as_deref().unwrap_or("?"));
        }
        anyhow::Ok(())
    })?;
    // The subscribers' sockets close with the process.
    std::process::exit(0)
}
