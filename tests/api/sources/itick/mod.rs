//! The iTick provider (`finql::sources::itick`): the REST source and the WebSocket stream, each
//! against a fake iTick server that speaks the real protocol (`fake_rest`, `fake_ws`), which the
//! market, live and abuse tests use as their upstream too.

pub(crate) mod fake_rest;
pub(crate) mod fake_ws;
mod rest;
mod stream;
