//! Quotes shared by every replica through Redis (when `REDIS_URL` is set).
//!
//! The in-process cache in `MarketService` stays the first level: it answers most requests
//! without a network hop. This is the second level: a quote fetched by any replica is served
//! by all of them until it expires, so N replicas make about as many upstream calls as one,
//! and the last known value (for stale fallback) survives a replica's restart.
//!
//! Redis is an optimisation here, never a dependency of correctness: any Redis error is logged
//! and treated as a miss, and the request goes upstream. Nor may it cost time when it is
//! gone: every call goes through the process's `RedisGuard` (`FINQL_REDIS_TIMEOUT_MS`, default
//! 100 ms, and the `redis` circuit breaker), so a Redis that is down, refusing or silent costs
//! a few timed-out calls, and then nothing (the breaker is open: the local cache alone answers)
//! until a probe finds it back. The connection is made lazily: start-up does not wait for it.
//! Keys:
//! `{namespace}:quote:{symbol}` (expires with the quote TTL) and
//! `{namespace}:quote:last:{symbol}` (expires after `FINQL_MAX_STALE_SECS`).

use std::{collections::HashMap, str::FromStr, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::types::{Quote, TradingStatus};
use crate::{reference::Symbol, resilience::redis::RedisGuard};

#[derive(Clone)]
pub struct SharedQuotes {
    conn: ConnectionManager,
    guard: RedisGuard,
    namespace: String,
    ttl: Duration,
    max_stale: Duration,
}

/// A quote as stored in Redis: decimals as exact strings. Live events (`live::replicas`) carry
/// quotes between replicas in this same form.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredQuote {
    symbol: String,
    last: String,
    open: String,
    high: String,
    low: String,
    prev_close: String,
    /// Absent or null where nothing trades (an index).
    #[serde(default)]
    volume: Option<String>,
    #[serde(default)]
    turnover: Option<String>,
    timestamp: DateTime<Utc>,
    trading_status: String,
    source: String,
}

impl SharedQuotes {
    /// Sets up the connection (lazily: a Redis that is down at start-up only means misses
    /// until it is up; a PING that fails is logged). Fails only on an invalid URL.
    pub async fn connect(
        url: &str,
        namespace: &str,
        ttl: Duration,
        max_stale: Duration,
        guard: RedisGuard,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let conn = guard.connection(client).context("setting up the Redis connection (REDIS_URL)")?;
        let shared = Self { conn, guard, namespace: namespace.to_owned(), ttl, max_stale };
        let mut conn = shared.conn.clone();
        if let Err(err) = shared.guard.run(redis::cmd("PING").query_async::<String>(&mut conn)).await {
            tracing::warn!(error = %err, "Redis did not answer PING; the shared quote cache is skipped until it does");
        }
        Ok(shared)
    }

    /// The Redis call timeout.
    pub fn timeout(&self) -> Duration {
        self.guard.timeout()
    }

    /// The guard (timeout and breaker) of this process's Redis calls, for reuse and health.
    pub fn guard(&self) -> &RedisGuard {
        &self.guard
    }

    fn key(&self, symbol: &Symbol) -> String {
        format!("{}:quote:{symbol}", self.namespace)
    }

    fn last_key(&self, symbol: &Symbol) -> String {
        format!("{}:quote:last:{symbol}", self.namespace)
    }

    /// Fresh quotes other replicas (or this one) fetched; absent symbols were not cached.
    #[tracing::instrument(name = "cache.redis.fresh", skip_all, fields(symbols = symbols.len()))]
    pub async fn fresh(&self, symbols: &[Symbol]) -> HashMap<Symbol, Quote> {
        if symbols.is_empty() {
            return HashMap::new();
        }
        let keys: Vec<String> = symbols.iter().map(|s| self.key(s)).collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> =
            match self.guard.run(redis::cmd("MGET").arg(&keys).query_async(&mut conn)).await {
                Ok(values) => values,
                Err(err) => {
                    err.log("shared quote cache unavailable; using the local cache");
                    return HashMap::new();
                }
            };
        symbols.iter().zip(values).filter_map(|(symbol, value)| Some((symbol.clone(), decode(&value?)?))).collect()
    }

    #[tracing::instrument(name = "cache.redis.last_known", skip_all)]
    pub async fn last_known(&self, symbol: &Symbol) -> Option<Quote> {
        let mut conn = self.conn.clone();
        let value: Option<String> =
            match self.guard.run(redis::cmd("GET").arg(self.last_key(symbol)).query_async(&mut conn)).await {
                Ok(value) => value,
                Err(err) => {
                    err.log("shared quote cache unavailable for the last known value");
                    return None;
                }
            };
        decode(&value?)
    }

    #[tracing::instrument(name = "cache.redis.store", skip_all, fields(quotes = quotes.len()))]
    pub async fn store(&self, quotes: &[Quote]) {
        if quotes.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for quote in quotes {
            let Ok(value) = serde_json::to_string(&encode(quote)) else { continue };
            let ttl_ms = self.ttl.as_millis().max(1) as u64;
            let stale_ms = self.max_stale.as_millis().max(1) as u64;
            pipe.cmd("SET").arg(self.key(&quote.symbol)).arg(&value).arg("PX").arg(ttl_ms).ignore();
            pipe.cmd("SET").arg(self.last_key(&quote.symbol)).arg(&value).arg("PX").arg(stale_ms).ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(err) = self.guard.run(pipe.query_async::<()>(&mut conn)).await {
            err.log("could not write quotes to the shared cache");
        }
    }
}

/// A failed call is worth a warning; a call the open breaker refused is the expected, quiet
/// consequence of one (the breaker logged when it opened).
fn encode(quote: &Quote) -> StoredQuote {
    StoredQuote::from_quote(quote)
}

/// A stored quote, or `None` (logged) if it cannot be read: a bad entry is a miss.
fn decode(raw: &str) -> Option<Quote> {
    serde_json::from_str::<StoredQuote>(raw).ok()?.into_quote()
}

impl StoredQuote {
    pub(crate) fn from_quote(quote: &Quote) -> Self {
        Self {
            symbol: quote.symbol.to_string(),
            last: quote.last.to_string(),
            open: quote.open.to_string(),
            high: quote.high.to_string(),
            low: quote.low.to_string(),
            prev_close: quote.prev_close.to_string(),
            volume: quote.volume.map(|v| v.to_string()),
            turnover: quote.turnover.map(|t| t.to_string()),
            timestamp: quote.timestamp,
            trading_status: format!("{:?}", quote.trading_status),
            source: quote.source.to_owned(),
        }
    }

    /// The quote, or `None` if a field does not parse. `stale` is false: whoever reads it
    /// decides whether it is stale.
    pub(crate) fn into_quote(self) -> Option<Quote> {
        let stored = self;
        let number = |s: &str| Decimal::from_str(s).ok();
        // `Some(None)` for an absent size, `None` for one that does not parse.
        let optional_number = |s: Option<&str>| match s {
            None => Some(None),
            Some(s) => number(s).map(Some),
        };
        let quote = Quote {
            symbol: Symbol::parse(&stored.symbol).ok()?,
            last: number(&stored.last)?,
            open: number(&stored.open)?,
            high: number(&stored.high)?,
            low: number(&stored.low)?,
            prev_close: number(&stored.prev_close)?,
            volume: optional_number(stored.volume.as_deref())?,
            turnover: optional_number(stored.turnover.as_deref())?,
            timestamp: stored.timestamp,
            trading_status: match stored.trading_status.as_str() {
                "Suspended" => TradingStatus::Suspended,
                "Delisted" => TradingStatus::Delisted,
                "CircuitBreaker" => TradingStatus::CircuitBreaker,
                _ => TradingStatus::Normal,
            },
            // `source` is a static name, one of the sources finql has (`Quote.source` is an
            // enum of them): any other (a newer replica's) is a miss, not a quote.
            source: crate::market::types::known_source(&stored.source)?,
            stale: false,
        };
        Some(quote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_round_trip_exactly() {
        let quote = Quote {
            symbol: Symbol::parse("AAPL.US").unwrap(),
            last: Decimal::from_str("189.98").unwrap(),
            open: Decimal::from_str("188.5").unwrap(),
            high: Decimal::from_str("190.01").unwrap(),
            low: Decimal::from_str("187.00").unwrap(),
            prev_close: Decimal::from_str("188.00").unwrap(),
            volume: Some(Decimal::from(1_234_567)),
            turnover: Some(Decimal::from_str("234567890.12").unwrap()),
            timestamp: Utc::now(),
            trading_status: TradingStatus::CircuitBreaker,
            source: "itick",
            stale: true,
        };
        let back = decode(&serde_json::to_string(&encode(&quote)).unwrap()).unwrap();
        assert_eq!(back, Quote { stale: false, ..quote });
        assert!(decode("not json").is_none());
    }
}
