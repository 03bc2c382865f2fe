//! The market API (`finql::market`), one file per part of it: quotes, klines, order books and
//! ticks on the embedded simulated market, the instrument catalog, fundamentals and corporate
//! actions, market status, kline history kept in the database, and quotes shared between
//! replicas through Redis.

mod fundamentals;
mod history;
mod klines;
mod securities;
mod shared_cache;
mod status;
