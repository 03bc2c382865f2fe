//! `Reconciler`: a day's daily bars and corporate actions, for every instrument of the catalog
//! (or of one market), asked of every configured source and compared (`compare`), written as a
//! report (`store`).
//!
//! It runs beside serving (a schedule, or an operator's command), never on a request's path:
//! instruments are taken a few at a time (`CONCURRENCY`) so that the sources' own quotas and
//! breakers see a steady trickle, and every call is bounded (`CALL_TIMEOUT`), so a silent
//! source makes its instruments `UNAVAILABLE` instead of holding the run.

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    compare::{Answer, Verdict, compare},
    store::{Item, ReconciliationStore, Run},
};
use crate::{
    config::plans::MARKETS,
    error::{AppError, AppResult},
    market::{
        entitlements::market_of,
        source::{MarketSource, SourceError},
        types::{Instrument, Interval, Kline},
    },
    reference::ReferenceService,
};

/// Instruments compared at once.
const CONCURRENCY: usize = 8;
/// The longest a source may take over one call; past it, the instrument is `UNAVAILABLE` there.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a run produced: the run and every instrument's item, in symbol order.
#[derive(Clone, Debug)]
pub struct Report {
    pub run: Run,
    pub items: Vec<Item>,
}

#[derive(Clone)]
pub struct Reconciler {
    /// In configured order: the first that has a bar is the reference.
    sources: Vec<Arc<dyn MarketSource>>,
    reference: ReferenceService,
    store: ReconciliationStore,
    tolerance_bps: u32,
}

impl Reconciler {
    pub fn new(
        sources: Vec<Arc<dyn MarketSource>>,
        reference: ReferenceService,
        store: ReconciliationStore,
        tolerance_bps: u32,
    ) -> Self {
        Self { sources, reference, store, tolerance_bps }
    }

    /// Compares `day` for the catalog (or `market`'s instruments) and writes the report. With a
    /// `claim`, `Ok(None)` when another process has claimed it. `BAD_USER_INPUT` for a day not
    /// yet over, an unknown market, or fewer than two sources.
    pub async fn run(&self, day: NaiveDate, market: Option<&str>, claim: Option<String>) -> AppResult<Option<Report>> {
        if day >= Utc::now().date_naive() {
            return Err(AppError::bad_field("date", format!("{day} has not ended yet (UTC): reconcile a past day")));
        }
        let market = check_market(market)?;
        if self.sources.len() < 2 {
            return Err(AppError::bad_input(
                "reconciliation compares sources, and one is configured: name more in FINQL_MARKET_SOURCE or FINQL_ROUTES",
            ));
        }
        let mut run = Run {
            id: Uuid::now_v7(),
            day,
            market: market.clone(),
            sources: self.sources.iter().map(|s| s.name().to_owned()).collect(),
            tolerance_bps: self.tolerance_bps,
            started_at: Utc::now(),
            finished_at: None,
            instruments: 0,
            matched: 0,
            different: 0,
            missing: 0,
            unavailable: 0,
        };
        if !self.store.begin(&run, claim).await? {
            return Ok(None);
        }
        let instruments = self
            .reference
            .all()
            .await?
            .into_iter()
            .filter(|s| market.as_deref().is_none_or(|m| market_of(&s.symbol) == m))
            .map(Instrument::of)
            .collect::<AppResult<Vec<_>>>()?;
        let tolerance = Decimal::from(self.tolerance_bps);
        let mut items: Vec<Item> = futures::stream::iter(instruments)
            .map(|instrument| async move {
                let answers = self.answers(&instrument, day).await;
                let (verdict, differences) = compare(day, &answers, tolerance);
                Item { symbol: instrument.symbol.as_str().to_owned(), verdict, differences }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        items.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        for item in &items {
            run.instruments += 1;
            match item.verdict {
                Verdict::Match => run.matched += 1,
                Verdict::Different => run.different += 1,
                Verdict::Missing => run.missing += 1,
                Verdict::Unavailable => run.unavailable += 1,
                Verdict::SingleSource | Verdict::NoData => {}
            }
        }
        run.finished_at = Some(Utc::now());
        self.store.finish(&run, &items).await?;
        tracing::info!(
            %day, market = market.as_deref().unwrap_or("*"), instruments = run.instruments, different = run.different,
            missing = run.missing, unavailable = run.unavailable, "reconciliation done"
        );
        metrics::counter!("finql_reconciliation_differences_total").increment(u64::from(run.different + run.missing));
        Ok(Some(Report { run, items }))
    }

    /// What each source covering `instrument` says of `day` (in configured order).
    async fn answers(&self, instrument: &Instrument, day: NaiveDate) -> Vec<Answer> {
        let asked = self.sources.iter().map(|source| async move {
            let bar = bounded(day_bar(source.as_ref(), instrument, day)).await;
            if matches!(bar, Err(SourceError::NotFound(_))) {
                return None;
            }
            let actions = bounded(source.corporate_actions(instrument)).await;
            Some(Answer {
                source: source.name(),
                bar: bar.map_err(|err| failure(source.name(), &err)),
                actions: actions.map_err(|err| failure(source.name(), &err)),
            })
        });
        futures::future::join_all(asked).await.into_iter().flatten().collect()
    }
}

/// `market` upper-cased, if it is one finql knows (`BAD_USER_INPUT` naming them otherwise).
pub fn check_market(market: Option<&str>) -> AppResult<Option<String>> {
    let Some(market) = market.map(|m| m.trim().to_ascii_uppercase()) else { return Ok(None) };
    if !MARKETS.contains(&market.as_str()) {
        let shown: String = market.chars().take(16).collect();
        return Err(AppError::bad_field(
            "market",
            format!("unknown market `{shown}`: markets are {}", MARKETS.join(", ")),
        ));
    }
    Ok(Some(market))
}

/// The bar of `day` (starting at its midnight UTC), if the source has one.
async fn day_bar(
    source: &dyn MarketSource,
    instrument: &Instrument,
    day: NaiveDate,
) -> Result<Option<Kline>, SourceError> {
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + chrono::Duration::days(1);
    let bars = source.klines(instrument, Interval::OneDay, Some(end), 1).await?;
    Ok(bars.into_iter().find(|bar| bar.time == start))
}

async fn bounded<T>(call: impl Future<Output = Result<T, SourceError>>) -> Result<T, SourceError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(SourceError::Unavailable(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))))
}

/// What a report says of a failed call: the source and the kind of failure, never its text
/// (which may carry a URL).
fn failure(source: &str, err: &SourceError) -> String {
    format!("{source}: {}", err.kind())
}
