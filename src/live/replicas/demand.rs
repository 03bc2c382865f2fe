//! Each replica's demand in Redis, and the union of every live replica's demand.
//!
//! A replica's demand is a hash `{ns}:live:demand:{replica}` (field: topic key, value: the
//! encoded topic) that expires unless the replica's heartbeat refreshes it, so a crashed
//! replica's demand disappears by itself within one TTL. The set `{ns}:live:replicas` lists
//! replicas that may have demand, so the lease holder never has to `SCAN` a shared Redis; the
//! union script drops members whose hash has expired. Every change is announced on
//! `{ns}:live:demand-changed` so the holder reacts at once instead of at its next heartbeat.

use std::{collections::HashMap, time::Duration};

use redis::RedisResult;

use super::{
    Keys,
    connection::{Connection, Scripts},
    lease::millis,
    wire,
};
use crate::live::Topic;

/// Reads every live replica's demand, keeping each topic once, and forgets replicas whose
/// demand has expired. Atomic, so a replica registering meanwhile is never forgotten.
pub(super) const UNION: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local seen = {}
local out = {}
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    for i = 1, #fields, 2 do
      if not seen[fields[i]] then
        seen[fields[i]] = true
        out[#out + 1] = fields[i]
        out[#out + 1] = fields[i + 1]
      end
    end
  end
end
return out
";

/// Adds topics to this replica's demand (and registers the replica).
pub(super) async fn add(
    conn: &mut Connection,
    keys: &Keys,
    id: &str,
    ttl: Duration,
    topics: &[Topic],
) -> RedisResult<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    store(&mut pipe, keys, id, ttl, topics);
    pipe.cmd("PUBLISH").arg(keys.demand_changed()).arg(id).ignore();
    pipe.query_async(conn).await
}

/// Queues writing `topics` (not empty) into this replica's demand, renewing its TTL, and
/// registering the replica.
fn store(pipe: &mut redis::Pipeline, keys: &Keys, id: &str, ttl: Duration, topics: &[Topic]) {
    let key = keys.demand(id);
    let mut hset = redis::cmd("HSET");
    hset.arg(&key);
    for topic in topics {
        hset.arg(wire::topic_key(topic)).arg(wire::encode_topic(topic));
    }
    pipe.add_command(hset).ignore();
    pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
    pipe.cmd("SADD").arg(keys.replicas()).arg(id).ignore();
}

/// Removes topics from this replica's demand.
pub(super) async fn remove(conn: &mut Connection, keys: &Keys, id: &str, topic_keys: &[String]) -> RedisResult<()> {
    if topic_keys.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.cmd("HDEL").arg(keys.demand(id)).arg(topic_keys).ignore();
    pipe.cmd("PUBLISH").arg(keys.demand_changed()).arg(id).ignore();
    pipe.query_async(conn).await
}

/// Replaces this replica's whole demand (after Redis lost it, or a write failed).
pub(super) async fn rewrite(
    conn: &mut Connection,
    keys: &Keys,
    id: &str,
    ttl: Duration,
    topics: &[Topic],
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("DEL").arg(keys.demand(id)).ignore();
    if !topics.is_empty() {
        store(&mut pipe, keys, id, ttl, topics);
    }
    pipe.cmd("PUBLISH").arg(keys.demand_changed()).arg(id).ignore();
    pipe.query_async(conn).await
}

/// The heartbeat: keeps this replica's demand alive. False if Redis no longer has it (it
/// expired during an outage, or Redis restarted) and it must be rewritten.
pub(super) async fn refresh(conn: &mut Connection, keys: &Keys, id: &str, ttl: Duration) -> RedisResult<bool> {
    let refreshed: i64 = redis::cmd("PEXPIRE").arg(keys.demand(id)).arg(millis(ttl)).query_async(conn).await?;
    Ok(refreshed == 1)
}

/// Clean shutdown: this replica wants nothing any more.
pub(super) async fn withdraw(conn: &mut Connection, keys: &Keys, id: &str) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(keys.demand(id)).ignore();
    pipe.cmd("SREM").arg(keys.replicas()).arg(id).ignore();
    pipe.cmd("PUBLISH").arg(keys.demand_changed()).arg(id).ignore();
    pipe.query_async(conn).await
}

/// The union of every live replica's demand, by topic key. Entries that do not decode (written
/// by an incompatible version) are skipped with a warning.
pub(super) async fn union(
    conn: &mut Connection,
    scripts: &Scripts,
    keys: &Keys,
) -> RedisResult<HashMap<String, Topic>> {
    let flat: Vec<String> = scripts
        .union
        .run(conn, |cmd| {
            cmd.arg(1).arg(keys.replicas()).arg(keys.demand_prefix());
        })
        .await?;
    let mut union = HashMap::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        match wire::decode_topic(&pair[1]) {
            Some(topic) => {
                union.insert(pair[0].clone(), topic);
            }
            None => tracing::warn!(topic = %pair[0], "ignoring a demanded topic that does not decode"),
        }
    }
    Ok(union)
}
