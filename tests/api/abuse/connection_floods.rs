//! Slowloris and connection floods (issue 9, item 5): clients that send their request a byte
//! at a time, connect and say nothing, stop reading, or open more connections than the server
//! serves. Raw TCP clients, because an HTTP client library would not misbehave on demand.
//! Timeouts are configured in hundreds of milliseconds; bounds are generous upper limits.
//! Transport behaviour does not depend on the database: SQLite only.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};

use crate::{
    helpers::*,
    http::ws::{TRANSPORT_WS, Ws, without_trace_id},
};

/// Short timeouts for these tests (the defaults are seconds).
const HEADER_MS: &str = "500";

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app(Backend::Sqlite, overrides).await.expect("SQLite is always available")
}

/// Reads (and discards) until the server closes the connection; how long that took, or `None`
/// if it was still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 8192];
    let outcome = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    outcome.ok().map(|()| started.elapsed())
}

/// Everything the server sends until it closes (or `limit` passes), as text.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one response with a `content-length` body: (status, head, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no content-length in {head}"));
            if body.len() >= length {
                let status = head[9..12].parse().expect("a status code");
                return (status, head.to_owned(), body[..length].to_owned());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the response arrives in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
}

fn graphql_request(query: &str) -> String {
    let body = json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nhost: finql\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

const HEALTH_REQUEST: &str = "GET /health HTTP/1.1\r\nhost: finql\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_at_the_header_timeout() {
    let app = app_with(&[("FINQL_HEADER_READ_TIMEOUT_MS", HEADER_MS)]).await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Half a request line, then a header a byte every 100 ms: each byte is "activity". (Real
    // time throughout this file: the server's own timeouts, against a real socket, are what is
    // under test; the paused clock would fire them while the test waits for I/O.)
    writer.write_all(b"GET /health HT").await.unwrap();
    let dribble = tokio::spawn(async move {
        for byte in b"TP/1.1\r\nhost: finql\r\nx-slow: ".iter().chain(b"a".repeat(100).iter()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(matches!(outcome, Ok(Ok(0) | Err(_))), "closed without an answer, got {outcome:?}");
    assert!(elapsed < Duration::from_secs(2), "cut at the 500 ms header timeout, not after {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(300), "not before the timeout ({elapsed:?})");
    dribble.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_connects_and_says_nothing_is_closed() {
    let app = app_with(&[("FINQL_HEADER_READ_TIMEOUT_MS", HEADER_MS), ("FINQL_IDLE_TIMEOUT_SECS", "30")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let elapsed = closed_within(&mut stream, Duration::from_secs(5)).await.expect("the server closes it");
    assert!(elapsed < Duration::from_secs(2), "closed at the header timeout, not after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_serves_several_requests_then_closes_at_the_idle_timeout() {
    let app = app_with(&[("FINQL_HEADER_READ_TIMEOUT_MS", HEADER_MS), ("FINQL_IDLE_TIMEOUT_SECS", "1.2")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    for _ in 0..3 {
        stream.write_all(HEALTH_REQUEST.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut stream).await.0, 200);
        // Between requests the idle timeout applies, not the (shorter) header timeout: a pause
        // longer than the header timeout is the point.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    stream.write_all(graphql_request("{ __typename }").as_bytes()).await.unwrap();
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        untraced(serde_json::from_str::<Value>(&body).unwrap()),
        json!({ "data": { "__typename": "Query" }, "extensions": { "cost": 0 } })
    );
    let elapsed = closed_within(&mut stream, Duration::from_secs(5)).await.expect("an idle keep-alive is closed");
    assert!(elapsed >= Duration::from_millis(900), "kept for the idle timeout, closed after {elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "closed at the 1.2 s idle timeout, not after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_on_a_keep_alive_connection_must_arrive_within_the_header_timeout() {
    let app = app_with(&[("FINQL_HEADER_READ_TIMEOUT_MS", HEADER_MS), ("FINQL_IDLE_TIMEOUT_SECS", "30")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTH_REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    // A pause between requests, so that the header clock could only start at the next byte.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The first byte of the next request starts its clock; the rest never comes.
    stream.write_all(b"GET /hea").await.unwrap();
    let elapsed = closed_within(&mut stream, Duration::from_secs(5)).await.expect("the late head is cut");
    assert!(elapsed < Duration::from_secs(2), "cut at the 500 ms header timeout, not after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_cut_with_408() {
    let app = app_with(&[("FINQL_HEADER_READ_TIMEOUT_MS", HEADER_MS), ("FINQL_BODY_READ_TIMEOUT_MS", "600")]).await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let body = json!({ "query": "{ __typename }" }).to_string();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: finql\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        // A byte every 100 ms: the whole 27-byte body would take 2.7 s.
        for byte in body.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Keep the write side open: a half-close would end the body.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut received)).await;
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "a 408, got {text:?}");
    assert!(text.contains("request body not received within 600 ms"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(elapsed < Duration::from_secs(2), "cut at the 600 ms body deadline, not after {elapsed:?}");
    dribble.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_response_is_closed_at_the_idle_timeout() {
    let app = app_with(&[("FINQL_IDLE_TIMEOUT_SECS", "0.3")]).await;
    let full = reqwest::get(app.url("/graphiql/assets/graphiql.min.js")).await.unwrap().bytes().await.unwrap().len();
    assert!(full > 500_000, "the asset is large enough to fill the socket buffers ({full} bytes)");
    // A small receive window, and ten pipelined requests for the asset: more than the kernel
    // buffers on both sides hold (the server's send buffer grows to 4 MiB), so the server must
    // wait for a reader that never comes.
    const REQUESTS: usize = 10;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let request = "GET /graphiql/assets/graphiql.min.js HTTP/1.1\r\nhost: finql\r\n\r\n".repeat(REQUESTS);
    stream.write_all(request.as_bytes()).await.unwrap();
    // A client that does not read for longer than the server's timeouts: the behaviour under test.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "the response had started");
    assert!(
        received.len() < REQUESTS * full,
        "the server gave up on the stalled responses ({} of {} bytes arrived)",
        received.len(),
        REQUESTS * full
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_http_timeouts() {
    let app = app_with(&[("FINQL_IDLE_TIMEOUT_SECS", "0.3"), ("FINQL_HEADER_READ_TIMEOUT_MS", "300")]).await;
    let mut ws = Ws::connect(&app, TRANSPORT_WS).await;
    ws.init(None).await;
    // Quiet for five times the idle timeout, with no keep-alive in between (15 s by default).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ws.send_json(json!({ "type": "ping" })).await;
    assert_eq!(ws.next_json().await, json!({ "type": "pong" }));
    ws.subscribe("1", "{ __typename }").await;
    assert_eq!(without_trace_id(ws.next_json().await)["payload"], json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_cap_is_refused_fast_and_probes_use_the_reserve() {
    let app = app_with(&[
        ("FINQL_MAX_CONNECTIONS", "20"),
        ("FINQL_CONNECTION_RESERVE", "4"),
        // The flood's connections hold their places for the whole test.
        ("FINQL_HEADER_READ_TIMEOUT_MS", "20000"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Let the server accept them all before the flood goes over the cap. (A fixed wait: the
    // server's count of open sockets is not observable from here; accepting 20 takes far less.)
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 30 more at once: 4 land in the reserve (cut within a second, as a probe would have
    // spoken by then), the rest are refused at once with a 503.
    let flood = (0..30).map(|_| {
        let addr = app.addr;
        tokio::spawn(async move {
            let started = Instant::now();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let answer = read_to_close(&mut stream, Duration::from_secs(5)).await;
            (answer, started.elapsed())
        })
    });
    let outcomes: Vec<(String, Duration)> =
        futures::future::join_all(flood).await.into_iter().map(Result::unwrap).collect();
    let refused_fast = outcomes
        .iter()
        .filter(|(answer, elapsed)| answer.starts_with("HTTP/1.1 503") && *elapsed < Duration::from_secs(1))
        .count();
    assert!(refused_fast >= 26, "at least 30 - 4 refused with a 503 within 1 s: {outcomes:?}");
    let refusal = &outcomes.iter().find(|(answer, _)| answer.starts_with("HTTP/1.1 503")).unwrap().0;
    assert!(refusal.to_ascii_lowercase().contains("retry-after: 1"), "{refusal}");
    assert!(refusal.contains("RATE_LIMITED"), "{refusal}");
    for (answer, elapsed) in &outcomes {
        assert!(*elapsed < Duration::from_secs(3), "every flood connection ends soon: {answer:?} after {elapsed:?}");
    }

    // The 20 still held, the reserve answers the probes...
    for path in ["/health", "/ready"] {
        let mut probe = TcpStream::connect(app.addr).await.unwrap();
        probe.write_all(format!("GET {path} HTTP/1.1\r\nhost: finql\r\n\r\n").as_bytes()).await.unwrap();
        let (status, head, body) = read_response(&mut probe).await;
        assert_eq!(status, 200, "{path} answers through the reserve: {head}\r\n\r\n{body}");
        assert!(closed_within(&mut probe, Duration::from_secs(2)).await.is_some(), "one probe per reserve connection");
    }
    // ... and nothing else.
    let mut query = TcpStream::connect(app.addr).await.unwrap();
    query.write_all(graphql_request("{ __typename }").as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut query).await;
    assert_eq!(status, 503, "GraphQL is refused on a reserve connection: {head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert_eq!(error_code(&serde_json::from_str(&body).unwrap()), "RATE_LIMITED");

    // The flood ends: normal service resumes once the server has seen the sockets close.
    drop(held);
    let mut last = None;
    let resumed = poll(Duration::from_secs(5), async || {
        let (status, body) = app.gql_status(None, "{ __typename }", json!({})).await;
        last = Some((status, body));
        status == 200
    })
    .await;
    let (status, body) = last.unwrap();
    assert!(resumed.is_some(), "service resumes after the flood (last: {status} {body})");
    assert_eq!(untraced(body), json!({ "data": { "__typename": "Query" }, "extensions": { "cost": 0 } }));
}

/// The review's flood that took `/health` down with "too many open files", replayed against a
/// process allowed 256 descriptors: the cap is lowered to fit (with a warning), the flood is
/// refused without running out of descriptors, and the probe still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_at_the_open_files_limit_leaves_health_answering() {
    let server = crate::helpers::process::FinqlProcess::start_with_open_files(256, &[]).await;
    let warned = poll(Duration::from_secs(5), async || server.logs().contains("exceed the open-files limit")).await;
    assert!(warned.is_some(), "a warning that the cap was lowered:\n{}", server.logs());
    let flood: Vec<TcpStream> = futures::future::join_all((0..400).map(|_| TcpStream::connect(server.addr)))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(flood.len() >= 300, "the flood connected ({} of 400)", flood.len());

    // Within the reserve's one-second header timeout, a probe gets through.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut probe = TcpStream::connect(server.addr).await.unwrap();
        probe.write_all(HEALTH_REQUEST.as_bytes()).await.unwrap();
        let answer = read_to_close(&mut probe, Duration::from_secs(2)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "a 200, a 503 or a close: {answer}");
        assert!(Instant::now() < deadline, "/health answers during the flood:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.logs().contains("cannot accept connections"), "never out of descriptors:\n{}", server.logs());

    drop(flood);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let resumed = poll(Duration::from_secs(5), async || {
        let response = client
            .post(format!("http://{}/graphql", server.addr))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await;
        response.is_ok_and(|response| response.status() == 200)
    })
    .await;
    assert!(resumed.is_some(), "service resumes after the flood:\n{}", server.logs());
}

/// Graceful shutdown with the server's own accept loop: new connections are refused at once,
/// a request in flight (here, its body still arriving) is finished and answered, and an idle
/// keep-alive connection does not hold the shutdown up for the grace period (30 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    let app = app_with(&[]).await;
    let addr = app.addr;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HEALTH_REQUEST.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut idle).await.0, 200);

    let request = graphql_request("{ __typename }");
    let (head_and_some, rest) = request.split_at(request.len() - 5);
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight.write_all(head_and_some.as_bytes()).await.unwrap();
    // A fixed wait (nothing shows that the server has read the head): then shutdown starts.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let shutdown = tokio::spawn(app.shutdown());
    // A fixed wait: that no connection is accepted once shutdown has begun is what is asserted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections once shutting down");
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await.is_some(), "the idle keep-alive is closed");

    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut in_flight).await;
    assert_eq!(status, 200, "the request in flight is answered: {head}");
    assert_eq!(
        untraced(serde_json::from_str::<Value>(&body).unwrap()),
        json!({ "data": { "__typename": "Query" }, "extensions": { "cost": 0 } })
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown does not wait out the grace period")
        .expect("shutdown task")
        .expect("the server stops cleanly");
    assert!(started.elapsed() < Duration::from_secs(5));
}
