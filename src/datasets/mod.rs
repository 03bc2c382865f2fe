//! Proprietary datasets: an enterprise's own series (internal ratings, ESG scores, risk
//! factors) served beside market data, with the same field selection, entitlements, caching
//! and audit.
//!
//! A dataset is declared by a manifest (`manifest`, from `FINQL_DATASETS_DIR`), lives in a
//! table finql creates and widens from it (`store`), is filled from CSV or JSON Lines files
//! checked row by row (`load`; `finql dataset load`, or the `loadDataset` mutation for the
//! tenants a manifest names), and is read through typed accessors (`graphql`). Plans list the
//! datasets their tenants read (`datasets = [...]`).

/// The GraphQL API: `datasets`, `datasetPoints`, `SecurityDataset`, `loadDataset`.
pub mod graphql;
/// Reading files into checked rows, with a report of the rejects.
pub mod load;
/// Manifests: a dataset's name, key and typed fields.
pub mod manifest;
/// `DatasetService`: manifests, entitlements, cached reads, loads.
pub mod service;
/// The tables: created and widened from manifests, written per load, read by range.
pub mod store;
/// Typed values: parsed from cells and JSON, bound into SQL, read from rows.
pub mod value;

pub use manifest::Manifest;
pub use service::DatasetService;
