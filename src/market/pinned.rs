//! A field's `source` argument: the answer of one named source, past the routes and fallback
//! lists, for a desk that must know (or compare) what one provider says.
//!
//! A pinned call goes straight to that source (behind its breaker and the request's budget,
//! as any call), is validated as any value is, and is neither cached nor shared: a pinned
//! answer is never served to a caller who did not pin, and a cached routed answer is never
//! served as a pinned one. Pinning serves what the source has now, so it is for markets the
//! caller's plan has in real time (`graphql` checks that, and the plan's `sources`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::{
    service::{MarketService, chunks},
    source::Asked,
    types::{Interval, Kline, OrderBook, Quote, Tick},
    validate,
};
use crate::{
    error::{AppError, AppResult},
    market::MarketSource,
    reference::Symbol,
};

impl MarketService {
    /// The configured source `name`, or `BAD_USER_INPUT` naming it.
    fn pinned(&self, name: &str) -> AppResult<std::sync::Arc<dyn MarketSource>> {
        self.pinnable(name).cloned().ok_or_else(|| {
            AppError::bad_field("source", format!("the source `{name}` is not configured on this deployment"))
        })
    }

    /// The quotes of `symbols` from `source` alone, each symbol's outcome on its own: one
    /// upstream batch per (asset class, region) chunk at the source's limit, as unpinned
    /// quotes are fetched (a pinned list of 500 is a few calls, never 500).
    pub async fn quotes_from(&self, source: &str, symbols: &[Symbol]) -> AppResult<HashMap<Symbol, AppResult<Quote>>> {
        let pinned = self.pinned(source)?;
        let mut answers = HashMap::with_capacity(symbols.len());
        let mut instruments = Vec::with_capacity(symbols.len());
        for (symbol, found) in symbols.iter().zip(join_all(symbols.iter().map(|s| self.instrument(s))).await) {
            match found {
                Ok(instrument) => instruments.push(instrument),
                Err(err) => {
                    answers.insert(symbol.clone(), Err(err));
                }
            }
        }
        let chunks = chunks(instruments, pinned.batch_limit());
        let fetched = join_all(chunks.iter().map(|chunk| self.upstream("quotes", pinned.quotes(chunk)))).await;
        let now = Utc::now();
        for (chunk, fetched) in chunks.into_iter().zip(fetched) {
            let mut quotes: HashMap<Symbol, Quote> = match fetched {
                Ok(quotes) => quotes.into_iter().map(|quote| (quote.symbol.clone(), quote)).collect(),
                Err(err) => {
                    for instrument in chunk {
                        let failed = err.clone().about(&instrument.symbol, Asked::MarketData).into();
                        answers.insert(instrument.symbol, Err(failed));
                    }
                    continue;
                }
            };
            for instrument in chunk {
                let symbol = instrument.symbol;
                let outcome = match quotes.remove(&symbol) {
                    None => Err(AppError::NotFound(format!("the source `{source}` has no quote of `{symbol}`"))),
                    Some(quote) => self.valid_quote(quote, now).ok_or_else(|| {
                        AppError::UpstreamUnavailable(format!(
                            "the source `{source}` sent an invalid quote of `{symbol}`"
                        ))
                    }),
                };
                answers.insert(symbol, outcome);
            }
        }
        Ok(answers)
    }

    /// The newest `limit` bars of `symbol` from `source` alone, ending at or before `before`
    /// (the bar containing it left out), oldest first.
    pub async fn klines_from(
        &self,
        source: &str,
        symbol: &Symbol,
        interval: Interval,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> AppResult<Vec<Kline>> {
        let pinned = self.pinned(source)?;
        let instrument = self.instrument(symbol).await?;
        // A bar ends where the next starts: the bars ending by `before` are those starting
        // before the bar that holds it (the upstream's `end` excludes the bar starting at it).
        let end = before.map(|before| interval.bar_start(before));
        let bars = self
            .upstream("klines", pinned.klines(&instrument, interval, end, limit))
            .await
            .map_err(|err| err.about(symbol, Asked::MarketData))?;
        Ok(self.valid_bars(symbol, bars).0)
    }

    /// `symbol`'s order book from `source` alone, `levels` deep (an index has none: refused
    /// before any source is asked).
    pub async fn order_book_from(&self, source: &str, symbol: &Symbol, levels: usize) -> AppResult<OrderBook> {
        let pinned = self.pinned(source)?;
        let instrument = super::service::require_order_book(self.instrument(symbol).await?)?;
        let book = self
            .upstream("order_book", pinned.order_book(&instrument, levels))
            .await
            .map_err(|err| err.about(symbol, Asked::MarketData))?;
        if let Err(reason) = validate::order_book(&book, Utc::now()) {
            self.reject("order_book", pinned.name(), symbol, &reason);
            return Err(AppError::UpstreamUnavailable(format!(
                "the source `{source}` sent an invalid order book of `{symbol}`"
            )));
        }
        Ok(book)
    }

    /// The latest `limit` trades of `symbol` from `source` alone, newest last.
    pub async fn ticks_from(&self, source: &str, symbol: &Symbol, limit: usize) -> AppResult<Vec<Tick>> {
        self.ticks_of(self.pinned(source)?.as_ref(), symbol, limit).await
    }
}
