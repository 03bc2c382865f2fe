//! The upstream lease: one Redis key naming the replica that runs the stream.
//!
//! Taken with `SET key id NX PX ttl`, renewed with a compare-and-renew script and released with
//! a compare-and-delete script, so a replica can only ever extend or delete its own lease: a
//! holder that was paused past its TTL cannot take the lease back from its successor.

use std::time::Duration;

use redis::{RedisResult, aio::ConnectionManager};

/// Extends the lease if `ARGV[1]` still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease if `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Takes the lease if nobody holds it, or keeps it if this replica already does (its last
/// renewal may have reached Redis even though the answer did not reach us). True if held.
pub(super) async fn acquire(conn: &mut ConnectionManager, key: &str, id: &str, ttl: Duration) -> RedisResult<bool> {
    let set: Option<String> =
        redis::cmd("SET").arg(key).arg(id).arg("NX").arg("PX").arg(millis(ttl)).query_async(conn).await?;
    if set.is_some() {
        return Ok(true);
    }
    renew(conn, key, id, ttl).await
}

/// True if this replica still holds the lease, now for another `ttl`.
pub(super) async fn renew(conn: &mut ConnectionManager, key: &str, id: &str, ttl: Duration) -> RedisResult<bool> {
    let renewed: i64 = redis::cmd("EVAL").arg(RENEW).arg(1).arg(key).arg(id).arg(millis(ttl)).query_async(conn).await?;
    Ok(renewed == 1)
}

/// Gives the lease up (if still held) so another replica can take over at once.
pub(super) async fn release(conn: &mut ConnectionManager, key: &str, id: &str) -> RedisResult<()> {
    let _: i64 = redis::cmd("EVAL").arg(RELEASE).arg(1).arg(key).arg(id).query_async(conn).await?;
    Ok(())
}

pub(super) fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}
