//! The Polygon provider (`finql::sources::polygon`) through the market API, against a fake
//! Polygon server that speaks the real protocol (`fake_rest`).

pub(crate) mod fake_rest;
mod rest;
