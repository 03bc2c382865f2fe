//! `reconciliation(date:, market:)`: the latest T+1 report of a day, for tenant admins. Thin
//! over [`ReconciliationStore`].

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use super::{
    compare::{Difference, Verdict},
    service::check_market,
    store::{Item, ReconciliationStore, Run},
};
use crate::graphql::{
    PageInfo, RequestContext, bounded,
    scalars::{Date, DecimalString, Timestamp},
    service,
};

const MAX_ITEMS: i32 = 1000;
const DEFAULT_ITEMS: i32 = 100;

/// What a reconciliation concluded about an instrument.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReconciliationVerdict", remote = "Verdict")]
pub enum VerdictGql {
    /// Two or more sources have the day's bar and agree within the tolerance, and on the day's
    /// corporate actions.
    Match,
    /// A price, the volume or a corporate action differs beyond the tolerance.
    Different,
    /// A source has no bar for the day while another has one.
    Missing,
    /// A source failed: the comparison is incomplete.
    Unavailable,
    /// One source covers the instrument: nothing to compare.
    SingleSource,
    /// No source has a bar for the day.
    NoData,
}

/// One disagreement between a source and the reference (the first source, in configured order,
/// with the day's bar).
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationDifference")]
pub struct DifferenceObject {
    /// `open`, `high`, `low`, `close`, `volume`, `bar` (present at the reference only),
    /// `split`, `dividend`, or `error` (the source failed).
    field: String,
    /// The source that differs.
    source: String,
    /// Its value; null when it has none.
    value: Option<String>,
    /// The reference source.
    reference: String,
    /// The reference's value; null when it has none.
    reference_value: Option<String>,
    /// How far apart, in basis points of the reference's value (prices and volume).
    bps: Option<DecimalString>,
}

impl From<Difference> for DifferenceObject {
    fn from(d: Difference) -> Self {
        Self {
            field: d.field,
            source: d.source,
            value: d.value,
            reference: d.reference,
            reference_value: d.reference_value,
            bps: d.bps.map(DecimalString),
        }
    }
}

/// One instrument's outcome.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationItem")]
pub struct ItemObject {
    /// The instrument's canonical symbol.
    symbol: String,
    /// What the comparison concluded.
    verdict: VerdictGql,
    /// Every disagreement found (empty for `MATCH`, `SINGLE_SOURCE` and `NO_DATA`).
    differences: Vec<DifferenceObject>,
}

impl From<Item> for ItemObject {
    fn from(i: Item) -> Self {
        Self {
            symbol: i.symbol,
            verdict: i.verdict.into(),
            differences: i.differences.into_iter().map(Into::into).collect(),
        }
    }
}

/// An item and its cursor (Relay edge).
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationItemEdge")]
pub struct ItemEdge {
    /// The item's symbol: pass it as `after` to continue after it.
    cursor: String,
    /// The item.
    node: ItemObject,
}

/// A page of a run's items, in symbol order.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationItemConnection")]
pub struct ItemConnection {
    /// The page's items with their cursors.
    edges: Vec<ItemEdge>,
    /// Whether more items follow, and the cursor to get them.
    page_info: PageInfo,
}

/// A T+1 reconciliation: a day's daily bars and corporate actions compared across sources.
pub struct RunObject(Run);

/// A T+1 reconciliation: a day's daily bars (OHLCV) and corporate actions compared across the
/// configured sources, for every instrument of the catalog or of one market.
#[Object(name = "ReconciliationRun")]
impl RunObject {
    /// The run's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The day compared (UTC).
    async fn date(&self) -> Date {
        Date(self.0.day)
    }
    /// The market compared (`US`, `HK`, `FX`, …); null for the whole catalog.
    async fn market(&self) -> Option<&str> {
        self.0.market.as_deref()
    }
    /// The sources compared, in configured order.
    async fn sources(&self) -> &[String] {
        &self.0.sources
    }
    /// The largest difference, in basis points, that still agrees (`FINQL_DIVERGENCE_BPS`).
    async fn tolerance_bps(&self) -> u32 {
        self.0.tolerance_bps
    }
    /// When the run started.
    async fn started_at(&self) -> Timestamp {
        Timestamp(self.0.started_at)
    }
    /// When it finished.
    async fn finished_at(&self) -> Option<Timestamp> {
        self.0.finished_at.map(Timestamp)
    }
    /// Instruments compared.
    async fn instruments(&self) -> u32 {
        self.0.instruments
    }
    /// Instruments whose sources agree.
    async fn matched(&self) -> u32 {
        self.0.matched
    }
    /// Instruments with a price, volume or action beyond the tolerance.
    async fn different(&self) -> u32 {
        self.0.different
    }
    /// Instruments a source has no bar for while another has one.
    async fn missing(&self) -> u32 {
        self.0.missing
    }
    /// Instruments a source failed for.
    async fn unavailable(&self) -> u32 {
        self.0.unavailable
    }
    /// The instruments' outcomes, in symbol order: `first` (default 100, at most 1000) after the
    /// cursor `after`, only `verdicts` when given.
    async fn items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only items with these verdicts.")] verdicts: Option<Vec<VerdictGql>>,
        #[graphql(desc = "Items per page, 0 to 1000 (100 when omitted).")] first: Option<i32>,
        #[graphql(desc = "An item's `cursor` (its symbol): the page starts after it.")] after: Option<String>,
    ) -> Result<ItemConnection> {
        let first = bounded(first.unwrap_or(DEFAULT_ITEMS), 0, MAX_ITEMS, "first")?;
        let verdicts: Option<Vec<Verdict>> = verdicts.map(|v| v.into_iter().map(Into::into).collect());
        let store = service::<ReconciliationStore>(ctx)?;
        let (items, more) = store.items(self.0.id, verdicts.as_deref(), first as u64, after.as_deref()).await?;
        let cursors: Vec<String> = items.iter().map(|i| i.symbol.clone()).collect();
        let page_info = PageInfo {
            has_next_page: more,
            has_previous_page: after.is_some(),
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        };
        let edges = items.into_iter().map(|i| ItemEdge { cursor: i.symbol.clone(), node: i.into() }).collect();
        Ok(ItemConnection { edges, page_info })
    }
}

#[derive(Default)]
pub struct ReconcileQuery;

#[Object]
impl ReconcileQuery {
    /// The latest T+1 reconciliation of `date` (of `market`'s instruments, or of the whole
    /// catalog when omitted); null when none has run. For tenant admins.
    #[graphql(cache_control(private, no_cache))]
    async fn reconciliation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The day compared (UTC).")] date: Date,
        #[graphql(
            desc = "A market (`US`, `HK`, `SH`, `SZ`, `FX`, `IDX`, `CRYPTO`, `FUT`); the whole catalog when omitted."
        )]
        market: Option<String>,
    ) -> Result<Option<RunObject>> {
        RequestContext::of(ctx)?.principal.require_admin()?;
        let market = check_market(market.as_deref())?;
        let store = service::<ReconciliationStore>(ctx)?;
        let run = store.latest(date.0, market.as_deref()).await?;
        Ok(run.map(RunObject))
    }
}
