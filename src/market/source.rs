//! The `MarketSource` trait: what finql needs from a market-data provider.
//!
//! Sources are stateless towards finql (caching, batching across requests and stale fallback
//! are `MarketService`'s job), must return exact decimals and UTC times, and must report
//! failures as `SourceError` so the service can fall back or answer `UPSTREAM_UNAVAILABLE`.

use chrono::{DateTime, Utc};

use super::types::{Instrument, Interval, Kline, OrderBook, Quote, Tick};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source is down, timed out, or kept failing after retries.
    Unavailable(String),
    /// The source rejected our credentials.
    Unauthorized(String),
    /// The source does not know the instrument.
    NotFound(String),
    /// The source's answer could not be understood.
    Invalid(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "source unavailable: {m}"),
            Self::Unauthorized(m) => write!(f, "source rejected the credentials: {m}"),
            Self::NotFound(m) => write!(f, "not found at the source: {m}"),
            Self::Invalid(m) => write!(f, "invalid answer from the source: {m}"),
        }
    }
}

impl std::error::Error for SourceError {}

#[async_trait::async_trait]
pub trait MarketSource: Send + Sync + 'static {
    /// Short name, reported as `Quote.source` (`simulated`, `itick`).
    fn name(&self) -> &'static str;

    /// How many instruments one `quotes` call may carry (the upstream's batch limit).
    fn batch_limit(&self) -> usize;

    /// Latest quotes of instruments that share an asset class and upstream region (callers
    /// group them), at most `batch_limit()` of them. Instruments the source does not know are
    /// simply absent from the answer.
    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError>;

    /// Up to `limit` bars of `interval` starting before `end` (default: now, which includes the
    /// bar in progress), oldest first.
    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError>;

    /// The order book, `levels` deep on each side.
    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError>;

    /// Recent trades, newest last, at most `limit` (a source may offer fewer: iTick's REST API
    /// gives the latest trade only).
    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError>;
}
