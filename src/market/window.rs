//! The kline window a request asks for: `limit` bars before `before` (paging back in time), or
//! after `after` (oldest first), or the latest. A rule of the market domain, shared by
//! `Query.klines`, `Security.klines` and adjusted klines; the resolvers only translate their
//! arguments.

use chrono::{DateTime, Utc};

use super::{
    service::MarketService,
    types::{Interval, Kline},
};
use crate::{error::AppError, reference::Symbol};

impl MarketService {
    /// Klines with the `before`/`after` window applied: `BAD_USER_INPUT` on `after` unless it is
    /// earlier than `before`.
    pub async fn klines_window(
        &self,
        symbol: &Symbol,
        interval: Interval,
        limit: usize,
        before: Option<DateTime<Utc>>,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<Kline>, AppError> {
        if let (Some(before), Some(after)) = (before, after)
            && after >= before
        {
            return Err(AppError::bad_field("after", "`after` must be earlier than `before`"));
        }
        let end = match (before, after) {
            (Some(before), _) => Some(before),
            (None, Some(after)) => {
                // The window after `after`: `limit` bars from it, capped at now.
                let mut end = interval.bar_start(after);
                for _ in 0..=limit {
                    end = interval.next_start(end);
                }
                Some(end).filter(|e| *e <= Utc::now())
            }
            (None, None) => None,
        };
        let bars = self.klines(symbol, interval, end, limit).await?;
        Ok(bars
            .iter()
            .filter(|bar| after.is_none_or(|after| bar.time > after))
            .filter(|bar| before.is_none_or(|before| bar.time < before))
            .take(limit)
            .cloned()
            .collect())
    }
}
