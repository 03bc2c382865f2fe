//! `transactionAnalytics`: figures over a user's transactions, each computed only when asked.

use async_graphql::{Context, Object, Result, SimpleObject};
use tokio::sync::OnceCell;

use super::ledger;
use crate::{
    graphql::scalars::{Date, DecimalString},
    ledger::{
        analytics::{Analysis, AnalyticsScope, Bucket, Totals},
        money::{format_decimal, format_scaled},
    },
};

/// Figures for one currency. The first field asked for reads the analysis's cells (one
/// statement on the rollups, and at most two on the raw rows of the days its bounds cut
/// through); every field is computed from them.
pub struct TransactionAnalytics {
    scope: AnalyticsScope,
    analysis: OnceCell<Analysis>,
}

impl TransactionAnalytics {
    pub fn new(scope: AnalyticsScope) -> Self {
        Self { scope, analysis: OnceCell::new() }
    }

    async fn analysis(&self, ctx: &Context<'_>) -> Result<&Analysis> {
        let ledger = ledger(ctx)?;
        Ok(self.analysis.get_or_try_init(|| ledger.analysis(&self.scope)).await?)
    }

    async fn totals(&self, ctx: &Context<'_>) -> Result<Totals> {
        Ok(self.analysis(ctx).await?.totals())
    }
    fn money(&self, scaled: i128) -> DecimalString {
        DecimalString(format_scaled(scaled, self.scope.currency))
    }
}

/// Figures over your transactions in one currency, range and set of statuses, from one read of
/// the ledger's daily rollups; amounts have the currency's minor-unit digits.
#[Object]
impl TransactionAnalytics {
    /// The currency every amount here is in.
    async fn currency(&self) -> &'static str {
        self.scope.currency.code()
    }
    /// How many transactions are counted.
    async fn count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.totals(ctx).await?.count)
    }
    /// Mean transaction amount (credits and debits alike), rounded half away from zero to the
    /// currency's digits; null when there are no transactions.
    async fn average_amount(&self, ctx: &Context<'_>) -> Result<Option<DecimalString>> {
        let totals = self.totals(ctx).await?;
        if totals.count == 0 {
            return Ok(None);
        }
        let mean = rust_decimal::Decimal::from_i128_with_scale(totals.sum, crate::ledger::money::SCALE)
            / rust_decimal::Decimal::from(totals.count);
        Ok(Some(DecimalString(format_decimal(mean, self.scope.currency))))
    }
    /// The sum of the credits (money in); `0` (with the currency's digits) when none.
    async fn total_credit(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        Ok(self.money(self.totals(ctx).await?.credit))
    }
    /// The sum of the debits (money out), positive; `0` when none.
    async fn total_debit(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        Ok(self.money(self.totals(ctx).await?.debit))
    }
    /// Credits minus debits.
    async fn net(&self, ctx: &Context<'_>) -> Result<DecimalString> {
        let totals = self.totals(ctx).await?;
        Ok(self.money(totals.credit - totals.debit))
    }
    /// The UTC day with the most transactions (ties: the earliest); null when there are none.
    async fn busiest_day(&self, ctx: &Context<'_>) -> Result<Option<DayCount>> {
        let day = self.analysis(ctx).await?.busiest_day()?;
        Ok(day.map(|b| DayCount { date: b.key.into(), count: b.totals.count }))
    }
    /// One entry per UTC day that has transactions, oldest first.
    async fn by_day(&self, ctx: &Context<'_>) -> Result<Vec<DayBreakdown>> {
        let days = self.analysis(ctx).await?.by_day()?;
        Ok(days.into_iter().map(|b| DayBreakdown { date: b.key.into(), sums: self.sums(&b) }).collect())
    }
    /// One entry per UTC month (`YYYY-MM`) that has transactions, oldest first.
    async fn by_month(&self, ctx: &Context<'_>) -> Result<Vec<MonthBreakdown>> {
        let months = self.analysis(ctx).await?.by_month();
        Ok(months.iter().map(|b| MonthBreakdown { month: b.key.clone(), sums: self.sums(b) }).collect())
    }
    /// One entry per category (null: uncategorised), most transactions first.
    async fn by_category(&self, ctx: &Context<'_>) -> Result<Vec<CategoryBreakdown>> {
        let categories = self.analysis(ctx).await?.by_category();
        Ok(categories.iter().map(|b| CategoryBreakdown { category: b.key.clone(), sums: self.sums(b) }).collect())
    }
    /// Every currency you have transactions in over this range and these statuses.
    async fn currencies(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(ledger(ctx)?.currencies(&self.scope).await?)
    }
}

impl TransactionAnalytics {
    fn sums<K>(&self, bucket: &Bucket<K>) -> Sums {
        let t = &bucket.totals;
        Sums {
            count: t.count,
            total_credit: self.money(t.credit),
            total_debit: self.money(t.debit),
            net: self.money(t.credit - t.debit),
        }
    }
}

/// A UTC day and how many transactions it has.
#[derive(SimpleObject)]
pub struct DayCount {
    /// The UTC day.
    date: Date,
    /// Transactions that occurred that day.
    count: i64,
}

#[derive(SimpleObject)]
pub struct Sums {
    /// Transactions in the group.
    count: i64,
    /// The group's credits (money in).
    total_credit: DecimalString,
    /// The group's debits (money out), positive.
    total_debit: DecimalString,
    /// `totalCredit - totalDebit`.
    net: DecimalString,
}

/// The figures of one UTC day.
#[derive(SimpleObject)]
pub struct DayBreakdown {
    /// The UTC day.
    date: Date,
    #[graphql(flatten)]
    sums: Sums,
}

/// The figures of one UTC month.
#[derive(SimpleObject)]
pub struct MonthBreakdown {
    /// `YYYY-MM`.
    month: String,
    #[graphql(flatten)]
    sums: Sums,
}

/// The figures of one category.
#[derive(SimpleObject)]
pub struct CategoryBreakdown {
    /// The category, exactly as recorded; null for uncategorised transactions.
    category: Option<String>,
    #[graphql(flatten)]
    sums: Sums,
}
