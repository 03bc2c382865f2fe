//! The market API (`finql::market`), one file per part of it: quotes, klines, order books and
//! ticks on the embedded simulated market, the instrument catalog, fundamentals and corporate
//! actions, market status, kline history kept in the database, and quotes shared between
//! replicas through Redis.

mod adjusted_aggregates;
mod books;
mod calendar;
mod fundamental_ranges;
mod fundamentals;
mod history;
mod indices;
mod klines;
mod klines_paging;
mod listing;
mod precision;
mod quote_currencies;
mod quotes;
mod securities;
mod shared_cache;
mod status;
mod symbols;
mod ticks;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::*;

/// A decimal the API sends as a string.
fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("decimal string expected, got {v}")).parse().unwrap()
}

/// A server on the embedded simulated market and SQLite (the market does not use the database).
async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, &[]).await.unwrap()
}
