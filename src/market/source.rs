//! The `MarketSource` trait: what finql needs from a market-data provider.
//!
//! Sources are stateless towards finql (caching, batching across requests and stale fallback
//! are `MarketService`'s job), must return exact decimals and UTC times, and must report
//! failures as `SourceError` so the service can fall back or answer `UPSTREAM_UNAVAILABLE`.

use chrono::{DateTime, Utc};
use futures::future::join_all;

use chrono::NaiveDate;

use super::{
    corporate::{CorporateAction, FundamentalPoint},
    types::{Instrument, Interval, Kline, OrderBook, Quote, Tick},
};
use crate::{error::AppError, reference::Symbol};

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
    /// The source is down as finql sees it: its circuit breaker is open, it failed, or it did
    /// not answer within the request's time budget (`market::health`). The text names the
    /// source and its state only, so it may be shown to clients.
    Down(String),
}

impl SourceError {
    /// The kind of failure, without its text (which may carry a URL): a metric's `outcome`, a
    /// report's reason.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Down(_) => "down",
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "source unavailable: {m}"),
            Self::Unauthorized(m) => write!(f, "source rejected the credentials: {m}"),
            Self::NotFound(m) => write!(f, "not found at the source: {m}"),
            Self::Invalid(m) => write!(f, "invalid answer from the source: {m}"),
            Self::Down(m) => write!(f, "source down: {m}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// What a request asked a source for, which names it in the message a failure gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Quotes, klines, order books, ticks.
    MarketData,
    /// Corporate actions and fundamentals.
    ReferenceData,
}

/// A source's failure on one instrument, with what was asked of it: the context a
/// [`SourceError`] needs to become the [`AppError`] a client sees (through the one `From`
/// below). Made with [`SourceError::about`].
#[derive(Debug)]
pub struct SourceFailure<'a> {
    asked: Asked,
    symbol: &'a Symbol,
    error: SourceError,
}

impl SourceError {
    /// This failure, as met when asking for `symbol`'s `asked` data.
    pub fn about(self, symbol: &Symbol, asked: Asked) -> SourceFailure<'_> {
        SourceFailure { asked, symbol, error: self }
    }
}

/// The one place a `SourceError` becomes an `AppError` (`error`'s guide lists the codes):
/// `NotFound` is `NOT_FOUND`, everything else `UPSTREAM_UNAVAILABLE`. Only `Down`'s text (the
/// source and its state) is shown; the provider's own text of the others may hold a URL or
/// worse, so it is logged instead.
impl From<SourceFailure<'_>> for AppError {
    fn from(SourceFailure { asked, symbol, error }: SourceFailure<'_>) -> Self {
        let data = match asked {
            Asked::MarketData => "market data",
            Asked::ReferenceData => "reference data",
        };
        match error {
            SourceError::NotFound(_) => AppError::NotFound(match asked {
                Asked::MarketData => format!("the market source does not know `{symbol}`"),
                Asked::ReferenceData => format!("the market source has no reference data for `{symbol}`"),
            }),
            SourceError::Down(state) => AppError::UpstreamUnavailable(format!(
                "{data} for `{symbol}` is unavailable right now ({state}); retry shortly"
            )),
            SourceError::Unavailable(_) | SourceError::Unauthorized(_) | SourceError::Invalid(_) => {
                match asked {
                    Asked::MarketData => tracing::warn!(%symbol, %error, "market source failed"),
                    Asked::ReferenceData => tracing::warn!(%symbol, %error, "reference data source failed"),
                }
                AppError::UpstreamUnavailable(format!("{data} for `{symbol}` is unavailable right now; retry shortly"))
            }
        }
    }
}

#[async_trait::async_trait]
pub trait MarketSource: Send + Sync + 'static {
    /// Short name, reported as `Quote.source` (`simulated`, `itick`).
    fn name(&self) -> &'static str;

    /// How many instruments one `quotes` call may carry (the upstream's batch limit).
    fn batch_limit(&self) -> usize;

    /// Whether closed bars from this source may be stored as its history (keyed by `name`).
    /// A source that cannot say which provider answered must not.
    fn keeps_history(&self) -> bool {
        true
    }

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

    /// Splits and cash dividends, oldest first; an empty list when the source has none (forex,
    /// indices and crypto have no corporate actions). Required rather than defaulted, so that a
    /// wrapper around a source cannot silently drop them.
    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError>;

    /// Valuation figures for the days from `from` to `to` (inclusive) that the source has,
    /// oldest first.
    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError>;

    /// Order books of instruments grouped as for `quotes`; unknown ones are absent. By default
    /// one `order_book` call each; a source with a batch endpoint makes one call.
    async fn order_books(&self, instruments: &[Instrument], levels: usize) -> Result<Vec<OrderBook>, SourceError> {
        let books = join_all(instruments.iter().map(|i| self.order_book(i, levels))).await;
        known(books)
    }

    /// The latest `limit` bars of `interval` (the bar in progress included, oldest first) of
    /// instruments grouped as for `quotes`; unknown ones are absent. By default one `klines`
    /// call each; a source with a batch endpoint makes one call.
    async fn latest_klines(
        &self,
        instruments: &[Instrument],
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<(Symbol, Vec<Kline>)>, SourceError> {
        let series =
            join_all(instruments.iter().map(|i| async move {
                self.klines(i, interval, None, limit).await.map(|bars| (i.symbol.clone(), bars))
            }))
            .await;
        known(series)
    }
}

/// The answers of per-instrument calls standing in for one batch call: what the source does
/// not know is left out, and any other failure fails the batch (as a batch call would).
fn known<T>(answers: Vec<Result<T, SourceError>>) -> Result<Vec<T>, SourceError> {
    let mut out = Vec::with_capacity(answers.len());
    for answer in answers {
        match answer {
            Ok(value) => out.push(value),
            Err(SourceError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

/// Several sources in order: each call goes to the first, and to the next only when the one
/// before it fails; a batch call (quotes, books, latest klines) also asks the next source for
/// the instruments the one before it left out (a provider that does not cover a market, a
/// ticker it does not know). Every value still says which source produced it (`Quote.source`).
///
/// Within a request's upstream budget (`market::health`) each source gets an equal share of
/// the time left when its turn comes, so a silent primary leaves the fallback time to answer;
/// a source whose breaker is open fails at once and leaves it all.
pub struct FallbackSource {
    sources: Vec<std::sync::Arc<dyn MarketSource>>,
}

impl FallbackSource {
    pub fn new(sources: Vec<std::sync::Arc<dyn MarketSource>>) -> Self {
        Self { sources }
    }

    async fn first_success<'a, T, F>(&'a self, call: F) -> Result<T, SourceError>
    where
        F: Fn(&'a dyn MarketSource) -> futures::future::BoxFuture<'a, Result<T, SourceError>>,
    {
        let mut last = SourceError::Unavailable("no source configured".into());
        let count = self.sources.len();
        for (index, source) in self.sources.iter().enumerate() {
            let answer = super::health::in_turn(index, count, call(source.as_ref())).await;
            match answer {
                Ok(value) => return Ok(value),
                Err(err) => {
                    tracing::warn!(source = source.name(), error = %err, "market source failed; trying the next");
                    last = err;
                }
            }
        }
        Err(last)
    }

    /// A batch call through the sources in order, each asked for what the ones before it did
    /// not answer (`symbol` names a value's instrument). Fails only when no source answered at
    /// all (then with the last error); what none knows is left out, as a batch call leaves it.
    async fn each_missing<T, F>(
        &self,
        instruments: &[Instrument],
        symbol: fn(&T) -> &Symbol,
        call: F,
    ) -> Result<Vec<T>, SourceError>
    where
        F: for<'b> Fn(
            &'b dyn MarketSource,
            &'b [Instrument],
        ) -> futures::future::BoxFuture<'b, Result<Vec<T>, SourceError>>,
    {
        let mut remaining = instruments.to_vec();
        let mut values = Vec::with_capacity(instruments.len());
        let mut last = None;
        let mut answered = false;
        let count = self.sources.len();
        for (index, source) in self.sources.iter().enumerate() {
            if remaining.is_empty() {
                break;
            }
            let answer = super::health::in_turn(index, count, call(source.as_ref(), &remaining)).await;
            match answer {
                Ok(found) => {
                    remaining.retain(|i| !found.iter().any(|value| *symbol(value) == i.symbol));
                    values.extend(found);
                    answered = true;
                }
                Err(err) => {
                    tracing::warn!(source = source.name(), error = %err, "market source failed; trying the next");
                    last = Some(err);
                }
            }
        }
        match last {
            Some(err) if !answered => Err(err),
            _ => Ok(values),
        }
    }
}

#[async_trait::async_trait]
impl MarketSource for FallbackSource {
    fn name(&self) -> &'static str {
        self.sources.first().map_or("none", |s| s.name())
    }

    /// Any of the sources may have answered: storing the bars under one name would mix them.
    fn keeps_history(&self) -> bool {
        false
    }

    /// The smallest limit, so a chunk fits whichever source answers it.
    fn batch_limit(&self) -> usize {
        self.sources.iter().map(|s| s.batch_limit()).min().unwrap_or(1)
    }

    async fn quotes(&self, instruments: &[Instrument]) -> Result<Vec<Quote>, SourceError> {
        self.each_missing(instruments, |q: &Quote| &q.symbol, |s, i| s.quotes(i)).await
    }

    async fn klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Kline>, SourceError> {
        self.first_success(|s| s.klines(instrument, interval, end, limit)).await
    }

    async fn order_book(&self, instrument: &Instrument, levels: usize) -> Result<OrderBook, SourceError> {
        self.first_success(|s| s.order_book(instrument, levels)).await
    }

    async fn ticks(&self, instrument: &Instrument, limit: usize) -> Result<Vec<Tick>, SourceError> {
        self.first_success(|s| s.ticks(instrument, limit)).await
    }

    async fn order_books(&self, instruments: &[Instrument], levels: usize) -> Result<Vec<OrderBook>, SourceError> {
        self.each_missing(instruments, |b: &OrderBook| &b.symbol, |s, i| s.order_books(i, levels)).await
    }

    async fn latest_klines(
        &self,
        instruments: &[Instrument],
        interval: Interval,
        limit: usize,
    ) -> Result<Vec<(Symbol, Vec<Kline>)>, SourceError> {
        self.each_missing(
            instruments,
            |(symbol, _): &(Symbol, Vec<Kline>)| symbol,
            |s, i| s.latest_klines(i, interval, limit),
        )
        .await
    }

    async fn corporate_actions(&self, instrument: &Instrument) -> Result<Vec<CorporateAction>, SourceError> {
        self.first_success(|s| s.corporate_actions(instrument)).await
    }

    async fn fundamentals(
        &self,
        instrument: &Instrument,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FundamentalPoint>, SourceError> {
        self.first_success(|s| s.fundamentals(instrument, from, to)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// What a provider may put in its own text: none of it reaches a client.
    const PROVIDER_TEXT: &str = "GET https://api.itick.org/stock/quote?token=s3cret: 502";

    #[test]
    fn each_source_error_has_one_code_and_never_shows_the_providers_text() {
        let symbol = Symbol::parse("AAPL.US").unwrap();
        let cases = [
            (SourceError::NotFound(PROVIDER_TEXT.into()), ErrorCode::NotFound),
            (SourceError::Unavailable(PROVIDER_TEXT.into()), ErrorCode::UpstreamUnavailable),
            (SourceError::Unauthorized(PROVIDER_TEXT.into()), ErrorCode::UpstreamUnavailable),
            (SourceError::Invalid(PROVIDER_TEXT.into()), ErrorCode::UpstreamUnavailable),
        ];
        for (error, code) in cases {
            for asked in [Asked::MarketData, Asked::ReferenceData] {
                let shown = AppError::from(error.clone().about(&symbol, asked));
                assert_eq!(shown.code(), code, "{error:?}");
                let message = shown.message();
                assert!(message.contains("`AAPL.US`"), "names the symbol: {message}");
                assert!(!message.contains("itick.org") && !message.contains("s3cret"), "leaks: {message}");
            }
        }
    }

    #[test]
    fn a_down_source_is_named_with_its_state() {
        let symbol = Symbol::parse("700.HK").unwrap();
        let down = SourceError::Down("itick: circuit open".into());
        let shown = AppError::from(down.clone().about(&symbol, Asked::MarketData));
        assert_eq!(shown.code(), ErrorCode::UpstreamUnavailable);
        assert_eq!(
            shown.message(),
            "market data for `700.HK` is unavailable right now (itick: circuit open); retry shortly"
        );
        let shown = AppError::from(down.about(&symbol, Asked::ReferenceData));
        assert!(shown.message().starts_with("reference data for `700.HK`"), "{}", shown.message());
    }
}
