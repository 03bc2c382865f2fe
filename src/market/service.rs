//! `MarketService`: what resolvers call. Between them and the sources it:
//! - resolves symbols to catalog instruments (cached for a day: reference data changes rarely);
//! - caches quotes briefly (`FINQL_QUOTE_TTL_MS`, default 1 s: a quote is news for about that
//!   long), closed klines without expiry (history does not change) and the bar in progress
//!   briefly;
//! - batches quote fetches per (asset class, upstream region), chunked at the source's limit;
//! - makes concurrent misses for the same symbols share one upstream call (single flight);
//! - checks every value before serving it (`validate`: no high < low, no negative price, no
//!   future time), and drops the volume a source reports for what nothing trades (an index:
//!   `types::trades_volume`);
//! - refuses an index's order book (indices have none) before asking any source;
//! - when the source fails, serves the last known quote marked `stale` while it is younger than
//!   `FINQL_MAX_STALE_SECS`, and otherwise answers `UPSTREAM_UNAVAILABLE`;
//! - waits for the source at most `FINQL_UPSTREAM_BUDGET_MS` per request (`health`): every
//!   upstream call runs under one deadline, retries and fallback sources included, so a dead
//!   upstream costs a request its budget at most, and nothing at all once the source's circuit
//!   breaker is open. With a shared cache, the time of one Redis call is kept back from the
//!   budget so that looking up the last known quote still fits in it;
//! - while the sources are failing (no source's breaker is cleanly closed: `SourceHealth`),
//!   answers an expired quote from its last known value (`stale`) at once, instead of making
//!   the request wait for the refresh: the refresh still runs (a batch is driven by a task of
//!   its own, not by its waiters), and its answer serves the next request. Without this,
//!   every request for a symbol would queue behind each failing refresh and each half-open
//!   probe, and a dead upstream would cut warm-cache throughput by the budget's length.
//!
//! The caches are in-process (moka); with `REDIS_URL`, quotes also go through a second level
//! shared by all replicas (`shared_cache`).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::{
    FutureExt,
    future::{BoxFuture, Shared, join_all},
};
use moka::future::Cache;

use super::{
    crosscheck::{self, CrossCheck},
    health::{self, SourceHealth},
    history::{Fetched, KlineHistory, Series},
    shared_cache::SharedQuotes,
    source::{Asked, MarketSource, SourceError},
    types::{Instrument, Interval, Kline, OrderBook, Quote, Tick, strip_untraded_volume},
    validate,
};
use crate::{
    error::{AppError, AppResult},
    metrics::{Lookup, cache_lookup, hit_or_miss},
    reference::{ReferenceService, Symbol, service::AssetClass},
};

/// Settings of the market-data layer.
#[derive(Clone, Debug)]
pub struct MarketConfig {
    pub quote_ttl: Duration,
    pub max_stale: Duration,
    /// `FINQL_UPSTREAM_BUDGET_MS`: the most a request waits for the source.
    pub upstream_budget: Duration,
}

type BatchResult = Result<Arc<HashMap<Symbol, Quote>>, SourceError>;
/// Closed bars by (symbol, interval, end of window, bar count).
type ClosedKlineKey = (Symbol, Interval, DateTime<Utc>, usize);
type SharedBatch = Shared<BoxFuture<'static, BatchResult>>;

/// Bounds of the caches: enough for every instrument many times over, small in memory.
const INSTRUMENT_CACHE: u64 = 10_000;
const QUOTE_CACHE: u64 = 100_000;
const KLINE_CACHE: u64 = 20_000;
/// A delayed quote is built from whole minutes, so it changes once a minute: kept that long
/// (and a little more, so the last requests of a minute never rebuild it).
const DELAYED_QUOTE_TTL: Duration = Duration::from_secs(75);

#[derive(Clone)]
pub struct MarketService {
    inner: Arc<Inner>,
    /// What entitlements measure delays and history against (`entitlements::Grant::now`):
    /// the wall clock, or a test's ([`Self::with_clock`]), set with the source's clock so
    /// that "fifteen minutes ago" means the same moment to both.
    clock: Clock,
    /// Each configured source by name, for a field's `source` argument (`market::pinned`).
    pinnable: Arc<HashMap<&'static str, Arc<dyn MarketSource>>>,
    /// The sampled T+0 check of fetched quotes and bars against another source.
    cross_check: CrossCheck,
}

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

struct Inner {
    source: Arc<dyn MarketSource>,
    shared: Option<SharedQuotes>,
    /// Closed klines in the database (`None` in unit tests without one).
    history: Option<KlineHistory>,
    reference: ReferenceService,
    instruments: Cache<Symbol, Instrument>,
    quotes: Cache<Symbol, Quote>,
    last_known: Cache<Symbol, Quote>,
    closed_klines: Cache<ClosedKlineKey, Arc<Vec<Kline>>>,
    live_klines: Cache<(Symbol, Interval, usize), Arc<Vec<Kline>>>,
    books: Cache<(Symbol, usize), OrderBook>,
    /// Delayed quotes by (symbol, minute of the cutoff): see `delayed`.
    delayed_quotes: Cache<(Symbol, DateTime<Utc>), Quote>,
    in_flight: Mutex<HashMap<Symbol, SharedBatch>>,
    rejected: AtomicU64,
    /// How long a fetch may wait for the source (the budget less a Redis call, see above).
    source_budget: Duration,
    /// The sources' circuit breakers.
    health: SourceHealth,
}

impl MarketService {
    pub fn new(
        source: Arc<dyn MarketSource>,
        shared: Option<SharedQuotes>,
        history: Option<KlineHistory>,
        reference: ReferenceService,
        config: MarketConfig,
        health: SourceHealth,
    ) -> Self {
        let inner = Inner {
            instruments: Cache::builder()
                .max_capacity(INSTRUMENT_CACHE)
                .time_to_live(Duration::from_secs(86_400))
                .build(),
            quotes: Cache::builder().max_capacity(QUOTE_CACHE).time_to_live(config.quote_ttl).build(),
            last_known: Cache::builder().max_capacity(QUOTE_CACHE).time_to_live(config.max_stale).build(),
            closed_klines: Cache::builder().max_capacity(KLINE_CACHE).build(),
            // The bar in progress changes with every trade: cache it as briefly as a quote.
            live_klines: Cache::builder().max_capacity(KLINE_CACHE).time_to_live(config.quote_ttl).build(),
            books: Cache::builder().max_capacity(QUOTE_CACHE).time_to_live(config.quote_ttl).build(),
            delayed_quotes: Cache::builder().max_capacity(QUOTE_CACHE).time_to_live(DELAYED_QUOTE_TTL).build(),
            in_flight: Mutex::new(HashMap::new()),
            rejected: AtomicU64::new(0),
            source_budget: match &shared {
                // Never less than half the budget, whatever the Redis timeout.
                Some(shared) => config.upstream_budget.saturating_sub(shared.timeout()).max(config.upstream_budget / 2),
                None => config.upstream_budget,
            },
            source,
            shared,
            history,
            reference,
            health,
        };
        Self {
            inner: Arc::new(inner),
            clock: Arc::new(Utc::now),
            pinnable: Arc::default(),
            cross_check: CrossCheck::off(),
        }
    }

    /// The service with fetched quotes and bars checked by `cross_check` (`market::crosscheck`).
    pub fn with_cross_check(self, cross_check: CrossCheck) -> Self {
        Self { cross_check, ..self }
    }

    /// What the T+0 check found about a closed bar of `symbol`'s `interval` series.
    pub fn bar_divergence(
        &self,
        symbol: &Symbol,
        interval: Interval,
        bar: &Kline,
    ) -> Option<crosscheck::BarDivergence> {
        self.cross_check.bar_divergence(symbol, interval, bar)
    }

    /// What the T+0 check found about a quote being served.
    pub fn divergence(&self, quote: &Quote) -> Option<crosscheck::Divergence> {
        self.cross_check.divergence(quote)
    }

    /// The same service, with `sources` (each configured source by name, behind its breaker)
    /// open to a field's `source` argument.
    pub fn with_pinnable(self, sources: HashMap<&'static str, Arc<dyn MarketSource>>) -> Self {
        Self { pinnable: Arc::new(sources), ..self }
    }

    /// The configured source named `name`, for a pinned call.
    pub(super) fn pinnable(&self, name: &str) -> Option<&Arc<dyn MarketSource>> {
        self.pinnable.get(name)
    }

    /// The same service on another clock (tests: one shared with a simulated source).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// A deadline for work that may make several upstream calls: the one in force, or the
    /// source budget from now (run the work under it with `health::within`).
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        health::deadline().unwrap_or_else(|| tokio::time::Instant::now() + self.inner.source_budget)
    }

    /// The cache of delayed quotes (`delayed`).
    pub(super) fn delayed_quotes(&self) -> &Cache<(Symbol, DateTime<Utc>), Quote> {
        &self.inner.delayed_quotes
    }

    /// The source's short name (`Quote.source`).
    pub fn source_name(&self) -> &'static str {
        self.inner.source.name()
    }

    /// Values refused by validation since start (for observability).
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// The catalog entry behind a symbol, or NOT_FOUND naming it.
    pub async fn instrument(&self, symbol: &Symbol) -> AppResult<Instrument> {
        if let Some(found) = self.inner.instruments.get(symbol).await {
            return Ok(found);
        }
        let instrument = Instrument::of(self.inner.reference.security(symbol).await?)?;
        self.inner.instruments.insert(symbol.clone(), instrument.clone()).await;
        Ok(instrument)
    }

    /// Quotes for many symbols at once: cache first, then one upstream call per (asset class,
    /// region) chunk for the rest, shared with any concurrent request for the same symbols.
    #[tracing::instrument(name = "market.quotes", skip_all, fields(symbols = symbols.len()))]
    pub async fn quotes(&self, symbols: &[Symbol]) -> HashMap<Symbol, AppResult<Quote>> {
        let mut results = HashMap::with_capacity(symbols.len());
        let mut missing = Vec::new();
        for symbol in symbols {
            if results.contains_key(symbol) {
                continue;
            }
            let cached = self.inner.quotes.get(symbol).await;
            cache_lookup("quotes", hit_or_miss(cached.is_some()));
            match cached {
                Some(quote) => {
                    results.insert(symbol.clone(), Ok(quote));
                }
                None => match self.instrument(symbol).await {
                    Ok(instrument) => missing.push(instrument),
                    Err(err) => {
                        results.insert(symbol.clone(), Err(err));
                    }
                },
            }
        }
        if let Some(shared) = &self.inner.shared
            && !missing.is_empty()
        {
            let symbols: Vec<Symbol> = missing.iter().map(|i| i.symbol.clone()).collect();
            // A replica of an earlier release may have stored an index quote with a volume.
            let found: HashMap<Symbol, Quote> = shared
                .fresh(&symbols)
                .await
                .into_iter()
                .map(|(symbol, quote)| (symbol, quote.without_untraded_volume()))
                .collect();
            for symbol in &symbols {
                cache_lookup("redis", hit_or_miss(found.contains_key(symbol)));
            }
            for quote in found.values() {
                self.inner.quotes.insert(quote.symbol.clone(), quote.clone()).await;
                self.inner.last_known.insert(quote.symbol.clone(), quote.clone()).await;
            }
            missing.retain(|i| !found.contains_key(&i.symbol));
            results.extend(found.into_iter().map(|(symbol, quote)| (symbol, Ok(quote))));
        }
        if missing.is_empty() {
            return results;
        }
        let mut waits = self.join_or_start_batches(missing);
        if self.inner.health.degraded() {
            // Failing sources: whatever has a last known value is answered now (see above).
            for (symbols, _) in &mut waits {
                let mut waiting = Vec::with_capacity(symbols.len());
                for symbol in symbols.drain(..) {
                    match self.inner.last_known.get(&symbol).await {
                        Some(quote) => {
                            cache_lookup("quotes", Lookup::Stale);
                            results.insert(symbol, Ok(Quote { stale: true, ..quote }));
                        }
                        None => waiting.push(symbol),
                    }
                }
                *symbols = waiting;
            }
            waits.retain(|(symbols, _)| !symbols.is_empty());
        }
        let outcomes = join_all(waits.into_iter().map(|(symbols, batch)| async move { (symbols, batch.await) })).await;
        for (symbols, outcome) in outcomes {
            for symbol in symbols {
                let result = match &outcome {
                    Ok(quotes) => match quotes.get(&symbol) {
                        Some(quote) => Ok(quote.clone()),
                        None => Err(AppError::NotFound(format!("the market source has no quote for `{symbol}`"))),
                    },
                    Err(err) => self.stale_or_unavailable(&symbol, err).await,
                };
                results.insert(symbol, result);
            }
        }
        results
    }

    pub async fn quote(&self, symbol: &Symbol) -> AppResult<Quote> {
        let mut all = self.quotes(std::slice::from_ref(symbol)).await;
        all.remove(symbol)
            .unwrap_or_else(|| Err(AppError::internal(anyhow::anyhow!("quote for {symbol} went missing"))))
    }

    /// For each missing instrument, the batch that will answer it: one already in flight, or a
    /// new one per (asset class, region) chunk. Returns (symbols, batch) pairs to await.
    fn join_or_start_batches(&self, missing: Vec<Instrument>) -> Vec<(Vec<Symbol>, SharedBatch)> {
        let mut in_flight = self.inner.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut waits: Vec<(Vec<Symbol>, SharedBatch)> = Vec::new();
        let mut groups: HashMap<(crate::reference::service::AssetClass, String), Vec<Instrument>> = HashMap::new();
        for instrument in missing {
            if let Some(batch) = in_flight.get(&instrument.symbol) {
                // One entry per distinct batch, so each is awaited once.
                match waits.iter_mut().find(|(_, waiting)| waiting.ptr_eq(batch)) {
                    Some((symbols, _)) => symbols.push(instrument.symbol),
                    None => waits.push((vec![instrument.symbol], batch.clone())),
                }
            } else {
                groups.entry((instrument.asset_class, instrument.region.clone())).or_default().push(instrument);
            }
        }
        let limit = self.inner.source.batch_limit().max(1);
        for (_, instruments) in groups {
            for chunk in instruments.chunks(limit) {
                let chunk = chunk.to_vec();
                let symbols: Vec<Symbol> = chunk.iter().map(|i| i.symbol.clone()).collect();
                // In the span of the request that started it: waiters that join later share
                // its upstream call, which belongs to the first request's trace.
                let batch = tracing::Instrument::in_current_span(self.fetch_batch(chunk)).boxed().shared();
                for symbol in &symbols {
                    in_flight.insert(symbol.clone(), batch.clone());
                }
                // Driven to its end by a task of its own, even when every waiter went (served
                // stale, or gave up): its answer fills the cache for the next request.
                tokio::spawn(batch.clone());
                waits.push((symbols, batch));
            }
        }
        waits
    }

    fn fetch_batch(&self, chunk: Vec<Instrument>) -> impl std::future::Future<Output = BatchResult> + Send + 'static {
        let service = self.clone();
        async move {
            let fetched = service.upstream("quotes", service.inner.source.quotes(&chunk)).await;
            let mut answer = HashMap::new();
            let mut valid = Vec::new();
            if let Ok(quotes) = &fetched {
                let now = Utc::now();
                for quote in quotes {
                    let Some(quote) = &service.valid_quote(quote.clone(), now) else { continue };
                    service.inner.quotes.insert(quote.symbol.clone(), quote.clone()).await;
                    service.inner.last_known.insert(quote.symbol.clone(), quote.clone()).await;
                    answer.insert(quote.symbol.clone(), quote.clone());
                    valid.push(quote.clone());
                }
            }
            service.cross_check.sample(&chunk, &valid);
            if let Some(shared) = &service.inner.shared {
                shared.store(&valid).await;
            }
            {
                let mut in_flight = service.inner.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for instrument in &chunk {
                    in_flight.remove(&instrument.symbol);
                }
            }
            match fetched {
                Ok(_) => Ok(Arc::new(answer)),
                Err(err) => {
                    tracing::warn!(source = service.inner.source.name(), error = %err, "quote batch failed");
                    Err(err)
                }
            }
        }
    }

    async fn stale_or_unavailable(&self, symbol: &Symbol, err: &SourceError) -> AppResult<Quote> {
        let mut last = self.inner.last_known.get(symbol).await;
        if last.is_none()
            && let Some(shared) = &self.inner.shared
        {
            last = shared.last_known(symbol).await.map(Quote::without_untraded_volume);
        }
        if let Some(mut quote) = last {
            cache_lookup("quotes", Lookup::Stale);
            quote.stale = true;
            return Ok(quote);
        }
        Err(err.clone().about(symbol, Asked::MarketData).into())
    }

    /// Up to `limit` bars of `interval` starting before `end` (default now, which includes the
    /// bar in progress), oldest first. Closed bars come from the database where stored
    /// (`history`), and only the rest from the source.
    #[tracing::instrument(name = "market.klines", skip_all)]
    pub async fn klines(
        &self,
        symbol: &Symbol,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> AppResult<Arc<Vec<Kline>>> {
        // One budget for every upstream call this may make (recent bars, then older ones).
        let deadline = tokio::time::Instant::now() + self.inner.source_budget;
        health::within(deadline, self.klines_within_budget(symbol, interval, end, limit)).await
    }

    async fn klines_within_budget(
        &self,
        symbol: &Symbol,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> AppResult<Arc<Vec<Kline>>> {
        let instrument = self.instrument(symbol).await?;
        let current = interval.bar_start(Utc::now());
        let series = Series { source: self.inner.source.name(), symbol, interval };
        let history = self.inner.history.as_ref().filter(|_| self.inner.source.keeps_history());
        let fetch = |end: DateTime<Utc>, n: usize| self.fetch_klines(&instrument, interval, Some(end), n);
        // A window that ends before the current bar starts holds only closed bars: history.
        let closed_end = end.map(|e| interval.bar_start(e)).filter(|e| *e <= current);
        if let Some(end) = closed_end {
            let key = (symbol.clone(), interval, end, limit);
            let cached = self.inner.closed_klines.get(&key).await;
            cache_lookup("klines", hit_or_miss(cached.is_some()));
            if let Some(hit) = cached {
                return Ok(hit);
            }
            let bars = Arc::new(self.closed_window(&instrument, interval, end, limit).await?);
            self.inner.closed_klines.insert(key, bars.clone()).await;
            return Ok(bars);
        }
        let key = (symbol.clone(), interval, limit);
        let cached = self.inner.live_klines.get(&key).await;
        cache_lookup("klines", hit_or_miss(cached.is_some()));
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let mut bars = match history {
            None => self.fetch_klines(&instrument, interval, None, limit).await?.bars,
            Some(history) => {
                // Only the bars since stored history ends, and the one in progress.
                let asked = history.recent_gap(&series, current, limit).await;
                let recent = self.fetch_klines(&instrument, interval, None, asked).await?;
                history.save_recent(&series, &recent, current).await;
                let short = recent.bars.len() < asked;
                let mut bars = recent.bars;
                if bars.len() < limit && !short {
                    let first = bars.first().map_or(current, |bar| bar.time.min(current));
                    let mut older = history.closed_window(&series, first, limit - bars.len(), fetch).await?;
                    older.append(&mut bars);
                    bars = older;
                }
                bars
            }
        };
        strip_untraded_volume(symbol, &mut bars);
        let bars = Arc::new(bars);
        self.inner.live_klines.insert(key, bars.clone()).await;
        Ok(bars)
    }

    /// Up to `limit` closed bars starting before `end` (a bar start, not after the current
    /// bar's), oldest first: from stored history where it has them, the rest from the source.
    /// Not cached here: [`Self::klines`] caches the windows clients page through, while a
    /// delayed quote (`delayed`) asks for a new window every minute and caches its answer.
    pub(super) async fn closed_window(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: DateTime<Utc>,
        limit: usize,
    ) -> AppResult<Vec<Kline>> {
        let symbol = &instrument.symbol;
        let series = Series { source: self.inner.source.name(), symbol, interval };
        let fetch = |end: DateTime<Utc>, n: usize| self.fetch_klines(instrument, interval, Some(end), n);
        let mut bars = match self.inner.history.as_ref().filter(|_| self.inner.source.keeps_history()) {
            Some(history) => history.closed_window(&series, end, limit, fetch).await?,
            None => fetch(end, limit).await?.bars,
        };
        // Also for bars stored before indices lost their volume.
        strip_untraded_volume(symbol, &mut bars);
        Ok(bars)
    }

    async fn fetch_klines(
        &self,
        instrument: &Instrument,
        interval: Interval,
        end: Option<DateTime<Utc>>,
        limit: usize,
    ) -> AppResult<Fetched> {
        let bars = self
            .upstream("klines", self.inner.source.klines(instrument, interval, end, limit))
            .await
            .map_err(|err| err.about(&instrument.symbol, Asked::MarketData))?;
        let (mut valid, had_rejects) = self.valid_bars(&instrument.symbol, bars);
        if let Some(end) = end {
            valid.retain(|bar| bar.time < end);
        }
        self.cross_check.sample_bars(instrument, interval, &valid);
        Ok(Fetched { bars: valid, asked: limit, had_rejects })
    }

    /// `quote` as served (no volume where nothing trades), if it passes validation; refused
    /// ones are counted and logged.
    pub(super) fn valid_quote(&self, quote: Quote, now: DateTime<Utc>) -> Option<Quote> {
        let quote = quote.without_untraded_volume();
        match validate::quote(&quote, now) {
            Ok(()) => Some(quote),
            Err(reason) => {
                self.reject("quote", quote.source, &quote.symbol, &reason);
                None
            }
        }
    }

    /// Validated bars, oldest first, one per start; and whether any was refused.
    pub(super) fn valid_bars(&self, symbol: &Symbol, bars: Vec<Kline>) -> (Vec<Kline>, bool) {
        let now = Utc::now();
        let received = bars.len();
        let mut valid: Vec<Kline> = Vec::with_capacity(bars.len());
        for bar in bars {
            match validate::kline(&bar, now) {
                Ok(()) => valid.push(bar),
                Err(reason) => self.reject("kline", bar.source, symbol, &reason),
            }
        }
        let had_rejects = valid.len() < received;
        strip_untraded_volume(symbol, &mut valid);
        valid.sort_by_key(|bar| bar.time);
        valid.dedup_by_key(|bar| bar.time);
        (valid, had_rejects)
    }

    /// The latest `limit` bars (the one in progress included) of many instruments: one
    /// upstream call per (asset class, region) chunk for those not cached. A lone instrument
    /// takes the [`Self::klines`] path instead, which asks only for the bars storage lacks.
    #[tracing::instrument(name = "market.latest_klines", skip_all)]
    pub async fn latest_klines(
        &self,
        symbols: &[Symbol],
        interval: Interval,
        limit: usize,
    ) -> HashMap<Symbol, AppResult<Arc<Vec<Kline>>>> {
        let mut results = HashMap::with_capacity(symbols.len());
        let mut missing = Vec::new();
        for symbol in symbols {
            let cached = self.inner.live_klines.get(&(symbol.clone(), interval, limit)).await;
            // A lone miss is counted again by `klines`, which it falls through to.
            if cached.is_some() {
                cache_lookup("klines", Lookup::Hit);
            }
            if let Some(hit) = cached {
                results.insert(symbol.clone(), Ok(hit));
                continue;
            }
            match self.instrument(symbol).await {
                Ok(instrument) => missing.push(instrument),
                Err(err) => {
                    results.insert(symbol.clone(), Err(err));
                }
            }
        }
        if missing.len() == 1 {
            let symbol = missing[0].symbol.clone();
            let bars = self.klines(&symbol, interval, None, limit).await;
            results.insert(symbol, bars);
            return results;
        }
        for _ in &missing {
            cache_lookup("klines", Lookup::Miss);
        }
        let current = interval.bar_start(Utc::now());
        let chunks = self.chunks(missing);
        let answers = join_all(
            chunks.iter().map(|chunk| self.upstream("klines", self.inner.source.latest_klines(chunk, interval, limit))),
        )
        .await;
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            let mut found: HashMap<Symbol, Vec<Kline>> = match answer {
                Ok(series) => series.into_iter().collect(),
                Err(err) => {
                    for instrument in chunk {
                        let err = err.clone().about(&instrument.symbol, Asked::MarketData).into();
                        results.insert(instrument.symbol, Err(err));
                    }
                    continue;
                }
            };
            for instrument in chunk {
                let symbol = instrument.symbol;
                let Some(bars) = found.remove(&symbol) else {
                    let err = SourceError::NotFound(String::new()).about(&symbol, Asked::MarketData).into();
                    results.insert(symbol, Err(err));
                    continue;
                };
                let (bars, had_rejects) = self.valid_bars(&symbol, bars);
                let fetched = Fetched { bars, asked: limit, had_rejects };
                if let Some(history) = self.inner.history.as_ref().filter(|_| self.inner.source.keeps_history()) {
                    let series = Series { source: self.inner.source.name(), symbol: &symbol, interval };
                    history.save_recent(&series, &fetched, current).await;
                }
                let bars = Arc::new(fetched.bars);
                self.inner.live_klines.insert((symbol.clone(), interval, limit), bars.clone()).await;
                results.insert(symbol, Ok(bars));
            }
        }
        results
    }

    /// Order books of many instruments, `levels` deep: one upstream call per (asset class,
    /// region) chunk for those not cached (books are cached as briefly as quotes).
    #[tracing::instrument(name = "market.order_books", skip_all, fields(symbols = symbols.len(), levels))]
    pub async fn order_books(&self, symbols: &[Symbol], levels: usize) -> HashMap<Symbol, AppResult<OrderBook>> {
        let mut results = HashMap::with_capacity(symbols.len());
        let mut missing = Vec::new();
        for symbol in symbols {
            let cached = self.inner.books.get(&(symbol.clone(), levels)).await;
            cache_lookup("books", hit_or_miss(cached.is_some()));
            if let Some(hit) = cached {
                results.insert(symbol.clone(), Ok(hit));
                continue;
            }
            match self.instrument(symbol).await.and_then(require_order_book) {
                Ok(instrument) => missing.push(instrument),
                Err(err) => {
                    results.insert(symbol.clone(), Err(err));
                }
            }
        }
        let chunks = self.chunks(missing);
        let answers = join_all(chunks.iter().map(|chunk| async move {
            match chunk.as_slice() {
                // One instrument: the single endpoint.
                [one] => {
                    self.upstream("order_book", self.inner.source.order_book(one, levels)).await.map(|book| vec![book])
                }
                many => self.upstream("order_book", self.inner.source.order_books(many, levels)).await,
            }
        }))
        .await;
        for (chunk, answer) in chunks.into_iter().zip(answers) {
            let mut found: HashMap<Symbol, OrderBook> = match answer {
                Ok(books) => books.into_iter().map(|book| (book.symbol.clone(), book)).collect(),
                Err(err) => {
                    for instrument in chunk {
                        let err = err.clone().about(&instrument.symbol, Asked::MarketData).into();
                        results.insert(instrument.symbol, Err(err));
                    }
                    continue;
                }
            };
            for instrument in chunk {
                let symbol = instrument.symbol;
                let result = match found.remove(&symbol) {
                    None => Err(SourceError::NotFound(String::new()).about(&symbol, Asked::MarketData).into()),
                    Some(book) => match validate::order_book(&book, Utc::now()) {
                        Err(reason) => {
                            self.reject("order_book", self.inner.source.name(), &symbol, &reason);
                            Err(AppError::UpstreamUnavailable(format!(
                                "the market source sent an invalid order book for `{symbol}`"
                            )))
                        }
                        Ok(()) => {
                            self.inner.books.insert((symbol.clone(), levels), book.clone()).await;
                            Ok(book)
                        }
                    },
                };
                results.insert(symbol, result);
            }
        }
        results
    }

    pub async fn order_book(&self, symbol: &Symbol, levels: usize) -> AppResult<OrderBook> {
        let mut all = self.order_books(std::slice::from_ref(symbol), levels).await;
        all.remove(symbol)
            .unwrap_or_else(|| Err(AppError::internal(anyhow::anyhow!("order book for {symbol} went missing"))))
    }

    /// Instruments grouped by (asset class, upstream region), chunked at the source's limit.
    fn chunks(&self, instruments: Vec<Instrument>) -> Vec<Vec<Instrument>> {
        chunks(instruments, self.inner.source.batch_limit())
    }

    #[tracing::instrument(name = "market.ticks", skip_all, fields(limit))]
    pub async fn ticks(&self, symbol: &Symbol, limit: usize) -> AppResult<Vec<Tick>> {
        self.ticks_of(self.inner.source.as_ref(), symbol, limit).await
    }

    /// `symbol`'s latest `limit` trades from `source` (the configured one, or one pinned),
    /// those that pass validation.
    pub(super) async fn ticks_of(
        &self,
        source: &dyn MarketSource,
        symbol: &Symbol,
        limit: usize,
    ) -> AppResult<Vec<Tick>> {
        let instrument = self.instrument(symbol).await?;
        let ticks = self
            .upstream("ticks", source.ticks(&instrument, limit))
            .await
            .map_err(|err| err.about(symbol, Asked::MarketData))?;
        let now = Utc::now();
        Ok(ticks
            .into_iter()
            .filter(|tick| match validate::tick(tick, now) {
                Ok(()) => true,
                Err(reason) => {
                    self.reject("tick", tick.source, symbol, &reason);
                    false
                }
            })
            .collect())
    }

    /// One upstream call under the request's deadline (started now unless one is in force):
    /// cut off with [`SourceError::Down`] when it passes, whatever the source does. Each
    /// provider it reaches counts and times its own part (`market::health::GuardedSource`);
    /// `endpoint` names the span's work.
    #[tracing::instrument(name = "market.upstream", skip_all, fields(source = self.inner.source.name(), endpoint = endpoint))]
    pub(super) async fn upstream<T>(
        &self,
        endpoint: &'static str,
        call: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let deadline = health::deadline().unwrap_or_else(|| tokio::time::Instant::now() + self.inner.source_budget);
        match tokio::time::timeout_at(deadline, health::within(deadline, call)).await {
            Ok(answer) => answer,
            Err(_) => Err(SourceError::Down(format!("{}: no answer within the time budget", self.inner.source.name()))),
        }
    }

    /// A value validation refused: logged, and counted as
    /// `finql_upstream_rejected_values_total{source, kind}` (`kind`: quote, kline, order book,
    /// tick; `source`: the value's own, whichever source of a route or fallback list sent it;
    /// a book, which does not carry its source, is counted under the configured one).
    pub(super) fn reject(&self, what: &'static str, source: &'static str, symbol: &Symbol, reason: &str) {
        self.inner.rejected.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("finql_upstream_rejected_values_total", "source" => source, "kind" => what).increment(1);
        tracing::warn!(source, %symbol, what, reason, "rejected market data");
    }
}

/// The instrument, if it can have an order book: an index is a computed level, with no orders
/// to match, so asking for its book is the client's mistake (`BAD_USER_INPUT`), answered without
/// asking any source.
pub fn require_order_book(instrument: Instrument) -> AppResult<Instrument> {
    if instrument.asset_class == AssetClass::Index {
        return Err(AppError::bad_field(
            "symbol",
            format!(
                "`{}` is an index, and indices have no order book (nothing trades an index itself); ask for its \
                 quote or klines, or for the book of a future or fund that tracks it",
                instrument.symbol
            ),
        ));
    }
    Ok(instrument)
}

impl MarketService {
    /// The circuit breakers of the sources, in fallback order (for health checks and routing).
    pub fn source_health(&self) -> Vec<crate::resilience::breaker::BreakerSnapshot> {
        self.inner.health.snapshots()
    }

    /// The health of Redis as the shared quote cache sees it (`None` without `REDIS_URL`).
    pub fn redis_health(&self) -> Option<crate::resilience::breaker::BreakerSnapshot> {
        self.inner.shared.as_ref().map(|shared| shared.guard().snapshot())
    }
}

/// `instruments` grouped by (asset class, upstream region), chunked at `limit`: one upstream
/// batch call each.
pub(super) fn chunks(instruments: Vec<Instrument>, limit: usize) -> Vec<Vec<Instrument>> {
    let mut groups: HashMap<(crate::reference::service::AssetClass, String), Vec<Instrument>> = HashMap::new();
    for instrument in instruments {
        groups.entry((instrument.asset_class, instrument.region.clone())).or_default().push(instrument);
    }
    let limit = limit.max(1);
    groups.into_values().flat_map(|group| group.chunks(limit).map(<[Instrument]>::to_vec).collect::<Vec<_>>()).collect()
}
