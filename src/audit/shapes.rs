//! Shapes of operations already seen, so that a front end sending the same document thousands
//! of times a second walks it once. Measured (`cargo bench --bench observability`, perf): the
//! walk (field paths, symbols parsed and canonicalised) was a fifth of the request path's CPU
//! with the audit on, more than the writer.
//!
//! Only operations that declare no variables are kept: every other input to the shape (the
//! symbols a variable names) changes per request. The key is the query text, as in
//! `graphql::documents`, bounded by total text size; a document with several operations is
//! kept for the name it was first run under (another name computes afresh).

use std::sync::Arc;

use async_graphql::{Request, parser::types::DocumentOperations};
use moka::sync::Cache;

use super::{Operation, edge::shape_of};

/// Query text held at most, in bytes (the shapes themselves are smaller than their text).
const MAX_TEXT_BYTES: u64 = 4 * 1024 * 1024;
/// Longer documents are walked each time: rare, and they would crowd out the common ones.
const MAX_KEPT_QUERY: usize = 16 * 1024;

/// A kept shape, with the operation name it was computed for.
type Kept = Arc<(Option<String>, Arc<Operation>)>;

#[derive(Clone)]
pub struct ShapeCache {
    shapes: Cache<Arc<str>, Kept>,
}

impl Default for ShapeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ShapeCache {
    pub fn new() -> Self {
        let shapes = Cache::builder()
            .max_capacity(MAX_TEXT_BYTES)
            .weigher(|query: &Arc<str>, _: &Kept| u32::try_from(query.len()).unwrap_or(u32::MAX))
            .build();
        Self { shapes }
    }

    /// The shape of `request`'s operation: kept, or computed (and kept when it can be).
    pub fn shape(&self, request: &mut Request) -> Arc<Operation> {
        if let Some(kept) = self.shapes.get(request.query.as_str())
            && kept.0 == request.operation_name
        {
            return kept.1.clone();
        }
        let shape = Arc::new(shape_of(request));
        if request.query.len() <= MAX_KEPT_QUERY && without_variables(request) {
            let kept = Arc::new((request.operation_name.clone(), shape.clone()));
            self.shapes.insert(Arc::from(request.query.as_str()), kept);
        }
        shape
    }
}

/// Whether no operation of the (parsed) document declares a variable: its shape then depends
/// on the text and the operation name alone.
fn without_variables(request: &mut Request) -> bool {
    let Ok(document) = request.parsed_query() else { return false };
    match &document.operations {
        DocumentOperations::Single(op) => op.node.variable_definitions.is_empty(),
        DocumentOperations::Multiple(ops) => ops.values().all(|op| op.node.variable_definitions.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Variables;
    use serde_json::json;

    use super::*;

    fn request(query: &str, name: Option<&str>, variables: serde_json::Value) -> Request {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        request.operation_name = name.map(str::to_owned);
        request
    }

    #[test]
    fn a_document_without_variables_is_walked_once() {
        let cache = ShapeCache::new();
        let text = r#"{ quotes(symbols: ["aapl.us"]) { last } }"#;
        let first = cache.shape(&mut request(text, None, json!({})));
        let again = cache.shape(&mut request(text, None, json!({})));
        assert!(Arc::ptr_eq(&first, &again), "the kept shape");
        assert_eq!(again.symbols, ["AAPL.US"]);
        assert_eq!(again.fields, ["quotes.last"]);
    }

    #[test]
    fn variables_and_other_operation_names_are_never_served_a_kept_shape() {
        let cache = ShapeCache::new();
        let text = "query Q($s: [String!]!) { quotes(symbols: $s) { last } }";
        let a = cache.shape(&mut request(text, None, json!({ "s": ["AAPL.US"] })));
        let b = cache.shape(&mut request(text, None, json!({ "s": ["MSFT.US"] })));
        assert_eq!((a.symbols.clone(), b.symbols.clone()), (vec!["AAPL.US".to_owned()], vec!["MSFT.US".to_owned()]));
        let two = "query A { quote(symbol: \"AAPL.US\") { last } } query B { quote(symbol: \"MSFT.US\") { bid } }";
        let a = cache.shape(&mut request(two, Some("A"), json!({})));
        let b = cache.shape(&mut request(two, Some("B"), json!({})));
        assert_eq!((a.fields.clone(), b.fields.clone()), (vec!["quote.last".to_owned()], vec!["quote.bid".to_owned()]));
        assert_eq!(b.operation_name.as_deref(), Some("B"));
    }
}
