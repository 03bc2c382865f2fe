//! The market data providers (`finql::sources`), each against a fake of its upstream. The
//! simulated source needs no fake: the market and live tests run on it.

mod crosscheck;
pub(crate) mod itick;
pub(crate) mod polygon;
mod reconcile;
mod routing;
