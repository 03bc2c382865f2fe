//! The iTick provider (`finql::sources::itick`): the REST source driven directly (`adapter`) and
//! through the market API (`rest`: batching, caching, retries, stale fallback), and the WebSocket
//! stream (`stream`), each against a fake iTick server that speaks the real protocol (`fake_rest`,
//! `fake_ws`), which the market, live and abuse tests use as their upstream too.

mod adapter;
pub(crate) mod fake_rest;
pub(crate) mod fake_ws;
mod rest;
mod stream;
