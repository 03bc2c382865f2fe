//! Parsed documents, kept by query text.
//!
//! Clients send the same few operations over and over (generated clients, dashboards polling
//! a watchlist), and parsing is the single largest cost of a small query: in a profile of the
//! 10-quote benchmark the GraphQL parser took about a quarter of the server's CPU. A cached
//! document is cloned into the request instead (a tree copy, where names are shared `Arc`s).
//!
//! Only documents that parsed and passed the edge guards are kept, so a hit skips both:
//! `insert` takes the `Checked` that only `guard::check_document` makes, so a document that was
//! refused (a fragment bomb, say) cannot be kept and is refused again every time. The
//! cache is bounded by the total length of the query texts it holds and evicts by frequency
//! (moka's TinyLFU), so a client sending endless distinct queries cannot grow it or push the
//! hot operations out.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use moka::sync::Cache;

use super::guard::Checked;

/// About this many bytes of query text (documents take a few times more in memory).
const MAX_QUERY_BYTES: u64 = 4 * 1024 * 1024;
/// Larger queries are rare and cheap to parse relative to their execution: not kept.
const MAX_CACHED_QUERY: usize = 16 * 1024;

#[derive(Clone)]
pub struct DocumentCache {
    documents: Cache<Arc<str>, Arc<(ExecutableDocument, Checked)>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DocumentCache {
    pub fn new() -> Self {
        let documents = Cache::builder()
            .max_capacity(MAX_QUERY_BYTES)
            .weigher(|query: &Arc<str>, _: &Arc<(ExecutableDocument, Checked)>| {
                u32::try_from(query.len()).unwrap_or(u32::MAX)
            })
            .build();
        Self { documents }
    }

    /// The document parsed and checked earlier from exactly this text, if any.
    pub fn get(&self, query: &str) -> Option<(ExecutableDocument, Checked)> {
        self.documents.get(query).map(|kept| (kept.0.clone(), kept.1))
    }

    /// Keeps a document that parsed and passed the guards.
    pub fn insert(&self, query: &str, document: &ExecutableDocument, checked: Checked) {
        if query.len() <= MAX_CACHED_QUERY {
            self.documents.insert(Arc::from(query), Arc::new((document.clone(), checked)));
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;
    use crate::{config::Config, graphql::guard::check_document};

    fn checked(document: &ExecutableDocument) -> Checked {
        let config = Config::from_lookup(|key| (key == "JWT_SECRET").then(|| "x".repeat(32))).expect("config");
        check_document(document, &config.limits).expect("passes the guards")
    }

    #[test]
    fn a_kept_document_comes_back_for_the_same_text_only() {
        let cache = DocumentCache::new();
        let text = "{ quotes(symbols: [\"AAPL.US\"]) { last } }";
        let document = parse_query(text).unwrap();
        assert!(cache.get(text).is_none());
        cache.insert(text, &document, checked(&document));
        let (kept, _) = cache.get(text).expect("kept");
        assert_eq!(format!("{:?}", kept.operations), format!("{:?}", document.operations));
        assert!(cache.get("{ quotes(symbols: [\"MSFT.US\"]) { last } }").is_none());
    }

    #[test]
    fn very_large_queries_are_not_kept() {
        let cache = DocumentCache::new();
        let text = format!("{{ __typename {} }}", " ".repeat(MAX_CACHED_QUERY));
        let document = parse_query(&text).unwrap();
        cache.insert(&text, &document, checked(&document));
        assert!(cache.get(&text).is_none());
    }
}
