//! Null propagation as the GraphQL specification says it ("Handling Execution Errors"), applied
//! to an executed response at the edge.
//!
//! async-graphql 7 does not propagate nulls. A field whose resolver fails is left out of its
//! parent object, whatever its type, and the parent stays; an object none of whose fields
//! resolved becomes `null` however it is typed. So `{ a: quote(…) b: quote(symbol: "NOPE.US") }`
//! answered `{"data": {"a": {…}}}`: Apollo Client warns "Missing field 'b'", and typed clients
//! reject the result. The specification's rule, applied here to each error with a `path`:
//! - the position the error is at (a field, or a list item) is `null`;
//! - if its type is non-null, the null moves to the enclosing position (the parent field or
//!   list item), and on up until a nullable position takes it; past the root field, `data`
//!   itself is `null`.
//!
//! So a failed nullable field is `null` beside its error (not missing), and a failed non-null
//! field nulls its nearest nullable ancestor. Each error keeps its own path and code.
//!
//! After execution rather than as an async-graphql extension: with any extension registered,
//! every field leaves async-graphql's fast path (see `graphql::guard`). This runs only for an
//! answer with field errors, walking the document once along each error's path; the types come
//! from the schema's own SDL (`TypeIndex`), so the kit stays free of domain types.

use async_graphql::{
    Name, PathSegment, Response, Value,
    parser::types::{BaseType, ExecutableDocument, Field, Selection, SelectionSet, Type},
};

use super::guard::{self, demand::TypeIndex};

/// How deep fragment spreads may nest while looking for a field: a document with a cycle is
/// refused by the edge guards before it runs, but this must not trust that.
const MAX_SPREADS: usize = 32;

/// Whether `response` has field errors (errors with a path), the only ones that null anything:
/// when it has none, there is nothing to do and no need to fetch the document.
pub fn needed(response: &Response) -> bool {
    response.errors.iter().any(|err| !err.path.is_empty())
}

/// Applies null propagation to `response`, which executed `operation_name` of `document`.
/// Errors whose path the document does not explain (which execution never produces) are left
/// as they are.
pub fn propagate(
    response: &mut Response,
    index: &TypeIndex,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) {
    let Some(operation) = guard::operation(document, operation_name) else { return };
    let walk = Walk { index, document };
    let root = index.root(operation.ty);
    // Where each error's null lands: `None` for `data` itself.
    let mut targets: Vec<Option<&[PathSegment]>> = response
        .errors
        .iter()
        .filter(|err| !err.path.is_empty())
        .filter_map(|err| {
            let nullable = walk.nullability(root, &operation.selection_set.node, &err.path)?;
            Some(nullable.iter().rposition(|nullable| *nullable).map(|at| &err.path[..=at]))
        })
        .collect();
    // Outermost first: a null that lands inside one already placed changes nothing.
    targets.sort_by_key(|target| target.map_or(0, |path| path.len() + 1));
    let mut placed: Vec<&[PathSegment]> = Vec::new();
    for target in targets {
        let Some(path) = target else {
            response.data = Value::Null;
            return;
        };
        if placed.iter().any(|outer| path.starts_with(outer)) {
            continue;
        }
        set_null(&mut response.data, path);
        placed.push(path);
    }
}

/// Makes the position at `path` of `data` null. An object on the way that async-graphql left
/// `null` (none of its fields resolved) or out is an object again; a list that is not there
/// has nowhere to put an item (its own null is placed by the error that removed it).
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = data;
    for (i, segment) in parents.iter().enumerate() {
        let next_is_field = matches!(path[i + 1], PathSegment::Field(_));
        at = match segment {
            PathSegment::Field(key) => {
                let Some(object) = object_of(at) else { return };
                let child = object.entry(Name::new(key)).or_insert(Value::Null);
                if matches!(child, Value::Null) && next_is_field {
                    *child = Value::Object(Default::default());
                }
                child
            }
            PathSegment::Index(i) => match at {
                Value::List(items) => match items.get_mut(*i) {
                    Some(item) => item,
                    None => return,
                },
                _ => return,
            },
        };
    }
    match (last, at) {
        (PathSegment::Field(key), at) => {
            if let Some(object) = object_of(at) {
                object.insert(Name::new(key), Value::Null);
            }
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// The object at a position that holds fields: `null` (async-graphql's empty object) becomes one.
fn object_of(value: &mut Value) -> Option<&mut async_graphql::indexmap::IndexMap<Name, Value>> {
    if matches!(value, Value::Null) {
        *value = Value::Object(Default::default());
    }
    match value {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// The document and the schema's types, to tell what each position of a path is.
struct Walk<'a> {
    index: &'a TypeIndex,
    document: &'a ExecutableDocument,
}

impl<'a> Walk<'a> {
    /// Whether each position along `path` (the field or list item at `path[..=i]`) may be
    /// null, from the root type `root` whose selection is `set`. `None` when the path does not
    /// follow the document.
    fn nullability(&self, root: &str, set: &'a SelectionSet, path: &[PathSegment]) -> Option<Vec<bool>> {
        let mut nullable = Vec::with_capacity(path.len());
        // The selection sets that apply at the current position, each with the type it selects on.
        let mut sets: Vec<(&'a SelectionSet, String)> = vec![(set, root.to_owned())];
        let mut current: Option<Type> = None;
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let mut found = Vec::new();
                    for (set, on) in &sets {
                        self.collect(set, on, key, 0, &mut found);
                    }
                    let ty =
                        found.iter().find_map(|(field, on)| self.index.field_type(on, field.name.node.as_str()))?;
                    let named = named_type(&ty.base).to_owned();
                    sets = found.iter().map(|(field, _)| (&field.selection_set.node, named.clone())).collect();
                    nullable.push(ty.nullable);
                    current = Some(ty.clone());
                }
                PathSegment::Index(_) => {
                    let BaseType::List(item) = current?.base else { return None };
                    nullable.push(item.nullable);
                    current = Some(*item);
                }
            }
        }
        Some(nullable)
    }

    /// The fields of `set` (through fragments) answering under response key `key`, each with
    /// the type it is selected on (a fragment's type condition, else `on`).
    fn collect(
        &self,
        set: &'a SelectionSet,
        on: &str,
        key: &str,
        spreads: usize,
        found: &mut Vec<(&'a Field, String)>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) if field.node.response_key().node == key => {
                    found.push((&field.node, on.to_owned()));
                }
                Selection::Field(_) => {}
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = inline.type_condition.as_ref().map_or(on, |condition| condition.node.on.node.as_str());
                    self.collect(&inline.selection_set.node, on, key, spreads, found);
                }
                Selection::FragmentSpread(spread) if spreads < MAX_SPREADS => {
                    if let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) {
                        let fragment = &fragment.node;
                        let on = fragment.type_condition.node.on.node.as_str();
                        self.collect(&fragment.selection_set.node, on, key, spreads + 1, found);
                    }
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
}

/// The named type under lists and non-null.
fn named_type(base: &BaseType) -> &str {
    match base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named_type(&item.base),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{ServerError, parser::parse_query};
    use serde_json::json;

    use super::*;

    const SDL: &str = r#"
        type Query { quote(symbol: String!): Quote  strict(symbol: String!): Quote!  quotes: [Quote]!  strictList: [Quote!]  node(id: ID!): Node }
        interface Node { id: ID! }
        type Security implements Node { id: ID! quote: Quote symbol: String! }
        type Quote { last: String! source: String! volume: String }
    "#;

    fn field_error(path: serde_json::Value) -> ServerError {
        let mut err = ServerError::new("failed", None);
        err.path = serde_json::from_value(path).unwrap();
        err
    }

    /// Runs propagation on `data` with errors at `paths`; returns the data.
    fn propagated(query: &str, data: serde_json::Value, paths: &[serde_json::Value]) -> serde_json::Value {
        let mut response = Response::new(Value::from_json(data).unwrap());
        response.errors = paths.iter().cloned().map(field_error).collect();
        assert!(needed(&response));
        let document = parse_query(query).unwrap();
        propagate(&mut response, &TypeIndex::from_sdl(SDL), &document, None);
        assert_eq!(response.errors.len(), paths.len(), "errors are kept");
        response.data.into_json().unwrap()
    }

    #[test]
    fn a_nullable_field_that_failed_is_null_not_missing() {
        let query = r#"{ a: quote(symbol: "A") { last } b: quote(symbol: "B") { last } }"#;
        let data = propagated(query, json!({ "a": { "last": "1" } }), &[json!(["b"])]);
        assert_eq!(data, json!({ "a": { "last": "1" }, "b": null }));
        // async-graphql makes an object none of whose fields resolved `null`: `data` too.
        assert_eq!(propagated(query, json!(null), &[json!(["a"]), json!(["b"])]), json!({ "a": null, "b": null }));
    }

    #[test]
    fn a_non_null_field_nulls_its_nearest_nullable_ancestor() {
        let query = r#"{ quote(symbol: "A") { last source } strict(symbol: "B") { last } }"#;
        // `source` is non-null: its null takes `quote`, which is nullable.
        let data = propagated(
            query,
            json!({ "quote": { "last": "1" }, "strict": { "last": "2" } }),
            &[json!(["quote", "source"])],
        );
        assert_eq!(data, json!({ "quote": null, "strict": { "last": "2" } }));
        // `strict` is non-null too: the null reaches `data`.
        assert_eq!(propagated(query, json!({ "quote": { "last": "1" } }), &[json!(["strict"])]), json!(null));
    }

    #[test]
    fn list_items_and_fragments() {
        // A nullable item takes the null; a non-null item passes it to its (nullable) list.
        let query = "{ quotes { last source } strictList { last source } }";
        let data = propagated(
            query,
            json!({ "quotes": [{ "last": "1", "source": "s" }, { "last": "2" }] }),
            &[json!(["quotes", 1, "source"]), json!(["strictList", 0, "source"])],
        );
        assert_eq!(data, json!({ "quotes": [{ "last": "1", "source": "s" }, null], "strictList": null }));
        // Through an interface's inline fragment and a named fragment.
        let query =
            r#"{ node(id: "x") { id ... on Security { ...Q } } } fragment Q on Security { q: quote { source } }"#;
        let data = propagated(query, json!({ "node": { "id": "x", "q": {} } }), &[json!(["node", "q", "source"])]);
        assert_eq!(data, json!({ "node": { "id": "x", "q": null } }));
    }

    #[test]
    fn a_path_the_document_does_not_explain_changes_nothing() {
        let query = r#"{ quote(symbol: "A") { last } }"#;
        let data = propagated(query, json!({ "quote": { "last": "1" } }), &[json!(["other"]), json!(["quote", 0])]);
        assert_eq!(data, json!({ "quote": { "last": "1" } }));
    }
}
