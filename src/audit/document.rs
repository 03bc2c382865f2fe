//! What an operation asks for, read from its parsed document: the field paths it selects and
//! the symbols it names, for the audit record; and the document's SHA-256, which identifies the
//! query text without storing it (the text may hold literals a tenant considers private).
//!
//! Field paths are the leaves of the selection, by field name from the operation's root:
//! `{ q: quotes(symbols: $s) { last ...Px } }` with `fragment Px on Quote { bid }` gives
//! `quotes.bid` and `quotes.last`. Aliases are resolved to field names (an alias is the
//! client's label, not what it read), fragments (named and inline) are expanded, paths are
//! deduplicated and sorted, and `__typename` (no data) is left out. Symbols are the values of
//! `symbol` and `symbols` arguments anywhere in the operation, literals or variables (a
//! variable's default applies when the request has none), canonicalised by `Symbol::parse`;
//! what does not parse as a symbol was refused by its resolver and read nothing, so it is not
//! listed.
//!
//! A proprietary dataset is named in its path, and so is each field read from it: a field
//! with a `name` argument (`dataset`, `datasetPoints`) or an `input` naming one
//! (`loadDataset`), and a point's accessors' `field` argument, give
//! `security.dataset(analyst_ratings).points.nodes.decimal(target)`: who read which internal
//! figure is the question the audit answers.
//!
//! The walk is bounded whatever the document (WebSocket operations reach it before execution's
//! validation): a fragment is not expanded inside itself, depth stops at [`MAX_DEPTH`](crate::audit::document::MAX_DEPTH), and at
//! most [`MAX_FIELDS`](crate::audit::document::MAX_FIELDS) paths and
//! [`MAX_SYMBOLS`](crate::audit::document::MAX_SYMBOLS) symbols are kept (`truncated` says so).

use std::collections::{BTreeSet, HashSet};

use crate::{persisted::DocumentHash, reference::Symbol};
use async_graphql::{
    Name, Value, Variables,
    parser::types::{
        DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
    },
};

/// Deeper selections are not walked. The edge guards refuse documents past
/// `FINQL_MAX_DEPTH` (default 12) anyway; this bounds the walk on its own.
pub const MAX_DEPTH: usize = 32;
/// Paths kept per record: a real query selects tens; the cap bounds a row (~10 KB of text).
pub const MAX_FIELDS: usize = 256;
/// Symbols kept per record: `quotes` takes at most 500; a compliance question is "who read
/// X", answered for every request that names at most this many.
pub const MAX_SYMBOLS: usize = 500;
/// The fields whose `name` argument (or `input.name`) is a dataset's.
const DATASET_FIELDS: [&str; 3] = ["dataset", "datasetPoints", "loadDataset"];
/// Longest operation name kept (the column's width).
pub const MAX_NAME: usize = 128;

/// The shape of one operation, computed before it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operation {
    /// `None` when the document names no operation that would run (execution then fails).
    pub operation_type: Option<OperationType>,
    pub operation_name: Option<String>,
    /// SHA-256 of the query text, lower-case hex; `None` when there was no document.
    pub document_hash: Option<String>,
    /// Leaf field paths (`quotes.last`), sorted.
    pub fields: Vec<String>,
    /// Canonical symbols (`AAPL.US`), sorted.
    pub symbols: Vec<String>,
    /// Whether paths or symbols were cut at their caps.
    pub truncated: bool,
}

impl Operation {
    /// The operation `operation_name` picks in `document` (the only one when `None`), with
    /// `variables` resolving symbol arguments; `hash` is the [`document_hash`] of the text the
    /// document was parsed from.
    pub fn of(
        hash: String,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Self {
        let mut operation = Self { document_hash: Some(hash), ..Self::default() };
        let picked = match (&document.operations, operation_name) {
            (DocumentOperations::Single(op), _) => Some((None, &op.node)),
            (DocumentOperations::Multiple(ops), Some(name)) => {
                ops.get_key_value(name).map(|(name, op)| (Some(name), &op.node))
            }
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.iter().next().map(|(name, op)| (Some(name), &op.node))
            }
            _ => None,
        };
        let Some((name, definition)) = picked else {
            operation.operation_name = operation_name.map(truncate_name);
            return operation;
        };
        operation.operation_type = Some(definition.ty);
        operation.operation_name = name.map(|n| truncate_name(n.as_str()));
        let mut walk = Walk {
            document,
            definition,
            variables,
            fields: BTreeSet::new(),
            symbols: BTreeSet::new(),
            expanding: HashSet::new(),
            truncated: false,
        };
        walk.selection_set(&definition.selection_set.node, "", 0);
        operation.fields = walk.fields.into_iter().collect();
        operation.symbols = walk.symbols.into_iter().collect();
        operation.truncated = walk.truncated;
        operation
    }

    /// The lower-case name of the operation type (`query`, `mutation`, `subscription`).
    pub fn type_name(&self) -> Option<&'static str> {
        self.operation_type.map(|ty| match ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        })
    }
}

/// SHA-256 of the query text, lower-case hex: a persisted document's id, for a request that
/// named one (`persisted`).
pub fn document_hash(query: &str) -> String {
    DocumentHash::of(query).into()
}

fn truncate_name(name: &str) -> String {
    name.chars().take(MAX_NAME).collect()
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    definition: &'a OperationDefinition,
    variables: &'a Variables,
    fields: BTreeSet<String>,
    symbols: BTreeSet<String>,
    /// Fragments being expanded on the current path (a cycle is not followed).
    expanding: HashSet<&'a Name>,
    truncated: bool,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, prefix: &str, depth: usize) {
        if depth >= MAX_DEPTH {
            self.truncated = true;
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    for (index, (name, _)) in field.arguments.iter().enumerate() {
                        if matches!(name.node.as_str(), "symbol" | "symbols") {
                            self.symbol_argument(field, index);
                        }
                    }
                    let name = field.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let name = match self.named_argument(field) {
                        Some(argument) => format!("{name}({argument})"),
                        None => name.to_owned(),
                    };
                    let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
                    if field.selection_set.node.items.is_empty() {
                        self.field(path);
                    } else {
                        self.selection_set(&field.selection_set.node, &path, depth + 1);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node, prefix, depth + 1);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = self.document.fragments.get(name) else { continue };
                    if self.expanding.insert(name) {
                        self.selection_set(&fragment.node.selection_set.node, prefix, depth + 1);
                        self.expanding.remove(name);
                    }
                }
            }
        }
    }

    fn field(&mut self, path: String) {
        if self.fields.len() < MAX_FIELDS {
            self.fields.insert(path);
        } else if !self.fields.contains(&path) {
            self.truncated = true;
        }
    }

    /// What a dataset field names: its `name` or `field` argument, or its `input`'s `name`
    /// (variables resolved; only short identifiers, as dataset and field names are).
    fn named_argument(&self, field: &Field) -> Option<String> {
        let (variables, definition) = (self.variables, self.definition);
        let dataset = DATASET_FIELDS.contains(&field.name.node.as_str());
        let (name, value) = field.arguments.iter().find(|(name, _)| match name.node.as_str() {
            "name" | "input" => dataset,
            argument => argument == "field",
        })?;
        let value = value.node.clone().into_const_with(|name: Name| {
            variables.get(&name).cloned().or_else(|| default_of(definition, &name)).ok_or(())
        });
        let text = match (name.node.as_str(), value.ok()?) {
            ("input", Value::Object(input)) => match input.get("name") {
                Some(Value::String(text)) => text.clone(),
                _ => return None,
            },
            ("name" | "field", Value::String(text)) => text,
            _ => return None,
        };
        let identifier = text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        identifier.then_some(text)
    }

    /// A `symbol`/`symbols` argument, variables resolved (a variable neither given nor
    /// defaulted leaves nothing to list).
    fn symbol_argument(&mut self, field: &Field, index: usize) {
        let (variables, definition) = (self.variables, self.definition);
        let resolved = field.arguments[index].1.node.clone().into_const_with(|name: Name| {
            variables.get(&name).cloned().or_else(|| default_of(definition, &name)).ok_or(())
        });
        if let Ok(value) = resolved {
            self.symbol_value(&value);
        }
    }

    fn symbol_value(&mut self, value: &Value) {
        match value {
            Value::String(raw) => self.symbol(raw),
            Value::List(items) => items.iter().for_each(|item| self.symbol_value(item)),
            _ => {}
        }
    }

    fn symbol(&mut self, raw: &str) {
        let Ok(symbol) = Symbol::parse(raw) else { return };
        if self.symbols.len() < MAX_SYMBOLS {
            self.symbols.insert(symbol.as_str().to_owned());
        } else if !self.symbols.contains(symbol.as_str()) {
            self.truncated = true;
        }
    }
}

fn default_of(definition: &OperationDefinition, name: &Name) -> Option<Value> {
    let variable = definition.variable_definitions.iter().find(|d| d.node.name.node == *name)?;
    variable.node.default_value.as_ref().map(|value| value.node.clone())
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    fn shape(query: &str, name: Option<&str>, variables: serde_json::Value) -> Operation {
        let document = parse_query(query).unwrap();
        Operation::of(document_hash(query), &document, name, &Variables::from_json(variables))
    }

    #[test]
    fn aliases_resolve_and_fragments_expand() {
        let query = r#"
            query Desk($s: [String!]!) {
                q: quotes(symbols: $s) { last ...Px ... on Quote { last volume } __typename }
                security(symbol: "aapl.us") { fundamentals { pe } name }
            }
            fragment Px on Quote { bid ask }
        "#;
        let op = shape(query, None, json!({ "s": ["700.hk", "0700.HK", "FX:eurusd"] }));
        assert_eq!(op.operation_type, Some(OperationType::Query));
        assert_eq!(op.operation_name.as_deref(), Some("Desk"));
        assert_eq!(
            op.fields,
            ["quotes.ask", "quotes.bid", "quotes.last", "quotes.volume", "security.fundamentals.pe", "security.name"]
        );
        assert_eq!(op.symbols, ["700.HK", "AAPL.US", "FX:EURUSD"]);
        assert_eq!(op.document_hash.as_deref(), Some(document_hash(query).as_str()));
        assert_eq!(op.document_hash.as_deref().map(str::len), Some(64));
        assert!(!op.truncated);
    }

    #[test]
    fn datasets_and_their_fields_are_named_in_paths() {
        let query = r#"
            query($d: String!, $f: String = "target") {
                security(symbol: "aapl.us") {
                    dataset(name: "analyst_ratings") { points { nodes { time r: text(field: "rating") decimal(field: $f) } } }
                }
                datasetPoints(name: $d, symbols: ["700.HK"]) { symbol boolean(field: "x; DROP") }
                createApiKey(input: { name: "ci_key" }) { secret }
            }
        "#;
        let op = shape(query, None, json!({ "d": "esg" }));
        assert_eq!(
            op.fields,
            [
                "createApiKey.secret",
                "datasetPoints(esg).boolean",
                "datasetPoints(esg).symbol",
                "security.dataset(analyst_ratings).points.nodes.decimal(target)",
                "security.dataset(analyst_ratings).points.nodes.text(rating)",
                "security.dataset(analyst_ratings).points.nodes.time",
            ]
        );
        assert_eq!(op.symbols, ["700.HK", "AAPL.US"]);
        let load = shape("mutation { loadDataset(input: { name: \"esg\", data: \"\" }) { written } }", None, json!({}));
        assert_eq!(load.fields, ["loadDataset(esg).written"]);
    }

    #[test]
    fn the_named_operation_is_read_and_variable_defaults_apply() {
        let query = r#"
            query A { quote(symbol: "AAPL.US") { last } }
            query B($s: String = "MSFT.US") { quote(symbol: $s) { bid } }
        "#;
        let op = shape(query, Some("B"), json!({}));
        assert_eq!(op.fields, ["quote.bid"]);
        assert_eq!(op.symbols, ["MSFT.US"]);
        assert_eq!(op.operation_name.as_deref(), Some("B"));
        // No name among several: nothing would run.
        let op = shape(query, None, json!({}));
        assert_eq!(op.operation_type, None);
        assert!(op.fields.is_empty());
    }

    #[test]
    fn invalid_symbols_are_not_listed_and_cyclic_fragments_end() {
        let query = r#"
            { quotes(symbols: ["AAPL.US", "not a symbol", 7]) { ...A } }
            fragment A on Quote { last ...B }
            fragment B on Quote { bid ...A }
        "#;
        let op = shape(query, None, json!({}));
        assert_eq!(op.symbols, ["AAPL.US"]);
        assert_eq!(op.fields, ["quotes.bid", "quotes.last"]);
    }

    #[test]
    fn paths_are_capped() {
        let fields: Vec<String> = (0..MAX_FIELDS + 5).map(|i| format!("f{i}")).collect();
        let query = format!("{{ {} }}", fields.join(" "));
        let op = shape(&query, None, json!({}));
        assert_eq!(op.fields.len(), MAX_FIELDS);
        assert!(op.truncated);
    }
}
