//! finql as its own OS process: the built `finql` binary, started with `finql serve` and a
//! clean environment, as a replica runs in production. For what only separate processes show
//! (a replica killed outright, nothing shared but PostgreSQL and Redis); everything else uses the
//! cheaper in-process `spawn_app`.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::helpers::{JWT_SECRET, PASSWORD};

pub struct FinqlProcess {
    pub addr: SocketAddr,
    child: Child,
    /// Everything the process logged (JSON lines), for failure messages.
    logs: Arc<Mutex<Vec<String>>>,
    _data_dir: tempfile::TempDir,
}

impl FinqlProcess {
    /// Starts `finql serve` on a free port with `vars` (on top of a test JWT secret, a data
    /// folder of its own and JSON logs) and waits until it listens.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finql"));
        command.arg("serve");
        Self::start_command(command, vars).await
    }

    /// Like [`FinqlProcess::start`], with the process allowed only `open_files` descriptors
    /// (soft and hard limit, as a container's `ulimit -n` would).
    pub async fn start_with_open_files(open_files: u64, vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(format!("ulimit -n {open_files} && exec \"$0\" serve")).arg(env!("CARGO_BIN_EXE_finql"));
        Self::start_command(command, vars).await
    }

    async fn start_command(mut command: Command, vars: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        command
            // Nothing from the test's environment (or a `.env`) leaks in.
            .env_clear()
            .current_dir(data_dir.path())
            .env("FINQL_ADDR", "127.0.0.1:0")
            .env("FINQL_DATA_DIR", data_dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .env("FINQL_ANONYMOUS_PLAN", "developer")
            .env("FINQL_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the finql binary starts");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        // stderr is drained too: a full pipe would block the process.
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(collect(BufReader::new(stderr).lines(), logs.clone(), None));
        let stdout = child.stdout.take().expect("piped stdout");
        let (listening, addr) = tokio::sync::oneshot::channel();
        tokio::spawn(collect(BufReader::new(stdout).lines(), logs.clone(), Some(listening)));
        let addr = match tokio::time::timeout(Duration::from_secs(30), addr).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("finql did not start listening; its output:\n{}", logs.lock().unwrap().join("\n")),
        };
        Self { addr, child, logs, _data_dir: data_dir }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// Signs up a new user here and returns the access token.
    pub async fn access_token(&self) -> String {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let query = "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }";
        let body: Value = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({ "query": query, "variables": { "i": { "email": email, "password": PASSWORD, "fullName": "P" } } }))
            .send()
            .await
            .expect("the process answers")
            .json()
            .await
            .expect("a JSON body");
        body["data"]["signUp"]["accessToken"].as_str().unwrap_or_else(|| panic!("sign-up failed: {body}")).to_owned()
    }

    /// Kills the process outright (SIGKILL): no graceful shutdown, nothing released.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill finql");
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// Keeps `lines` in `logs`; with `listening`, sends the address of the "finql listening" line.
async fn collect<R: tokio::io::AsyncBufRead + Unpin>(
    mut lines: tokio::io::Lines<R>,
    logs: Arc<Mutex<Vec<String>>>,
    mut listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(event) = serde_json::from_str::<Value>(&line)
            && event["message"].as_str().is_some_and(|m| m.starts_with("finql listening"))
            && let Some(addr) = event["addr"].as_str().and_then(|a| a.parse().ok())
            && let Some(listening) = listening.take()
        {
            let _ = listening.send(addr);
        }
        logs.lock().unwrap().push(line);
    }
}
