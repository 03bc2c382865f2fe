//! Manifests: what a dataset is, read from `FINQL_DATASETS_DIR/*.toml` at start.
//!
//! A manifest is configuration, like a plan: every replica reads the same files, and a new
//! field is a deploy. Unknown keys are allowed (a deployment's own annotations: owner, source
//! system, refresh schedule). Names are checked here once, because they become SQL identifiers
//! and GraphQL arguments: a dataset is `[a-z][a-z0-9_]*` (at most 48 bytes, the table is
//! `ds_<name>`), a field the same (at most 63), and never `symbol` or `time`, the key columns.
//!
//! ```toml
//! name = "analyst_ratings"
//! description = "Internal analyst ratings and price targets"
//! key = ["symbol", "time"]        # or ["symbol"]: one row per instrument
//! loaders = ["research"]          # tenants whose admins may `loadDataset` (none when absent)
//! [fields.rating]
//! type = "text"                   # decimal, integer, text, boolean, date, datetime
//! description = "buy, hold or sell"
//! required = true                 # an empty cell is a reject (optional when absent)
//! ```

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    path::Path,
};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::config::Plans;

/// The longest dataset name: `ds_` and the name fit PostgreSQL's 63-byte identifiers with room
/// for index names.
const MAX_NAME: usize = 48;
/// The longest field name: PostgreSQL's identifier limit.
const MAX_FIELD: usize = 63;
/// Fields per dataset, at most: a manifest is a schema, not a spreadsheet export.
const MAX_FIELDS: usize = 100;
/// The key columns' names, which no field may take.
const KEY_COLUMNS: [&str; 2] = ["symbol", "time"];

/// The type of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Exact decimal (stored as its canonical text, like prices).
    Decimal,
    /// 64-bit signed integer.
    Integer,
    Text,
    Boolean,
    /// A calendar day, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339, stored in UTC.
    Datetime,
}

impl FieldType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::Text => "text",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Decimal, Self::Integer, Self::Text, Self::Boolean, Self::Date, Self::Datetime]
            .into_iter()
            .find(|ty| ty.as_str() == raw)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a dataset's rows are keyed: one per instrument, or one per instrument and instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Symbol,
    SymbolTime,
}

impl Key {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Symbol => &KEY_COLUMNS[..1],
            Self::SymbolTime => &KEY_COLUMNS,
        }
    }

    pub fn has_time(self) -> bool {
        self == Self::SymbolTime
    }
}

/// One field of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub description: String,
    /// Whether a row must have a value for it.
    pub required: bool,
}

/// A dataset's manifest, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub key: Key,
    /// Fields, by name.
    pub fields: Vec<Field>,
    /// Slugs of the tenants whose admins may load it through the API.
    pub loaders: Vec<String>,
}

impl Manifest {
    /// The table holding its rows.
    pub fn table(&self) -> String {
        format!("ds_{}", self.name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Parses and checks one manifest's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        raw.check()
    }
}

#[derive(Deserialize)]
struct RawManifest {
    name: String,
    #[serde(default)]
    description: String,
    key: Vec<String>,
    #[serde(default)]
    loaders: Vec<String>,
    fields: BTreeMap<String, RawField>,
}

#[derive(Deserialize)]
struct RawField {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    required: bool,
}

impl RawManifest {
    fn check(self) -> anyhow::Result<Manifest> {
        identifier(&self.name, MAX_NAME).with_context(|| format!("dataset name `{}`", self.name))?;
        let key = match self.key.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["symbol", "time"] => Key::SymbolTime,
            ["symbol"] => Key::Symbol,
            _ => bail!("key must be [\"symbol\", \"time\"] or [\"symbol\"], not {:?}", self.key),
        };
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            bail!("a dataset has 1 to {MAX_FIELDS} fields ([fields.<name>] tables)");
        }
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, raw) in self.fields {
            identifier(&name, MAX_FIELD).with_context(|| format!("field name `{name}`"))?;
            if KEY_COLUMNS.contains(&name.as_str()) {
                bail!("`{name}` is a key column; a field cannot take its name");
            }
            let Some(ty) = FieldType::parse(&raw.ty) else {
                bail!("field `{name}`: unknown type `{}` (decimal, integer, text, boolean, date, datetime)", raw.ty);
            };
            fields.push(Field { name, ty, description: raw.description, required: raw.required });
        }
        Ok(Manifest { name: self.name, description: self.description, key, fields, loaders: self.loaders })
    }
}

/// `[a-z][a-z0-9_]*`, at most `max` bytes.
fn identifier(name: &str, max: usize) -> anyhow::Result<()> {
    let mut bytes = name.bytes();
    let starts = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    if !starts || name.len() > max || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        bail!("must be lower-case letters, digits and `_`, starting with a letter, at most {max} bytes");
    }
    Ok(())
}

/// The manifests in `dir` (`*.toml`, sorted by file name); two declaring one name is an error.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Manifest>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading FINQL_DATASETS_DIR {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("reading FINQL_DATASETS_DIR {}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut names = HashSet::new();
    let mut manifests = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest = Manifest::parse(&text).with_context(|| format!("dataset manifest {}", path.display()))?;
        if !names.insert(manifest.name.clone()) {
            bail!("dataset `{}` is declared twice (again in {})", manifest.name, path.display());
        }
        manifests.push(manifest);
    }
    Ok(manifests)
}

/// The deployment's manifests (`FINQL_DATASETS_DIR`; none when unset), with every dataset a
/// plan lists checked to exist: a typo in a plan file would otherwise refuse data silently.
pub fn configured(dir: Option<&Path>, plans: &Plans) -> anyhow::Result<Vec<Manifest>> {
    let manifests = match dir {
        Some(dir) => load_dir(dir)?,
        None => Vec::new(),
    };
    for plan in plans.names().into_iter().filter_map(|name| plans.get(name)) {
        for dataset in plan.datasets.iter().flatten() {
            if !manifests.iter().any(|m| m.name == *dataset) {
                bail!(
                    "plan `{}` lists the dataset `{dataset}`, which no manifest in FINQL_DATASETS_DIR declares",
                    plan.name
                );
            }
        }
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATINGS: &str = r#"
        name = "analyst_ratings"
        description = "ratings"
        key = ["symbol", "time"]
        owner = "research desk"
        [fields.rating]
        type = "text"
        description = "buy, hold or sell"
        required = true
        [fields.target]
        type = "decimal"
    "#;

    #[test]
    fn the_issue_shape_parses_with_extra_keys() {
        let m = Manifest::parse(RATINGS).unwrap();
        assert_eq!(m.name, "analyst_ratings");
        assert_eq!(m.table(), "ds_analyst_ratings");
        assert_eq!(m.key, Key::SymbolTime);
        assert_eq!(m.field("rating").unwrap().ty, FieldType::Text);
        assert!(m.field("rating").unwrap().required);
        assert_eq!(m.field("target").unwrap().ty, FieldType::Decimal);
        assert!(!m.field("target").unwrap().required);
        assert!(m.loaders.is_empty());
        let by_symbol = Manifest::parse(&RATINGS.replace(r#"["symbol", "time"]"#, r#"["symbol"]"#)).unwrap();
        assert_eq!(by_symbol.key, Key::Symbol);
    }

    #[test]
    fn names_that_would_be_unsafe_or_ambiguous_are_refused() {
        let err = |text: &str| format!("{:#}", Manifest::parse(text).unwrap_err());
        assert!(err(&RATINGS.replace("analyst_ratings", "Ratings; DROP TABLE x")).contains("dataset name"));
        assert!(err(&RATINGS.replace("analyst_ratings", &"a".repeat(49))).contains("at most 48"));
        assert!(err(&RATINGS.replace("fields.target", "fields.time")).contains("key column"));
        assert!(err(&RATINGS.replace("fields.target", "fields.\"Target\"")).contains("field name `Target`"));
        assert!(err(&RATINGS.replace("\"decimal\"", "\"float\"")).contains("unknown type `float`"));
        assert!(err(&RATINGS.replace(r#"["symbol", "time"]"#, r#"["time", "symbol"]"#)).contains("key must be"));
        assert!(err("name = \"x\"\nkey = [\"symbol\"]\n[fields]\n").contains("1 to 100 fields"));
    }

    #[test]
    fn a_directory_loads_sorted_and_refuses_a_name_twice() {
        let dir = std::env::temp_dir().join(format!("finql-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.toml"), RATINGS).unwrap();
        std::fs::write(dir.join("a.toml"), RATINGS.replace("analyst_ratings", "esg")).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let names: Vec<_> = load_dir(&dir).unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["esg", "analyst_ratings"]);
        std::fs::write(dir.join("c.toml"), RATINGS).unwrap();
        assert!(format!("{:#}", load_dir(&dir).unwrap_err()).contains("declared twice"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
