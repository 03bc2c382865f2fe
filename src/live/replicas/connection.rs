//! A replica's Redis connection, every call on it bounded in time, and the Lua scripts it runs.
//!
//! `ConnectionManager` bounds a request on a live connection (its response timeout) but not
//! the wait for a reconnection in progress (the connect timeout, once per retry). A replica's
//! loop must never wait on Redis past a fraction of a heartbeat, nor the lease holder's
//! publisher past a moment, so every call goes through [`Connection`], which fails with a
//! timeout after its limit whatever happens underneath.

use std::time::Duration;

use redis::{
    Cmd, FromRedisValue, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager},
};

/// A `ConnectionManager` whose every request fails after `limit`.
#[derive(Clone)]
pub(super) struct Connection {
    inner: ConnectionManager,
    limit: Duration,
}

impl Connection {
    pub(super) fn new(inner: ConnectionManager, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

pub(super) fn timed_out() -> redis::RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer in time").into()
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let limit = self.limit;
        Box::pin(async move {
            tokio::time::timeout(limit, self.inner.req_packed_command(cmd)).await.unwrap_or_else(|_| Err(timed_out()))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let limit = self.limit;
        Box::pin(async move {
            tokio::time::timeout(limit, self.inner.req_packed_commands(pipeline, offset, count))
                .await
                .unwrap_or_else(|_| Err(timed_out()))
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// A Lua script Redis has compiled and keeps by its SHA-1 digest, so that running it costs one
/// `EVALSHA` round trip carrying only the arguments.
pub(super) struct Script {
    source: &'static str,
    sha: String,
}

impl Script {
    /// Has Redis compile `source` (`SCRIPT LOAD`), which answers the digest.
    pub(super) async fn load(conn: &mut Connection, source: &'static str) -> RedisResult<Self> {
        let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(source).query_async(conn).await?;
        Ok(Self { source, sha })
    }

    /// Runs the script with the keys and arguments `args` appends (`numkeys` first). A Redis
    /// that restarted (or ran `SCRIPT FLUSH`) no longer knows the digest: then the source is
    /// sent once with `EVAL`, which compiles and caches it again.
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        conn: &mut Connection,
        args: impl Fn(&mut Cmd),
    ) -> RedisResult<T> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha);
        args(&mut cmd);
        match cmd.query_async(conn).await {
            Err(err) if err.code() == Some("NOSCRIPT") => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(self.source);
                args(&mut cmd);
                cmd.query_async(conn).await
            }
            result => result,
        }
    }
}

/// Every script a replica runs, compiled once at start-up.
pub(super) struct Scripts {
    /// The lease: take it, keep it, or learn it is someone else's (`lease::HOLD`).
    pub(super) hold: Script,
    pub(super) release: Script,
    /// The fenced publish (`lease::PUBLISH`).
    pub(super) publish: Script,
    /// The union of every replica's demand (`demand::UNION`).
    pub(super) union: Script,
}

impl Scripts {
    pub(super) async fn load(conn: &mut Connection) -> RedisResult<Self> {
        Ok(Self {
            hold: Script::load(conn, super::lease::HOLD).await?,
            release: Script::load(conn, super::lease::RELEASE).await?,
            publish: Script::load(conn, super::lease::PUBLISH).await?,
            union: Script::load(conn, super::demand::UNION).await?,
        })
    }
}
