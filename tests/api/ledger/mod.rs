//! The ledger (`finql::ledger`): transactions and their analytics.

mod analytics;
mod crud;

pub(crate) use crud::{assert_error, create_many, create_one, ts};
