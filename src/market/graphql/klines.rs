//! `klines` (also `Security.klines`), the `Kline` type, adjustment for corporate actions, and
//! the request's latest-kline DataLoader. The window rule (`before`/`after`) is the market
//! domain's (`MarketService::klines_window`); these resolvers translate arguments.

use std::{collections::HashMap, convert::Infallible, sync::Arc};

use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, dataloader::Loader};
use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::{MarketLoaders, grant};
use crate::{
    error::{AppError, AppResult},
    graphql::{
        bounded, cache_control,
        scalars::{DecimalString, Timestamp},
        service,
    },
    market::{
        FundamentalsService,
        corporate::Adjust,
        limits::{DEFAULT_KLINES, MAX_KLINES},
        service::MarketService,
        types::{Interval, Kline},
    },
    reference::Symbol,
};

/// The length of a kline. Bars start at multiples of their length in UTC: days at midnight
/// UTC, weeks on Mondays, months on the 1st.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "KlineInterval", remote = "Interval")]
pub enum IntervalGql {
    /// 1 minute.
    OneMinute,
    /// 5 minutes.
    FiveMinutes,
    /// 15 minutes.
    FifteenMinutes,
    /// 30 minutes.
    ThirtyMinutes,
    /// 1 hour.
    OneHour,
    /// 2 hours.
    TwoHours,
    /// 4 hours.
    FourHours,
    /// 1 day (UTC).
    OneDay,
    /// 1 week, from Monday 00:00 UTC.
    OneWeek,
    /// 1 calendar month, from the 1st 00:00 UTC.
    OneMonth,
}

/// How klines are adjusted for splits and cash dividends (stocks and funds; other instruments
/// have no corporate actions and are always as traded). Adjusted open, high, low and close
/// always have 4 decimal places, rounded once, half away from zero; volumes move inversely to
/// prices for splits only, rounded half away from zero to the raw volume's decimal places
/// (whole shares stay whole); turnover is unchanged. Rounding happens at the daily bar: a week
/// or month is the exact aggregate of its adjusted days (first open, highest high, lowest low,
/// last close, sums of volume and turnover).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(name = "KlineAdjust", remote = "Adjust")]
pub enum AdjustGql {
    /// As traded (the default).
    #[default]
    None,
    /// History restated in today's terms: the latest bar is unchanged (but for its scale),
    /// earlier ones are multiplied by the factors of the ex-dates after them (split
    /// `from/to`, dividend `(prevClose - amount) / prevClose`).
    Forward,
    /// Later bars restated in the terms of the earliest price of the source's history: each bar
    /// is divided by the factors of the ex-dates on or before it.
    Backward,
}

/// One candle; `time` is its start (UTC).
#[derive(SimpleObject, Clone)]
#[graphql(name = "Kline", complex)]
pub struct KlineObject {
    /// The bar's start; it ends where the next bar starts.
    time: Timestamp,
    /// The first trade's price in the bar.
    open: DecimalString,
    /// The highest trade's price in the bar.
    high: DecimalString,
    /// The lowest trade's price in the bar.
    low: DecimalString,
    /// The last trade's price in the bar (so far, for the bar in progress).
    close: DecimalString,
    /// Units traded in the bar; null where nothing trades (indices).
    volume: Option<DecimalString>,
    /// Money traded in the bar; null where nothing trades (indices).
    turnover: Option<DecimalString>,
    /// True only on a live subscription that heard nothing newer for `FINQL_LIVE_STALE_MS`
    /// (the upstream may be down): this is the last known bar, sent again.
    stale: bool,
    #[graphql(skip)]
    source: &'static str,
    /// What the T+0 check found, when another source disagrees.
    #[graphql(skip)]
    cross_check: Option<super::quotes::CrossCheck>,
}

#[ComplexObject]
impl KlineObject {
    /// The source that produced the bar (with a route or fallback chain, the one that
    /// answered). A bar is one source's, never a mix.
    async fn source(&self) -> Result<super::quotes::QuoteSource, crate::error::AppError> {
        super::quotes::QuoteSource::of(self.source)
    }
    /// `SUSPECT` when the T+0 check found another source's open, high, low or close of this
    /// closed bar further than `FINQL_DIVERGENCE_BPS` from this one (`crossCheck` says whose);
    /// `OK` otherwise, checked or not. Adjusted bars, and live ones, are never `SUSPECT`.
    async fn quality(&self) -> super::quotes::DataQuality {
        match self.cross_check {
            Some(_) => super::quotes::DataQuality::Suspect,
            None => super::quotes::DataQuality::Ok,
        }
    }
    /// What the other source said, when this bar is `SUSPECT` (`value`: its close).
    async fn cross_check(&self) -> Option<&super::quotes::CrossCheck> {
        self.cross_check.as_ref()
    }
}

impl KlineObject {
    /// The same bar, marked as the last known one.
    pub fn into_stale(self) -> Self {
        Self { stale: true, ..self }
    }
}

impl From<&Kline> for KlineObject {
    fn from(k: &Kline) -> Self {
        Self {
            time: Timestamp(k.time),
            open: DecimalString(k.open),
            high: DecimalString(k.high),
            low: DecimalString(k.low),
            close: DecimalString(k.close),
            volume: k.volume.map(DecimalString),
            turnover: k.turnover.map(DecimalString),
            stale: false,
            source: k.source,
            cross_check: None,
        }
    }
}

/// Batches the latest window of many instruments per (interval, limit). Infallible as a batch,
/// like the quote loader: each key carries its own outcome.
pub struct LatestKlineLoader(pub(super) MarketService);

type LatestKey = (Symbol, Interval, usize);

impl Loader<LatestKey> for LatestKlineLoader {
    type Value = AppResult<Arc<Vec<Kline>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[LatestKey]) -> std::result::Result<HashMap<LatestKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(Interval, usize), Vec<Symbol>> = HashMap::new();
        for (symbol, interval, limit) in keys {
            groups.entry((*interval, *limit)).or_default().push(symbol.clone());
        }
        let answers = join_all(
            groups.iter().map(|((interval, limit), symbols)| self.0.latest_klines(symbols, *interval, *limit)),
        )
        .await;
        Ok(groups
            .keys()
            .zip(answers)
            .flat_map(|(&(interval, limit), series)| {
                series.into_iter().map(move |(symbol, bars)| ((symbol, interval, limit), bars))
            })
            .collect())
    }
}

/// The arguments of `Query.klines` and `Security.klines`, checked.
pub struct KlineArgs {
    pub interval: Interval,
    pub limit: usize,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    pub adjust: Adjust,
}

impl KlineArgs {
    pub fn new(
        interval: IntervalGql,
        limit: Option<i32>,
        before: Option<Timestamp>,
        after: Option<Timestamp>,
        adjust: Option<AdjustGql>,
    ) -> Result<Self, AppError> {
        let limit = bounded(limit.unwrap_or(DEFAULT_KLINES), 1, MAX_KLINES, "limit")?;
        let (before, after) = (before.map(DateTime::from), after.map(DateTime::from));
        Ok(Self { interval: interval.into(), limit, before, after, adjust: adjust.unwrap_or_default().into() })
    }
}

/// Klines of a window, adjusted as asked, as the caller's plan allows (`entitlements`): a
/// window named further back than `history_days` is refused, the latest bars are clipped to
/// it, and a delayed market's window ends at the cutoff (no bar ends after it). As traded, the
/// latest real-time window goes through the request's loader (batched across instruments); any
/// other window straight to the service.
pub async fn load_klines(ctx: &Context<'_>, symbol: &Symbol, args: KlineArgs) -> Result<Vec<KlineObject>> {
    let grant = grant(ctx, symbol)?;
    let KlineArgs { interval, limit, before, after, adjust } = args;
    if after.is_some() || before.is_some() {
        let listed = service::<MarketService>(ctx)?.instrument(symbol).await?.listed_at;
        if let Some(after) = after {
            grant.require_since(symbol, "after", after, listed)?;
        }
        if let Some(before) = before {
            grant.require_since(symbol, "before", before, listed)?;
        }
    }
    if before.is_none_or(|before| before > grant.latest()) {
        // A window reaching the present changes with every trade; a closed one keeps its
        // field's tier (`graphql::cache_control`).
        cache_control::at_most(ctx, cache_control::LIVE);
    } else if adjust != Adjust::None {
        // A corporate action recorded later adjusts closed bars too: reference data's tier.
        cache_control::at_most(ctx, cache_control::REFERENCE);
    }
    let before = match grant.cutoff() {
        Some(cutoff) => {
            if after.is_some_and(|after| after >= cutoff) {
                // Every bar after `after` ends after the cutoff.
                return Ok(Vec::new());
            }
            Some(before.map_or(cutoff, |before| before.min(cutoff)))
        }
        None => before,
    };
    let bars = window(ctx, symbol, KlineArgs { interval, limit, before, after, adjust }).await?;
    Ok(served(ctx, &grant, symbol, interval, &bars))
}

/// `symbol`'s bars of a window: from `source` alone when pinned, else as `load_klines` has
/// them (`Query.klines`, `Security.klines`).
pub async fn klines_from(
    ctx: &Context<'_>,
    symbol: &Symbol,
    args: KlineArgs,
    source: Option<super::quotes::QuoteSource>,
) -> Result<Vec<KlineObject>> {
    match source {
        Some(source) => pinned_klines(ctx, symbol, args, source.name()).await,
        None => load_klines(ctx, symbol, args).await,
    }
}

/// The bars of a window from `source` alone (`market::pinned`), as the caller's plan allows.
async fn pinned_klines(
    ctx: &Context<'_>,
    symbol: &Symbol,
    args: KlineArgs,
    source: &'static str,
) -> Result<Vec<KlineObject>> {
    let KlineArgs { interval, limit, before, after, adjust } = args;
    if after.is_some() || adjust != Adjust::None {
        return Err(AppError::bad_field(
            "source",
            "a pinned source takes `before` and `limit`, not `after` or `adjust`",
        )
        .into());
    }
    let grant = super::pinned_grant(ctx, symbol, source)?;
    let market = service::<MarketService>(ctx)?;
    if let Some(before) = before {
        grant.require_since(symbol, "before", before, market.instrument(symbol).await?.listed_at)?;
    }
    cache_control::at_most(ctx, cache_control::LIVE);
    let bars = market.klines_from(source, symbol, interval, before, limit).await?;
    Ok(served(ctx, &grant, symbol, interval, &bars))
}

/// `symbol`'s `interval` `bars` as served to a caller with `grant`: none before its plan's
/// horizon; what the T+0 check found said; their sources noted for `extensions.sources`.
fn served(
    ctx: &Context<'_>,
    grant: &crate::market::entitlements::Grant,
    symbol: &Symbol,
    interval: Interval,
    bars: &[Kline],
) -> Vec<KlineObject> {
    let market = service::<MarketService>(ctx).ok();
    let bars: Vec<KlineObject> = bars
        .iter()
        .filter(|bar| bar.time >= grant.horizon())
        .map(|bar| {
            let mut object = KlineObject::from(bar);
            object.cross_check =
                market.and_then(|m| m.bar_divergence(symbol, interval, bar)).map(|d| super::quotes::CrossCheck {
                    source: d.other.to_owned(),
                    value: DecimalString(d.other_close),
                    bps: DecimalString(d.bps),
                });
            object
        })
        .collect();
    crate::graphql::provenance::SourcesUsed::record(ctx, bars.iter().map(|bar| bar.source));
    bars
}

/// The bars of a window, as the service has them.
async fn window(ctx: &Context<'_>, symbol: &Symbol, args: KlineArgs) -> Result<Arc<Vec<Kline>>> {
    let KlineArgs { interval, limit, before, after, adjust } = args;
    let market = service::<MarketService>(ctx)?;
    if adjust != Adjust::None {
        let bars = market.klines_window(symbol, interval, limit, before, after).await?;
        let bars = service::<FundamentalsService>(ctx)?.adjust(symbol, interval, bars, adjust).await?;
        return Ok(Arc::new(bars));
    }
    if before.is_some() || after.is_some() {
        return Ok(Arc::new(market.klines_window(symbol, interval, limit, before, after).await?));
    }
    let Ok(outcome) = service::<MarketLoaders>(ctx)?.klines().load_one((symbol.clone(), interval, limit)).await;
    let bars = outcome.ok_or_else(|| AppError::internal(anyhow::anyhow!("klines for {symbol} missing")))?;
    Ok(bars?)
}

#[derive(Default)]
pub struct KlinesQuery;

#[Object]
impl KlinesQuery {
    /// Candles, oldest first, at most `limit` (default 100, at most 1000). Prices are as traded
    /// unless `adjust` says otherwise (see `KlineAdjust`). `before` and `after` are cursors on
    /// time: give them a bar's `time` to page.
    /// - Neither: the latest bars, the one in progress included.
    /// - `before` alone: the last `limit` bars that end at or before `before`. A bar ends where
    ///   the next starts, so the bar containing `before` is left out even when `before` falls
    ///   inside it (no bar reaches past `before`).
    /// - `after` (alone, or with `before`): the first `limit` bars that start strictly after
    ///   `after` (and end at or before `before`). When more than `limit` bars lie between
    ///   them, these are the first `limit`: page on with `after` set to the last bar's `time`
    ///   until a page is empty. `after` must be earlier than `before`.
    ///
    /// No bar precedes the instrument's listing day (`Security.listedAt`): a window entirely
    /// before it is an empty list, not an error.
    ///
    /// The caller's plan bounds the window: `before` or `after` further back than its
    /// `historyDays` is `FORBIDDEN` (`ENTITLEMENT_REQUIRED`), and bars starting before that
    /// horizon are left out of an open window. For a market the plan has delayed, no bar ends
    /// after `now - delayMinutes` (the window ends there; `after` at or past it is an empty
    /// list). Null, with its error beside it, when this symbol's bars cannot be had (so aliases
    /// beside it still answer).
    #[allow(clippy::too_many_arguments)]
    #[graphql(cache_control(max_age = 3600))]
    async fn klines(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The instrument's symbol (`AAPL.US`, `700.HK`, `FX:EURUSD`, `CRYPTO:BTCUSDT`), any case; a malformed one is `BAD_USER_INPUT`."
        )]
        symbol: String,
        #[graphql(desc = "The bar length.")] interval: IntervalGql,
        #[graphql(desc = "At most this many bars, 1 to 1000 (100 when omitted).")] limit: Option<i32>,
        #[graphql(desc = "Only bars that end at or before this instant (a bar's `time` pages backward).")]
        before: Option<Timestamp>,
        #[graphql(desc = "Only bars that start strictly after this instant (a bar's `time` pages forward).")]
        after: Option<Timestamp>,
        #[graphql(desc = "Split and dividend adjustment; `NONE` (as traded) when omitted.")] adjust: Option<AdjustGql>,
        #[graphql(
            desc = "Pins the answer to this source, past `FINQL_ROUTES`, the caches and stored history (with `before` and `limit`; `after` and `adjust` are `BAD_USER_INPUT` beside it). `FORBIDDEN` (`ENTITLEMENT_REQUIRED`) when the caller's plan does not list it in `sources` or has the market delayed; `BAD_USER_INPUT` when this deployment does not configure it."
        )]
        source: Option<super::quotes::QuoteSource>,
    ) -> Result<Option<Vec<KlineObject>>> {
        let args = KlineArgs::new(interval, limit, before, after, adjust)?;
        klines_from(ctx, &Symbol::parse(&symbol)?, args, source).await.map(Some)
    }
}
