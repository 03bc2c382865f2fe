//! The protocol on request objects, with a shared store in memory (one that answers, and one
//! that never does, as a Redis outage looks through the guard). Over HTTP, with Redis:
//! `tests/api/http/persisted.rs`.

use std::{collections::HashMap, sync::Mutex};

use serde_json::json;

use super::*;
use crate::resilience::redis::RedisUnavailable;

const QUOTE: &str = "{ quote(symbol: \"AAPL.US\") { last } }";

/// A shared store in memory; `down` answers every call as an open breaker does.
#[derive(Default)]
struct Memory {
    documents: Mutex<HashMap<DocumentHash, String>>,
    down: bool,
}

#[async_trait::async_trait]
impl SharedDocuments for Memory {
    async fn get(&self, hash: &DocumentHash) -> Result<Option<String>, RedisUnavailable> {
        if self.down {
            return Err(RedisUnavailable::Open);
        }
        Ok(self.documents.lock().unwrap().get(hash).cloned())
    }

    async fn put(&self, hash: &DocumentHash, text: &str) -> Result<(), RedisUnavailable> {
        if self.down {
            return Err(RedisUnavailable::Open);
        }
        self.documents.lock().unwrap().insert(hash.clone(), text.into());
        Ok(())
    }
}

fn documents(shared: Option<Arc<dyn SharedDocuments>>) -> PersistedDocuments {
    PersistedDocuments::new(&PersistedSettings::default(), shared).unwrap()
}

fn apq(hash: &str, query: Option<&str>) -> Value {
    let mut request = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    if let Some(query) = query {
        request["query"] = json!(query);
    }
    request
}

fn code_and_reason(refusal: Refusal) -> (String, Option<String>, bool) {
    let malformed = refusal.is_malformed();
    let extensions = refusal.into_error().extensions.unwrap();
    let text = |key: &str| extensions.get(key).map(|value| value.to_string().trim_matches('"').to_owned());
    (text("code").unwrap(), text("reason"), malformed)
}

#[tokio::test]
async fn apq_hash_alone_is_not_found_until_registered_then_fills_in_the_query() {
    let documents = documents(None);
    let hash = DocumentHash::of(QUOTE).to_string();
    let refusal = documents.resolve(&mut apq(&hash, None)).await.unwrap_err();
    assert_eq!(refusal.error.message, "PersistedQueryNotFound");
    assert_eq!(code_and_reason(refusal), ("PERSISTED_QUERY_NOT_FOUND".into(), None, false));
    let registration = documents.resolve(&mut apq(&hash, Some(QUOTE))).await.unwrap();
    // Not kept until the edge hands it over (after the guards).
    assert!(documents.resolve(&mut apq(&hash, None)).await.is_err());
    documents.register(registration).await;
    let mut request = apq(&hash, None);
    assert!(documents.resolve(&mut request).await.unwrap().is_none());
    assert_eq!(request["query"], QUOTE);
    // Registered already: nothing to register again.
    assert!(documents.resolve(&mut apq(&hash, Some(QUOTE))).await.unwrap().is_none());
    let mut by_id = json!({ "documentId": DocumentHash::of(QUOTE).document_id(), "variables": {} });
    documents.resolve(&mut by_id).await.unwrap();
    assert_eq!(by_id, json!({ "query": QUOTE, "variables": {} }));
}

#[tokio::test]
async fn protocol_errors_are_malformed_requests_with_a_reason() {
    let documents = documents(None);
    let hash = DocumentHash::of(QUOTE).to_string();
    let other = DocumentHash::of("{ me { id } }").to_string();
    let cases = [
        (apq(&other, Some(QUOTE)), Some("PERSISTED_QUERY_HASH_MISMATCH")),
        (
            json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
            Some("PERSISTED_QUERY_VERSION_UNSUPPORTED"),
        ),
        (json!({ "extensions": { "persistedQuery": "yes" } }), Some("DOCUMENT_ID_MALFORMED")),
        (apq("abc", None), Some("DOCUMENT_ID_MALFORMED")),
        (json!({ "documentId": format!("md5:{hash}") }), Some("DOCUMENT_ID_MALFORMED")),
        (json!({ "documentId": 7 }), Some("DOCUMENT_ID_MALFORMED")),
        (json!({ "documentId": format!("sha256:{hash}"), "query": QUOTE }), None),
    ];
    for (mut request, reason) in cases {
        let refusal = documents.resolve(&mut request).await.unwrap_err();
        assert_eq!(code_and_reason(refusal), ("BAD_USER_INPUT".into(), reason.map(String::from), true), "{request}");
    }
    // Free text, and anything that is not an object, are for the edge to read.
    assert!(documents.resolve(&mut json!({ "query": QUOTE })).await.unwrap().is_none());
    assert!(documents.resolve(&mut json!([1])).await.unwrap().is_none());
}

#[tokio::test]
async fn a_document_over_the_size_limit_is_not_registered() {
    let settings = PersistedSettings { max_bytes: QUOTE.len() - 1, ..PersistedSettings::default() };
    let documents = PersistedDocuments::new(&settings, None).unwrap();
    let refusal = documents.resolve(&mut apq(&DocumentHash::of(QUOTE).to_string(), Some(QUOTE))).await.unwrap_err();
    assert_eq!(code_and_reason(refusal), ("BAD_USER_INPUT".into(), Some("PERSISTED_DOCUMENT_TOO_LARGE".into()), false));
}

#[tokio::test]
async fn replicas_share_registrations_and_a_silent_store_fails_nothing() {
    let shared: Arc<dyn SharedDocuments> = Arc::new(Memory::default());
    let (a, b) = (documents(Some(shared.clone())), documents(Some(shared)));
    let hash = DocumentHash::of(QUOTE).to_string();
    a.register(a.resolve(&mut apq(&hash, Some(QUOTE))).await.unwrap()).await;
    let mut request = apq(&hash, None);
    b.resolve(&mut request).await.unwrap();
    assert_eq!(request["query"], QUOTE, "B reads what A registered");

    let down = documents(Some(Arc::new(Memory { down: true, ..Memory::default() })));
    let refusal = down.resolve(&mut apq(&hash, None)).await.unwrap_err();
    assert_eq!(code_and_reason(refusal).0, "PERSISTED_QUERY_NOT_FOUND", "an outage is a miss");
    down.register(down.resolve(&mut apq(&hash, Some(QUOTE))).await.unwrap()).await;
    down.resolve(&mut apq(&hash, None)).await.expect("kept in process");
}

#[tokio::test]
async fn safelist_mode_runs_the_manifest_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("persisted-documents.json");
    std::fs::write(&path, json!({ DocumentHash::of(QUOTE).to_string(): QUOTE }).to_string()).unwrap();
    let settings = PersistedSettings { only: true, manifest: Some(path), ..PersistedSettings::default() };
    let shared = Arc::new(Memory::default());
    let me = "{ me { id } }";
    shared.documents.lock().unwrap().insert(DocumentHash::of(me), me.into());
    let documents = PersistedDocuments::new(&settings, Some(shared)).unwrap();
    let mut request = json!({ "documentId": DocumentHash::of(QUOTE).document_id() });
    documents.resolve(&mut request).await.unwrap();
    assert_eq!(request["query"], QUOTE);
    let refused = [
        (json!({ "query": QUOTE }), "PERSISTED_QUERY_ID_REQUIRED"),
        (apq(&DocumentHash::of(QUOTE).to_string(), Some(QUOTE)), "PERSISTED_QUERY_ID_REQUIRED"),
        // Registered elsewhere, not in the manifest.
        (json!({ "documentId": DocumentHash::of(me).document_id() }), "PERSISTED_QUERY_NOT_IN_LIST"),
        (apq(&DocumentHash::of(me).to_string(), None), "PERSISTED_QUERY_NOT_IN_LIST"),
    ];
    for (mut request, code) in refused {
        let refusal = documents.resolve(&mut request).await.unwrap_err();
        assert_eq!(code_and_reason(refusal), (code.into(), None, false), "{request}");
    }
}
