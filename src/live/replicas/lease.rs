//! The upstream lease: one Redis key naming the replica that runs the stream, and the fence
//! that keeps everyone else's events out.
//!
//! The key holds a *term token*, `{replica}:{random}`, drawn afresh each time a replica starts
//! holding (and kept while it bids, so that a bid whose answer was lost is recognised as won).
//! A counter (`INCR`) would not do: a Redis that restarts empty forgets the counter with the
//! lease and would hand out the same number twice; 64 random bits never repeat in practice.
//!
//! Every script compares the key with the caller's token inside Redis, atomically:
//! - [`hold`] takes the lease if it is free, extends it if it is the caller's, and otherwise
//!   says who lost: used to bid and to renew, so a replica can only ever extend its own lease
//!   and a holder paused past its TTL cannot take the lease back from a successor;
//! - [`publish`] publishes the holder's events only while the key holds its token, so a
//!   deposed holder (its lease lost with a restarted Redis and taken by another replica) has
//!   its events dropped by Redis itself, not merely by its own next heartbeat;
//! - [`release`] deletes the lease only if it is the caller's.
//!
//! A free key seen by a running holder means Redis lost it (restarted empty, or flushed): an
//! expired lease cannot be seen, because the holder's watchdog stops the stream before its
//! lease can expire. Then `hold` and `publish` take the key back for the same term, so the
//! holder keeps its upstream connection across the restart unless another replica bid first;
//! whichever reaches Redis first wins, atomically, and the other learns it lost at its next
//! call.

use std::time::Duration;

use super::connection::{Connection, Scripts};

/// `KEYS[1]` lease, `ARGV[1]` token, `ARGV[2]` TTL in ms. 0: held by another replica;
/// 1: was ours, extended; 2: was free, now ours.
pub(super) const HOLD: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
";

/// `KEYS[1]` lease, `ARGV[1]` token. Deletes the lease if it is ours.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// `KEYS[1]` lease, `ARGV[1]` token, `ARGV[2]` TTL in ms, then channel and message pairs.
/// Publishes them all if the lease is ours (taking it back if Redis lost it): 1; or none: 0.
/// Channels are not keys (a cluster routes `PUBLISH` anywhere), so only the lease is declared.
pub(super) const PUBLISH: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif holder ~= ARGV[1] then
  return 0
end
for i = 3, #ARGV - 1, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return 1
";

/// A fresh term token for `replica`.
pub(super) fn new_token(replica: &str) -> String {
    format!("{replica}:{:016x}", rand::random::<u64>())
}

/// What a bid or a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Another replica holds the lease.
    Lost,
    /// It was ours; it is extended by a TTL.
    Kept,
    /// It was free; it is ours for a TTL.
    Taken,
}

/// Bids for the lease, or renews it: see [`Hold`].
pub(super) async fn hold(
    conn: &mut Connection,
    scripts: &Scripts,
    key: &str,
    token: &str,
    ttl: Duration,
) -> redis::RedisResult<Hold> {
    let answer: i64 = scripts
        .hold
        .run(conn, |cmd| {
            cmd.arg(1).arg(key).arg(token).arg(millis(ttl));
        })
        .await?;
    Ok(match answer {
        1 => Hold::Kept,
        2 => Hold::Taken,
        _ => Hold::Lost,
    })
}

/// Gives the lease up (if still ours) so another replica can take over at once.
pub(super) async fn release(
    conn: &mut Connection,
    scripts: &Scripts,
    key: &str,
    token: &str,
) -> redis::RedisResult<()> {
    let _: i64 = scripts
        .release
        .run(conn, |cmd| {
            cmd.arg(1).arg(key).arg(token);
        })
        .await?;
    Ok(())
}

/// Publishes `messages` (channel, message) if the lease is still ours; false if it is not (and
/// nothing was published). One round trip, atomic with the check.
pub(super) async fn publish(
    conn: &mut Connection,
    scripts: &Scripts,
    key: &str,
    token: &str,
    ttl: Duration,
    messages: &[(String, String)],
) -> redis::RedisResult<bool> {
    let published: i64 = scripts
        .publish
        .run(conn, |cmd| {
            cmd.arg(1).arg(key).arg(token).arg(millis(ttl));
            for (channel, message) in messages {
                cmd.arg(channel).arg(message);
            }
        })
        .await?;
    Ok(published == 1)
}

pub(super) fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}
