//! What one market-data request may ask for, in one place: the `klines`, `orderBook` and
//! `ticks` queries, the same fields of `Security`, and the live subscriptions all refer to
//! these, so a limit cannot differ between two ways of asking for the same data.

/// Symbols in one `quotes(symbols:)` request: iTick's batch limit, so one request is at most one
/// upstream call per region.
pub const MAX_SYMBOLS: usize = 500;
/// Bars in one kline window: iTick's history limit per call.
pub const MAX_KLINES: i32 = 1000;
/// Bars when `limit` is not given: about five months of days, two years of weeks.
pub const DEFAULT_KLINES: i32 = 100;
/// Depth of an order book, per side: what the deepest upstream book (and the simulated
/// stream, which pushes this depth so every subscriber can be served from one topic) offers.
pub const MAX_BOOK_LEVELS: i32 = 50;
/// Depth when `levels` is not given: what a trading screen's ladder shows.
pub const DEFAULT_BOOK_LEVELS: i32 = 10;
/// Trades in one `ticks` request.
pub const MAX_TICKS: i32 = 1000;
/// Trades when `limit` is not given.
pub const DEFAULT_TICKS: i32 = 20;
/// Points in one page of `Security.fundamentals`, and the default: about four years of
/// trading days (a valuation band in one answer), and a bound on one response like
/// [`MAX_KLINES`].
pub const MAX_FUNDAMENTALS: i32 = 1000;
