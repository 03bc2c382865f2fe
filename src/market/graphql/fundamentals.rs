//! GraphQL types of corporate actions and fundamentals: thin wrappers over
//! [`FundamentalsService`](crate::market::FundamentalsService). The fields hang off `Security` (see `super::securities`); adjusted
//! klines are in `super::klines`.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::NaiveDate;

use super::grant;
use crate::{
    error::AppError,
    graphql::{
        PageInfo, RequestContext, bounded,
        scalars::{Date, DecimalString},
        service,
    },
    market::{
        FundamentalsService,
        corporate::{ActionKind, CorporateAction, FundamentalPoint},
        entitlements::require_fundamentals,
        fundamentals::FundamentalsPage,
        limits::MAX_FUNDAMENTALS,
        service::MarketService,
    },
    reference::Symbol,
};

/// What a corporate action is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "CorporateActionKind")]
pub enum ActionKindGql {
    /// A split or reverse split: `ratio`, `splitFrom` and `splitTo` are set.
    Split,
    /// A cash dividend: `amount` and `currency` are set.
    Dividend,
}

/// A split or a cash dividend, effective from the start of `exDate`.
pub struct CorporateActionObject(pub CorporateAction);

/// A split or a cash dividend, effective from the start of `exDate`.
#[Object(name = "CorporateAction")]
impl CorporateActionObject {
    /// A split or a dividend: which of the other fields are set.
    async fn kind(&self) -> ActionKindGql {
        match self.0.kind {
            ActionKind::Split { .. } => ActionKindGql::Split,
            ActionKind::Dividend { .. } => ActionKindGql::Dividend,
        }
    }
    /// The first day the shares trade ex the action.
    async fn ex_date(&self) -> Date {
        self.0.ex_date.into()
    }
    /// Splits: new shares to old, e.g. `4:1` (four shares for one); `1:10` is a reverse split.
    async fn ratio(&self) -> Option<String> {
        match &self.0.kind {
            ActionKind::Split { from, to } => Some(format!("{}:{}", to.normalize(), from.normalize())),
            ActionKind::Dividend { .. } => None,
        }
    }
    /// Splits: shares held before (the `1` of `4:1`).
    async fn split_from(&self) -> Option<DecimalString> {
        match &self.0.kind {
            ActionKind::Split { from, .. } => Some(DecimalString(*from)),
            ActionKind::Dividend { .. } => None,
        }
    }
    /// Splits: shares held after (the `4` of `4:1`).
    async fn split_to(&self) -> Option<DecimalString> {
        match &self.0.kind {
            ActionKind::Split { to, .. } => Some(DecimalString(*to)),
            ActionKind::Dividend { .. } => None,
        }
    }
    /// Dividends: cash per share, in the shares of the ex-date.
    async fn amount(&self) -> Option<DecimalString> {
        match &self.0.kind {
            ActionKind::Dividend { amount, .. } => Some(DecimalString(*amount)),
            ActionKind::Split { .. } => None,
        }
    }
    /// Dividends: ISO 4217 currency of `amount`.
    async fn currency(&self) -> Option<&str> {
        match &self.0.kind {
            ActionKind::Dividend { currency, .. } => Some(currency),
            ActionKind::Split { .. } => None,
        }
    }
}

/// Valuation figures of one trading day. Per-share figures are in the shares of that day; a
/// figure the source does not have, or that is undefined (P/E with no earnings), is null.
/// Derived figures have a fixed number of decimals (trailing zeros kept: `93.00`, `0.00`),
/// rounded once, half away from zero.
#[derive(SimpleObject)]
#[graphql(name = "FundamentalPoint")]
pub struct FundamentalPointObject {
    /// The trading day (of the instrument's market).
    date: Date,
    /// The day's close as traded (at the instrument's quote precision), the figures' price.
    price: Option<DecimalString>,
    /// Trailing twelve months' earnings per share, as the source reports it.
    eps: Option<DecimalString>,
    /// `price / eps`, 2 decimal places, half away from zero; null when EPS is zero or negative.
    /// Without EPS (iTick's snapshot), the source's P/E at the same scale.
    pe: Option<DecimalString>,
    /// Price over book value per share: the source's figure, 2 decimal places, half away from
    /// zero.
    pb: Option<DecimalString>,
    /// The cash dividends with ex-dates in the year up to `date` (as in `corporateActions`,
    /// restated in the shares of `date`) over `price`, in percent: 2 decimal places, half away
    /// from zero (`0.00` for a stock that paid none); null when the source has no dividends.
    dividend_yield: Option<DecimalString>,
    /// Price × shares outstanding, in `currency`: the source's figure, in whole units (0
    /// decimal places), half away from zero.
    market_cap: Option<DecimalString>,
    /// The currency of `price`, `eps` and `marketCap`: the instrument's quote currency.
    currency: String,
}

impl From<&FundamentalPoint> for FundamentalPointObject {
    fn from(p: &FundamentalPoint) -> Self {
        Self {
            date: p.date.into(),
            price: p.price.map(DecimalString),
            eps: p.eps.map(DecimalString),
            pe: p.pe.map(DecimalString),
            pb: p.pb.map(DecimalString),
            dividend_yield: p.dividend_yield.map(DecimalString),
            market_cap: p.market_cap.map(DecimalString),
            currency: p.currency.clone(),
        }
    }
}

/// One day's figures and its cursor (Relay edge).
#[derive(SimpleObject)]
#[graphql(name = "FundamentalPointEdge")]
pub struct FundamentalPointEdge {
    /// The point's date (`YYYY-MM-DD`): pass it as `after` to continue after this point.
    cursor: String,
    /// The day's figures.
    node: FundamentalPointObject,
}

/// `Security.fundamentals`: one page of a range.
pub struct FundamentalPointConnection {
    page: FundamentalsPage,
    has_previous_page: bool,
}

/// A page of daily valuation figures, oldest first.
#[Object]
impl FundamentalPointConnection {
    /// The page's points with their cursors, oldest first.
    async fn edges(&self) -> Vec<FundamentalPointEdge> {
        self.page.points.iter().map(|p| FundamentalPointEdge { cursor: p.date.to_string(), node: p.into() }).collect()
    }
    /// The page's points without their cursors.
    async fn nodes(&self) -> Vec<FundamentalPointObject> {
        self.page.points.iter().map(FundamentalPointObject::from).collect()
    }
    /// Whether more points follow in the range, and the cursor to get them.
    async fn page_info(&self) -> PageInfo {
        let cursor = |p: &FundamentalPoint| p.date.to_string();
        PageInfo {
            has_next_page: self.page.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.page.points.first().map(cursor),
            end_cursor: self.page.points.last().map(cursor),
        }
    }
}

/// `Security.corporateActions`: those with ex-dates within the caller's history
/// (`history_days`; the list is clipped, as it names no range).
pub async fn corporate_actions(ctx: &Context<'_>, symbol: &Symbol) -> Result<Vec<CorporateActionObject>> {
    let grant = grant(ctx, symbol)?;
    let actions = service::<FundamentalsService>(ctx)?.corporate_actions(symbol).await?;
    Ok(actions.iter().filter(|a| a.ex_date >= grant.horizon_day()).cloned().map(CorporateActionObject).collect())
}

/// `Security.fundamentals(from, to, first, after)`.
pub async fn fundamentals(
    ctx: &Context<'_>,
    symbol: &Symbol,
    (from, mut to): (NaiveDate, NaiveDate),
    first: Option<i32>,
    after: Option<String>,
) -> Result<FundamentalPointConnection> {
    let first = bounded(first.unwrap_or(MAX_FUNDAMENTALS), 0, MAX_FUNDAMENTALS, "first")?;
    let after = after.as_deref().map(parse_cursor).transpose()?;
    let grant = grant(ctx, symbol)?;
    require_fundamentals(&RequestContext::of(ctx)?.principal)?;
    if from < grant.horizon_day() {
        let listed = service::<MarketService>(ctx)?.instrument(symbol).await?.listed_at;
        grant.require_since_day(symbol, "from", from, listed)?;
    }
    // A delayed market's latest point carries today's live price: the range ends the day
    // before the cutoff's (when that empties a valid range, the page is empty).
    if let Some(cutoff) = grant.cutoff() {
        let last = cutoff.date_naive().pred_opt().unwrap_or(NaiveDate::MIN);
        if from <= to && last < from {
            let page = FundamentalsPage::default();
            return Ok(FundamentalPointConnection { page, has_previous_page: after.is_some() });
        }
        to = to.min(last);
    }
    let page = service::<FundamentalsService>(ctx)?.fundamentals(symbol, from, to, first, after).await?;
    Ok(FundamentalPointConnection { page, has_previous_page: after.is_some() })
}

/// A cursor of this connection: a date, `YYYY-MM-DD` (the input is never echoed back).
fn parse_cursor(raw: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        AppError::bad_field("after", "not a valid cursor; pass a cursor (a date, YYYY-MM-DD) from this connection")
    })
}
