//! `DatasetService`: the deployment's datasets (manifests), who may read and load them, their
//! rows through a short-lived cache, and loads.
//!
//! Reads are cached per (dataset, range) for `FINQL_DATASET_CACHE_SECS` (30 s by default): a
//! desk's dashboard asks for the same ratings again and again, and they change when someone
//! loads a file. A load on this replica empties the cache at once; other replicas see it
//! within the TTL, as they see a catalog change. A TTL of 0 reads the database every time.

use std::{collections::BTreeMap, collections::HashSet, io::Read, sync::Arc, time::Duration};

use moka::future::Cache;
use sea_orm::DatabaseConnection;

use super::{
    load::{self, Format, Parsed, Reject},
    manifest::Manifest,
    store::{Range, Row, Store},
};
use crate::{
    config::Plan,
    error::{AppError, AppResult},
    identity::TenantRef,
    reference::ReferenceService,
};

/// Rows held in the cache at most (each a few hundred bytes).
const MAX_CACHED_ROWS: u64 = 500_000;

/// What a load did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows that passed every check.
    pub accepted: u64,
    /// Rows that did not; the first of them, line by line.
    pub rejected: u64,
    pub rejects: Vec<Reject>,
    /// Whether the accepted rows were written (rejects within `max_rejects`).
    pub written: bool,
    /// Rows the dataset holds now.
    pub rows: Option<u64>,
}

/// How a load treats what the table holds, and how many rejects it tolerates.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Replace every row (in the same transaction) rather than upsert by key.
    pub replace: bool,
    /// Write the accepted rows only when at most this many were rejected.
    pub max_rejects: u64,
}

#[derive(Clone)]
pub struct DatasetService {
    manifests: Arc<BTreeMap<String, Arc<Manifest>>>,
    store: Store,
    reference: ReferenceService,
    /// `None` when `FINQL_DATASET_CACHE_SECS` is 0.
    cache: Option<ReadCache>,
}

/// Reads kept, by dataset and range.
type ReadCache = Cache<(String, Range), Arc<Vec<Row>>>;

impl DatasetService {
    /// The service over `manifests`, their tables created or widened first; `reference` is the
    /// catalog loads check symbols against; reads are kept for `cache_ttl` (zero: not kept).
    pub async fn open(
        db: DatabaseConnection,
        manifests: Vec<Manifest>,
        reference: ReferenceService,
        cache_ttl: Duration,
    ) -> anyhow::Result<Self> {
        let store = Store::new(db);
        store.sync(&manifests).await?;
        let manifests = manifests.into_iter().map(|m| (m.name.clone(), Arc::new(m))).collect();
        let cache = (!cache_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_CACHED_ROWS)
                .weigher(|_: &(String, Range), rows: &Arc<Vec<Row>>| {
                    u32::try_from(rows.len()).unwrap_or(u32::MAX).max(1)
                })
                .time_to_live(cache_ttl)
                .build()
        });
        Ok(Self { manifests: Arc::new(manifests), store, reference, cache })
    }

    /// Every dataset, by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Manifest>> {
        self.manifests.values()
    }

    /// The dataset `name`, or `NOT_FOUND`.
    pub fn manifest(&self, name: &str) -> AppResult<&Arc<Manifest>> {
        self.manifests.get(name).ok_or_else(|| {
            let name: String = name.chars().take(64).collect();
            AppError::NotFound(format!("no dataset `{name}`"))
        })
    }

    /// The dataset `name`, if `plan` may read it: `NOT_FOUND`, or `FORBIDDEN`
    /// (`ENTITLEMENT_REQUIRED`).
    pub fn readable(&self, plan: &Plan, name: &str) -> AppResult<&Arc<Manifest>> {
        let manifest = self.manifest(name)?;
        if !plan.allows_dataset(name) {
            return Err(AppError::EntitlementRequired {
                message: format!("your plan (`{}`) does not include the dataset `{name}`", plan.name),
                market: None,
            });
        }
        Ok(manifest)
    }

    /// The rows of `range`, from the cache or the database.
    pub async fn rows(&self, manifest: &Manifest, range: Range) -> AppResult<Arc<Vec<Row>>> {
        let Some(cache) = &self.cache else { return Ok(Arc::new(self.store.read(manifest, &range).await?)) };
        let key = (manifest.name.clone(), range);
        if let Some(rows) = cache.get(&key).await {
            return Ok(rows);
        }
        let rows = Arc::new(self.store.read(manifest, &key.1).await?);
        cache.insert(key, rows.clone()).await;
        Ok(rows)
    }

    /// `FORBIDDEN` unless `tenant`'s admins may load `manifest` (its `loaders`).
    pub fn require_loader(manifest: &Manifest, tenant: &TenantRef) -> AppResult<()> {
        if manifest.loaders.iter().any(|slug| slug.as_str() == &*tenant.slug) {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "tenant `{}` may not load the dataset `{}` (its manifest's `loaders`); an operator loads it with \
             `finql dataset load`",
            tenant.slug, manifest.name
        )))
    }

    /// Reads `input` (rows checked against the manifest and the catalog), then writes the
    /// accepted rows in one transaction, unless more than `options.max_rejects` were
    /// rejected. `max_rows` bounds the file (an upload); `BAD_USER_INPUT` for a file that
    /// cannot be read as a whole.
    pub async fn load(
        &self,
        manifest: &Manifest,
        format: Format,
        input: impl Read,
        options: LoadOptions,
        max_rows: Option<u64>,
    ) -> AppResult<LoadReport> {
        let catalog: HashSet<String> = self.reference.symbols().await?.into_iter().collect();
        let parsed = load::parse(manifest, format, input, &catalog).map_err(|why| AppError::bad_field("data", why))?;
        let Parsed { rows, rejects, rejected } = parsed;
        let accepted = rows.len() as u64;
        if let Some(max) = max_rows
            && accepted + rejected > max
        {
            return Err(AppError::bad_field(
                "data",
                format!("at most {max} rows per upload; load larger files with `finql dataset load`"),
            ));
        }
        let mut report = LoadReport { accepted, rejected, rejects, written: false, rows: None };
        if rejected > options.max_rejects {
            return Ok(report);
        }
        report.rows = Some(self.store.write(manifest, &rows, options.replace).await?);
        report.written = true;
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
        metrics::counter!("finql_dataset_rows_loaded_total", "dataset" => manifest.name.clone()).increment(accepted);
        tracing::info!(dataset = %manifest.name, accepted, rejected, replace = options.replace, "dataset loaded");
        Ok(report)
    }
}
