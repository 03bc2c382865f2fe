//! The datasets API: `datasets` (discovery), `datasetPoints` (many symbols at once),
//! `Security.dataset(name:)` (one instrument, paged; the field itself is the market API's, see
//! `market::graphql::securities`), and `loadDataset` (tenant admins, small uploads). Thin
//! over [`DatasetService`].
//!
//! A point's values are read with typed accessors (`decimal(field: "target")`), so a client
//! picks fields with aliases and gets each in its own type. Every accessor the document asks
//! for is checked against the manifest before any row is read: a field the dataset lacks, or
//! read as the wrong type, is one `BAD_USER_INPUT` naming it, not an error per point.

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, Result, SelectionField, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    DatasetService,
    load::Format,
    manifest::{FieldType, Manifest},
    service::{LoadOptions, LoadReport},
    store::{Range, Row},
    value::Value,
};
use crate::{
    error::{AppError, AppResult},
    graphql::{
        PageInfo, RequestContext, bounded,
        scalars::{Date, DecimalString, Timestamp, format_timestamp, parse_timestamp},
        service,
    },
    identity::Scope,
    reference::Symbol,
};

/// Points per page of `Security.dataset.points`, at most (and when `first` is omitted, 100).
const MAX_PAGE: i32 = 1000;
const DEFAULT_PAGE: i32 = 100;
/// Symbols per `datasetPoints`, at most.
const MAX_SYMBOLS: usize = 100;
/// Points per `datasetPoints` answer, at most: 100 symbols × a year of daily rows, twice over.
/// The caller says how many it expects (`first`), which is also what the request costs.
const MAX_POINTS: i32 = 50_000;
/// `datasetPoints`' `first` when omitted: the cost model's assumed page.
const DEFAULT_POINTS: i32 = 100;
/// Rows per `loadDataset` upload, at most; larger files go through `finql dataset load`.
const MAX_UPLOAD_ROWS: u64 = 10_000;
/// The typed accessors of `DatasetPoint`, each with the type it reads.
const ACCESSORS: [(&str, FieldType); 6] = [
    ("decimal", FieldType::Decimal),
    ("integer", FieldType::Integer),
    ("text", FieldType::Text),
    ("boolean", FieldType::Boolean),
    ("date", FieldType::Date),
    ("datetime", FieldType::Datetime),
];

/// The type of a dataset field's values.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "DatasetFieldType", remote = "FieldType")]
pub enum FieldTypeGql {
    /// Exact decimal: read with `decimal(field:)`.
    Decimal,
    /// 32-bit integer: read with `integer(field:)`.
    Integer,
    /// Read with `text(field:)`.
    Text,
    /// Read with `boolean(field:)`.
    Boolean,
    /// A calendar day: read with `date(field:)`.
    Date,
    /// An instant (UTC): read with `datetime(field:)`.
    Datetime,
}

/// One field of a dataset.
#[derive(SimpleObject)]
#[graphql(name = "DatasetField")]
pub struct DatasetFieldObject {
    /// What accessors' `field` argument names.
    name: String,
    /// Which accessor reads it.
    #[graphql(name = "type")]
    ty: FieldTypeGql,
    /// What it holds, from the manifest.
    description: String,
    /// Whether every row has a value for it.
    required: bool,
}

/// A proprietary dataset this deployment serves.
pub struct DatasetObject(Arc<Manifest>);

/// A proprietary dataset: a series per instrument, declared by its manifest and loaded by its
/// owners.
#[Object(name = "Dataset")]
impl DatasetObject {
    /// What `dataset(name:)` and `datasetPoints(name:)` take.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it holds, from the manifest.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The key columns: `["symbol", "time"]` (a series of points per instrument) or
    /// `["symbol"]` (one point per instrument, its `time` null).
    async fn key(&self) -> &[&str] {
        self.0.key.columns()
    }
    /// Its fields, by name.
    async fn fields(&self) -> Vec<DatasetFieldObject> {
        self.0
            .fields
            .iter()
            .map(|f| DatasetFieldObject {
                name: f.name.clone(),
                ty: f.ty.into(),
                description: f.description.clone(),
                required: f.required,
            })
            .collect()
    }
}

/// One row of a dataset.
pub struct DatasetPointObject {
    manifest: Arc<Manifest>,
    rows: Arc<Vec<Row>>,
    index: usize,
}

impl DatasetPointObject {
    fn row(&self) -> &Row {
        &self.rows[self.index]
    }

    fn value(&self, field: &str, ty: FieldType) -> AppResult<Option<&Value>> {
        let at = position(&self.manifest, field, ty)?;
        Ok(self.row().values[at].as_ref())
    }
}

/// One row of a dataset: its instrument, its time, and its values through typed accessors
/// (each `BAD_USER_INPUT` for a field the dataset lacks or of another type).
#[Object(name = "DatasetPoint")]
impl DatasetPointObject {
    /// The instrument's canonical symbol.
    async fn symbol(&self) -> &str {
        &self.row().symbol
    }
    /// The point's instant (UTC); null in a dataset keyed by symbol alone.
    async fn time(&self) -> Option<Timestamp> {
        self.row().time.map(Timestamp)
    }
    /// A `decimal` field's value, exact.
    async fn decimal(
        &self,
        #[graphql(desc = "A `DECIMAL` field's name.")] field: String,
    ) -> Result<Option<DecimalString>, AppError> {
        Ok(match self.value(&field, FieldType::Decimal)? {
            Some(Value::Decimal(d)) => Some(DecimalString(*d)),
            _ => None,
        })
    }
    /// An `integer` field's value.
    async fn integer(
        &self,
        #[graphql(desc = "An `INTEGER` field's name.")] field: String,
    ) -> Result<Option<i32>, AppError> {
        Ok(match self.value(&field, FieldType::Integer)? {
            Some(Value::Integer(n)) => Some(*n),
            _ => None,
        })
    }
    /// A `text` field's value.
    async fn text(&self, #[graphql(desc = "A `TEXT` field's name.")] field: String) -> Result<Option<&str>, AppError> {
        Ok(match self.value(&field, FieldType::Text)? {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        })
    }
    /// A `boolean` field's value.
    async fn boolean(
        &self,
        #[graphql(desc = "A `BOOLEAN` field's name.")] field: String,
    ) -> Result<Option<bool>, AppError> {
        Ok(match self.value(&field, FieldType::Boolean)? {
            Some(Value::Boolean(b)) => Some(*b),
            _ => None,
        })
    }
    /// A `date` field's value.
    async fn date(&self, #[graphql(desc = "A `DATE` field's name.")] field: String) -> Result<Option<Date>, AppError> {
        Ok(match self.value(&field, FieldType::Date)? {
            Some(Value::Date(d)) => Some(Date(*d)),
            _ => None,
        })
    }
    /// A `datetime` field's value (UTC).
    async fn datetime(
        &self,
        #[graphql(desc = "A `DATETIME` field's name.")] field: String,
    ) -> Result<Option<Timestamp>, AppError> {
        Ok(match self.value(&field, FieldType::Datetime)? {
            Some(Value::Datetime(t)) => Some(Timestamp(*t)),
            _ => None,
        })
    }
}

/// A point and its cursor (Relay edge).
#[derive(SimpleObject)]
#[graphql(name = "DatasetPointEdge")]
pub struct DatasetPointEdge {
    /// The point's time: pass it as `after` to continue after this point.
    cursor: String,
    /// The point.
    node: DatasetPointObject,
}

/// A page of one instrument's points, oldest first.
pub struct DatasetPointConnection {
    manifest: Arc<Manifest>,
    rows: Arc<Vec<Row>>,
    /// Points of `rows` on the page (one more was read, to know whether another page follows).
    len: usize,
    has_previous_page: bool,
}

impl DatasetPointConnection {
    fn point(&self, index: usize) -> DatasetPointObject {
        DatasetPointObject { manifest: self.manifest.clone(), rows: self.rows.clone(), index }
    }

    fn cursor(&self, index: usize) -> String {
        self.rows[index].time.map(format_timestamp).unwrap_or_default()
    }
}

/// A page of one instrument's points, oldest first.
#[Object]
impl DatasetPointConnection {
    /// The page's points with their cursors, oldest first.
    async fn edges(&self) -> Vec<DatasetPointEdge> {
        (0..self.len).map(|i| DatasetPointEdge { cursor: self.cursor(i), node: self.point(i) }).collect()
    }
    /// The page's points without their cursors.
    async fn nodes(&self) -> Vec<DatasetPointObject> {
        (0..self.len).map(|i| self.point(i)).collect()
    }
    /// Whether more points follow in the range, and the cursor to get them.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.rows.len() > self.len,
            has_previous_page: self.has_previous_page,
            start_cursor: (self.len > 0).then(|| self.cursor(0)),
            end_cursor: self.len.checked_sub(1).map(|last| self.cursor(last)),
        }
    }
}

/// `Security.dataset(name:)`: one instrument's view of a dataset.
pub struct SecurityDatasetObject {
    manifest: Arc<Manifest>,
    symbol: Symbol,
}

/// One instrument's points of a dataset.
#[Object(name = "SecurityDataset")]
impl SecurityDatasetObject {
    /// The dataset's name.
    async fn name(&self) -> &str {
        &self.manifest.name
    }
    /// The instrument's points with `from <= time < to`, oldest first, `first` per page after
    /// the cursor `after`. In a dataset keyed by symbol alone, its one point (no range).
    async fn points(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only points at or after this instant.")] from: Option<Timestamp>,
        #[graphql(desc = "Only points before this instant.")] to: Option<Timestamp>,
        #[graphql(desc = "Points per page, 0 to 1000 (100 when omitted).")] first: Option<i32>,
        #[graphql(desc = "A point's `cursor` (its time): the page starts after it.")] after: Option<String>,
    ) -> Result<DatasetPointConnection> {
        check_accessors(&ctx.field(), &self.manifest)?;
        let first = bounded(first.unwrap_or(DEFAULT_PAGE), 0, MAX_PAGE, "first")?;
        let after = after
            .map(|raw| {
                parse_timestamp(&raw).map_err(|_| {
                    AppError::bad_field(
                        "after",
                        "not a valid cursor; pass a cursor (a point's time) from this connection",
                    )
                })
            })
            .transpose()?;
        let mut range = range(&self.manifest, vec![self.symbol.as_str().to_owned()], from, to)?;
        range.after = after;
        range.limit = first as u64 + 1;
        let rows = service::<DatasetService>(ctx)?.rows(&self.manifest, range).await?;
        let len = rows.len().min(first);
        Ok(DatasetPointConnection { manifest: self.manifest.clone(), rows, len, has_previous_page: after.is_some() })
    }
}

/// The dataset `name` for the caller: its plan must include it (`market` scope).
fn readable(ctx: &Context<'_>, name: &str) -> AppResult<Arc<Manifest>> {
    let principal = &RequestContext::of(ctx)?.principal;
    principal.require_scope(Scope::Market)?;
    Ok(service::<DatasetService>(ctx)?.readable(principal.require_plan()?, name)?.clone())
}

/// `Security.dataset(name:)`.
pub fn security_dataset(ctx: &Context<'_>, symbol: &Symbol, name: &str) -> AppResult<SecurityDatasetObject> {
    Ok(SecurityDatasetObject { manifest: readable(ctx, name)?, symbol: symbol.clone() })
}

/// The range of `symbols` from `from` to `to`, checked against the dataset's key.
fn range(
    manifest: &Manifest,
    symbols: Vec<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> AppResult<Range> {
    let (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (from.map(|t| t.0), to.map(|t| t.0));
    if !manifest.key.has_time() && (from.is_some() || to.is_some()) {
        return Err(AppError::bad_field(
            "from",
            format!("the dataset `{}` is keyed by symbol alone: its points have no time to range over", manifest.name),
        ));
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(AppError::bad_field("to", "`to` must not be before `from`"));
    }
    Ok(Range { symbols, from, to, after: None, limit: 0 })
}

/// `BAD_USER_INPUT` unless `field` is a field of `manifest` of type `ty`; else its position.
fn position(manifest: &Manifest, field: &str, ty: FieldType) -> AppResult<usize> {
    let Some(at) = manifest.fields.iter().position(|f| f.name == field) else {
        let field: String = field.chars().take(64).collect();
        let names: Vec<&str> = manifest.fields.iter().map(|f| f.name.as_str()).collect();
        return Err(AppError::bad_field(
            "field",
            format!("the dataset `{}` has no field `{field}` (its fields: {})", manifest.name, names.join(", ")),
        ));
    };
    let actual = manifest.fields[at].ty;
    if actual != ty {
        let accessor = ACCESSORS.iter().find(|(_, t)| *t == actual).map_or("", |(name, _)| name);
        return Err(AppError::bad_field(
            "field",
            format!(
                "`{field}` of the dataset `{}` is a {actual} field, not {ty}: read it with `{accessor}(field: \"{field}\")`",
                manifest.name
            ),
        ));
    }
    Ok(at)
}

/// Every accessor under `field` (through edges, nodes and fragments), checked before rows are
/// read: one error, whatever the number of points.
fn check_accessors(field: &SelectionField<'_>, manifest: &Manifest) -> AppResult<()> {
    for child in field.selection_set() {
        if let Some((_, ty)) = ACCESSORS.iter().find(|(name, _)| *name == child.name()) {
            let arguments = child.arguments().map_err(|err| AppError::bad_input(err.message))?;
            for (name, value) in arguments {
                if name.as_str() == "field"
                    && let async_graphql::Value::String(field) = value
                {
                    position(manifest, &field, *ty)?;
                }
            }
        } else {
            check_accessors(&child, manifest)?;
        }
    }
    Ok(())
}

/// Discovery and the many-symbol read.
#[derive(Default)]
pub struct DatasetsQuery;

#[Object]
impl DatasetsQuery {
    /// The proprietary datasets the caller's plan includes, by name.
    #[graphql(cache_control(private, no_cache))]
    async fn datasets(&self, ctx: &Context<'_>) -> Result<Vec<DatasetObject>> {
        let principal = &RequestContext::of(ctx)?.principal;
        principal.require_scope(Scope::Market)?;
        let plan = principal.require_plan()?;
        let datasets = service::<DatasetService>(ctx)?;
        Ok(datasets.all().filter(|m| plan.allows_dataset(&m.name)).cloned().map(DatasetObject).collect())
    }

    /// The points of a dataset for up to 100 symbols with `from <= time < to`, ordered by
    /// symbol then time: all of them, or `BAD_USER_INPUT` when the range holds more than
    /// `first` (never a silently cut series). `first` is also what the request costs (one unit
    /// per point). Symbols not in the dataset have no points. Needs a plan that includes the
    /// dataset (`FORBIDDEN`, `ENTITLEMENT_REQUIRED`); `NOT_FOUND` for a dataset that does not
    /// exist.
    #[graphql(cache_control(private, no_cache))]
    async fn dataset_points(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dataset's name.")] name: String,
        #[graphql(desc = "1 to 100 symbols.")] symbols: Vec<String>,
        #[graphql(desc = "Only points at or after this instant.")] from: Option<Timestamp>,
        #[graphql(desc = "Only points before this instant.")] to: Option<Timestamp>,
        #[graphql(desc = "The most points expected, 1 to 50000 (100 when omitted).")] first: Option<i32>,
    ) -> Result<Vec<DatasetPointObject>> {
        let first = bounded(first.unwrap_or(DEFAULT_POINTS), 1, MAX_POINTS, "first")?;
        let manifest = readable(ctx, &name)?;
        check_accessors(&ctx.field(), &manifest)?;
        if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
            return Err(AppError::bad_field("symbols", format!("between 1 and {MAX_SYMBOLS} symbols")).into());
        }
        let mut canonical = symbols
            .iter()
            .map(|raw| Symbol::parse(raw).map(|s| s.as_str().to_owned()))
            .collect::<AppResult<Vec<_>>>()?;
        canonical.sort();
        canonical.dedup();
        let mut range = range(&manifest, canonical, from, to)?;
        range.limit = first as u64 + 1;
        let rows = service::<DatasetService>(ctx)?.rows(&manifest, range).await?;
        if rows.len() > first {
            return Err(AppError::bad_field(
                "first",
                format!(
                    "more than {first} points in this range: pass a larger `first` (at most {MAX_POINTS}), narrow \
                     `from`/`to`, or ask for fewer symbols"
                ),
            )
            .into());
        }
        Ok((0..rows.len())
            .map(|index| DatasetPointObject { manifest: manifest.clone(), rows: rows.clone(), index })
            .collect())
    }
}

/// How an upload is written.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "DatasetFormat")]
pub enum FormatGql {
    /// A header naming `symbol`, `time` (when keyed by time) and every field, then a row per line.
    Csv,
    /// One JSON object per line; decimals with a fraction as strings.
    JsonLines,
}

/// Rows for a dataset, from a tenant admin.
#[derive(InputObject)]
pub struct LoadDatasetInput {
    /// The dataset's name; its manifest's `loaders` must list the caller's tenant.
    name: String,
    /// `CSV` when omitted.
    #[graphql(default_with = "FormatGql::Csv")]
    format: FormatGql,
    /// The file's text: at most 10,000 rows (and the request body limit).
    data: String,
    /// Replace every row the dataset holds (in the same transaction) rather than upsert by key.
    #[graphql(default)]
    replace: bool,
    /// Write the accepted rows only when at most this many were rejected (0 when omitted:
    /// any reject writes nothing).
    #[graphql(default)]
    max_rejects: i32,
}

/// A rejected row of a load.
#[derive(SimpleObject)]
#[graphql(name = "DatasetReject")]
pub struct RejectObject {
    /// The line it starts on (1 is a CSV's header).
    line: i32,
    /// Why: the column and what is wrong with it.
    message: String,
}

/// What a load did.
#[derive(SimpleObject)]
#[graphql(name = "DatasetLoadReport")]
pub struct LoadReportObject {
    /// Rows that passed every check.
    accepted: i32,
    /// Rows that did not.
    rejected: i32,
    /// The first 100 rejected rows, with why.
    rejects: Vec<RejectObject>,
    /// Whether the accepted rows were written (all of them, in one transaction): false when
    /// more rows were rejected than `maxRejects`.
    written: bool,
    /// Rows the dataset holds after the load; null when nothing was written.
    row_count: Option<i32>,
}

impl From<LoadReport> for LoadReportObject {
    fn from(report: LoadReport) -> Self {
        let int = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            accepted: int(report.accepted),
            rejected: int(report.rejected),
            rejects: report
                .rejects
                .into_iter()
                .map(|r| RejectObject { line: int(r.line), message: r.message })
                .collect(),
            written: report.written,
            row_count: report.rows.map(int),
        }
    }
}

#[derive(Default)]
pub struct DatasetsMutation;

#[Object]
impl DatasetsMutation {
    /// Loads rows into a dataset: checked row by row against its manifest and the catalog, then
    /// written in one transaction (upserted by key, or replacing every row), or not at all.
    /// For admins of a tenant the manifest's `loaders` lists (`FORBIDDEN` otherwise).
    async fn load_dataset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dataset and the file's text.")] input: LoadDatasetInput,
    ) -> Result<LoadReportObject> {
        let principal = &RequestContext::of(ctx)?.principal;
        let tenant = principal.require_admin()?;
        let datasets = service::<DatasetService>(ctx)?;
        let manifest = datasets.manifest(&input.name)?;
        DatasetService::require_loader(manifest, tenant)?;
        let max_rejects = u64::try_from(input.max_rejects)
            .map_err(|_| AppError::bad_field("maxRejects", "`maxRejects` must not be negative"))?;
        let format = match input.format {
            FormatGql::Csv => Format::Csv,
            FormatGql::JsonLines => Format::JsonLines,
        };
        let options = LoadOptions { replace: input.replace, max_rejects };
        let report = datasets.load(manifest, format, input.data.as_bytes(), options, Some(MAX_UPLOAD_ROWS)).await?;
        tracing::info!(actor = %principal.actor(), tenant = %tenant.slug, dataset = %manifest.name, "dataset upload");
        Ok(report.into())
    }
}
