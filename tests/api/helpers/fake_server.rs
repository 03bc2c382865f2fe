//! What the fake upstreams (`sources::itick::fake_rest`, `fake_ws`) share: serving a router on a free
//! port until dropped, and controls a test sets while the server's handlers read them.

use std::{
    net::SocketAddr,
    sync::{Mutex, MutexGuard},
};

/// An axum server on `127.0.0.1` and a free port, stopped when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn serve(app: axum::Router, what: &str) -> Self {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|err| panic!("bind the {what}: {err}"));
        let addr = listener.local_addr().expect("a bound address");
        let what = what.to_owned();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap_or_else(|err| panic!("the {what} serves: {err}"));
        });
        Self { addr, server }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fake's controls behind a mutex that a panicking handler does not poison for the test.
#[derive(Default)]
pub struct Controls<T>(Mutex<T>);

impl<T> Controls<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
