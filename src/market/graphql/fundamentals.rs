//! GraphQL types of corporate actions and fundamentals: thin wrappers over
//! [`FundamentalsService`](crate::market::FundamentalsService). The fields hang off `Security` (see `super::securities`); adjusted
//! klines are in `super::klines`.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::NaiveDate;

use crate::{
    graphql::{
        scalars::{Date, DecimalString},
        service,
    },
    market::{
        FundamentalsService,
        corporate::{ActionKind, CorporateAction, FundamentalPoint},
    },
    reference::Symbol,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "CorporateActionKind")]
pub enum ActionKindGql {
    Split,
    Dividend,
}

/// A split or a cash dividend, effective from the start of `exDate`.
pub struct CorporateActionObject(pub CorporateAction);

#[Object(name = "CorporateAction")]
impl CorporateActionObject {
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

/// Valuation figures of one day. Per-share figures are in the shares of that day; a figure
/// the source does not have, or that is undefined (P/E with no earnings), is null.
#[derive(SimpleObject)]
#[graphql(name = "FundamentalPoint")]
pub struct FundamentalPointObject {
    date: Date,
    /// The close the ratios were computed from.
    price: Option<DecimalString>,
    /// Trailing twelve months' earnings per share.
    eps: Option<DecimalString>,
    /// `price / eps`, 2 decimal places; null when EPS is zero or negative.
    pe: Option<DecimalString>,
    /// Price over book value per share.
    pb: Option<DecimalString>,
    /// Trailing twelve months' cash dividends over the price, in percent.
    dividend_yield: Option<DecimalString>,
    /// Price × shares outstanding, in `currency`.
    market_cap: Option<DecimalString>,
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

/// `Security.corporateActions`.
pub async fn corporate_actions(ctx: &Context<'_>, symbol: &Symbol) -> Result<Vec<CorporateActionObject>> {
    let actions = service::<FundamentalsService>(ctx)?.corporate_actions(symbol).await?;
    Ok(actions.iter().cloned().map(CorporateActionObject).collect())
}

/// `Security.fundamentals(from, to)`.
pub async fn fundamentals(
    ctx: &Context<'_>,
    symbol: &Symbol,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<FundamentalPointObject>> {
    let points = service::<FundamentalsService>(ctx)?.fundamentals(symbol, from, to).await?;
    Ok(points.iter().map(FundamentalPointObject::from).collect())
}
