//! Persisted documents: a client names a document by its SHA-256 instead of sending its text.
//!
//! Why: front ends turn on Apollo's persisted-query link to save bandwidth, and then every
//! request starts with a hash alone; a server that does not answer the link's protocol fails
//! them all. A hash also makes a query's URL short and stable, so a GET can be cached by HTTP
//! caches, and a list of known hashes is an allow-list for production front ends.
//!
//! Two protocols, one store (both ids are the document's SHA-256,
//! [`DocumentHash`](crate::persisted::DocumentHash)):
//! - **APQ** (Apollo's automatic persisted queries): `extensions.persistedQuery` `{version: 1,
//!   sha256Hash}`. A hash alone runs the document if it is known, and is otherwise answered
//!   `PersistedQueryNotFound` with code `PERSISTED_QUERY_NOT_FOUND`, on which Apollo's link sends
//!   the hash with the text; that registers the document, once it has passed the edge guards,
//!   and runs it. A hash that is not the text's is refused ("provided sha does not match query",
//!   Apollo Server's words) so that an id can never name another document;
//! - **`documentId`** (the GraphQL-over-HTTP appendix): `"sha256:<hex>"` in the POST body or
//!   the GET parameters runs a stored document (registered through APQ, or from the manifest).
//!   It registers nothing.
//!
//! Safelist mode (`FINQL_PERSISTED_ONLY=true`): only the manifest's documents run (by either
//! protocol); a text (free, or an APQ registration) answers `PERSISTED_QUERY_ID_REQUIRED`, an
//! unknown id `PERSISTED_QUERY_NOT_IN_LIST` (Apollo Router's codes; Apollo's link retries
//! neither). Client errors in the protocol itself (a malformed id, a hash that does not match,
//! an unknown version) are `BAD_USER_INPUT` with a `reason`, like the edge limits.
//!
//! The edges call [`resolve`](crate::persisted::PersistedDocuments::resolve) on each
//! request object (a POST body or batch item, the GET parameters, a WebSocket `subscribe`
//! payload) before reading it as a GraphQL request: it fills in `query`, and from there the
//! request is like any other: parsed (or found in the documents cache), checked by every edge
//! guard, admitted on its plan, and audited under its document's hash (which is the id the
//! client sent). [`register`](crate::persisted::PersistedDocuments::register) comes
//! after the guards: a document that fails them is never kept.

/// `DocumentHash`: a document's SHA-256, and the forms of id that name it.
pub mod hash;
/// The manifest file: Apollo's and graphql-codegen's formats, each id checked.
pub mod manifest;
/// Registered documents: in process, and in Redis (shared by replicas) when configured.
pub mod store;

use std::sync::Arc;

use async_graphql::ServerError;
use serde_json::{Map, Value};

pub use self::hash::DocumentHash;
use self::{
    manifest::Manifest,
    store::{LocalDocuments, SharedDocuments},
};
use crate::{config::PersistedSettings, error::ErrorCode};

/// The persisted documents a request may name. Cheap to clone.
#[derive(Clone)]
pub struct PersistedDocuments {
    /// The manifest's documents: always known; in safelist mode, the only ones.
    manifest: Arc<Manifest>,
    /// Documents registered through APQ (here, or read from the shared store).
    local: LocalDocuments,
    /// The replicas' store (Redis), when configured.
    shared: Option<Arc<dyn SharedDocuments>>,
    /// `FINQL_PERSISTED_ONLY`.
    only: bool,
    /// `FINQL_PERSISTED_MAX_BYTES`.
    max_bytes: usize,
}

/// A document to keep once its request has passed the edge guards.
#[derive(Debug)]
#[must_use = "a registration is kept only when handed to `register`"]
pub struct Registration {
    hash: DocumentHash,
    text: Arc<str>,
}

/// A request refused before it was read: its error (with `extensions.code`), and whether the
/// request is malformed (400 whatever the client accepts, like a request without `query`)
/// rather than a well-formed request the server refuses (a GraphQL request error).
#[derive(Debug)]
pub struct Refusal {
    error: Box<ServerError>,
    malformed: bool,
}

impl Refusal {
    fn new(code: ErrorCode, reason: Option<&str>, message: impl Into<String>, malformed: bool) -> Self {
        let mut error = ServerError::new(message, None);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", code.as_str());
        if let Some(reason) = reason {
            extensions.set("reason", reason);
        }
        Self { error: Box::new(error), malformed }
    }

    /// A malformed request: `BAD_USER_INPUT`, with `reason` when there is one.
    fn malformed(reason: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadUserInput, reason, message, true)
    }

    /// Safelist mode, and the request sent a text.
    fn id_required() -> Self {
        let message = "this server runs persisted documents only: send `documentId` (or \
                       `extensions.persistedQuery`) without `query`";
        Self::new(ErrorCode::PersistedQueryIdRequired, None, message, false)
    }

    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    pub fn into_error(self) -> Box<ServerError> {
        self.error
    }
}

/// How a request named a document.
enum Named {
    /// `documentId`.
    DocumentId(DocumentHash),
    /// `extensions.persistedQuery.sha256Hash`.
    Apq(DocumentHash),
}

impl PersistedDocuments {
    /// The documents of `settings`' manifest (read and checked now: a bad manifest stops
    /// start-up), with registrations shared through `shared` when there is one.
    pub fn new(settings: &PersistedSettings, shared: Option<Arc<dyn SharedDocuments>>) -> anyhow::Result<Self> {
        let manifest = match &settings.manifest {
            Some(path) => manifest::load(path)?,
            None => Manifest::new(),
        };
        if !manifest.is_empty() {
            tracing::info!(documents = manifest.len(), only = settings.only, "persisted documents manifest loaded");
        }
        Ok(Self {
            manifest: Arc::new(manifest),
            local: LocalDocuments::new(settings.ttl),
            shared,
            only: settings.only,
            max_bytes: settings.max_bytes,
        })
    }

    /// Reads how `request` (a GraphQL request object) names its document and fills in its
    /// `query` from the store; a document sent with its hash to be registered is returned, to
    /// be handed to [`Self::register`] once the request has passed the edge guards. Anything
    /// that is not an object is left for the edge to refuse.
    pub async fn resolve(&self, request: &mut Value) -> Result<Option<Registration>, Refusal> {
        let Value::Object(fields) = request else { return Ok(None) };
        let text = match fields.get("query") {
            Some(Value::String(query)) if !query.trim().is_empty() => Some(query.as_str()),
            _ => None,
        };
        match (named(fields)?, text) {
            (None, None) => Ok(None),
            (None, Some(_)) if self.only => Err(Refusal::id_required()),
            (None, Some(_)) => Ok(None),
            (Some(Named::DocumentId(_)), Some(_)) => {
                Err(Refusal::malformed(None, "send either `documentId` or `query`, not both"))
            }
            (Some(Named::Apq(hash)), Some(text)) => self.registration(hash, text),
            (Some(named), None) => {
                let (Named::DocumentId(hash) | Named::Apq(hash)) = &named;
                let Some(text) = self.find(hash).await else { return Err(self.unknown(&named)) };
                fields.remove("documentId");
                fields.insert("query".into(), Value::String(text.to_string()));
                Ok(None)
            }
        }
    }

    /// Keeps documents whose requests passed the edge guards: in process, and in the shared
    /// store (a Redis that does not answer leaves them in process only).
    pub async fn register(&self, registrations: impl IntoIterator<Item = Registration>) {
        for Registration { hash, text } in registrations {
            self.local.insert(hash.clone(), text.clone());
            if let Some(shared) = &self.shared
                && let Err(err) = shared.put(&hash, &text).await
            {
                err.log("persisted documents: Redis unavailable; a registration is kept in this process only");
            }
        }
    }

    /// An APQ request with its text: checked, and to be registered unless known already.
    fn registration(&self, hash: DocumentHash, text: &str) -> Result<Option<Registration>, Refusal> {
        if self.only {
            return Err(Refusal::id_required());
        }
        if DocumentHash::of(text) != hash {
            return Err(Refusal::malformed(Some("PERSISTED_QUERY_HASH_MISMATCH"), "provided sha does not match query"));
        }
        if text.len() > self.max_bytes {
            let message = format!(
                "the document is {} bytes; documents of at most {} bytes can be persisted",
                text.len(),
                self.max_bytes
            );
            return Err(Refusal::new(ErrorCode::BadUserInput, Some("PERSISTED_DOCUMENT_TOO_LARGE"), message, false));
        }
        let known = self.manifest.contains_key(&hash) || self.local.get(&hash).is_some();
        Ok((!known).then(|| Registration { hash, text: Arc::from(text) }))
    }

    /// The text persisted as `hash`: the manifest's, then this process's, then the shared
    /// store's (kept in process from then on). A shared store that does not answer is a miss.
    async fn find(&self, hash: &DocumentHash) -> Option<Arc<str>> {
        let found = match self.manifest.get(hash) {
            Some(text) => Some(text.clone()),
            None if self.only => None,
            None => match self.local.get(hash) {
                Some(text) => Some(text),
                None => self.find_shared(hash).await,
            },
        };
        crate::metrics::cache_lookup("persisted", crate::metrics::hit_or_miss(found.is_some()));
        found
    }

    async fn find_shared(&self, hash: &DocumentHash) -> Option<Arc<str>> {
        match self.shared.as_ref()?.get(hash).await {
            // Checked again: whatever is in Redis, an id only ever names its own text.
            Ok(Some(text)) if DocumentHash::of(&text) == *hash => {
                let text: Arc<str> = Arc::from(text);
                self.local.insert(hash.clone(), text.clone());
                Some(text)
            }
            Ok(_) => None,
            Err(err) => {
                err.log("persisted documents: Redis unavailable; looking in this process only");
                None
            }
        }
    }

    /// The answer to an id nothing is persisted as.
    fn unknown(&self, named: &Named) -> Refusal {
        match named {
            Named::DocumentId(hash) | Named::Apq(hash) if self.only => Refusal::new(
                ErrorCode::PersistedQueryNotInList,
                None,
                format!("`{}` is not one of this server's persisted documents", hash.document_id()),
                false,
            ),
            // Apollo's message: its link matches on it (or on the code) to send the text.
            Named::Apq(_) => Refusal::new(ErrorCode::PersistedQueryNotFound, None, "PersistedQueryNotFound", false),
            Named::DocumentId(hash) => Refusal::new(
                ErrorCode::PersistedQueryNotFound,
                None,
                format!("no document is persisted as `{}`", hash.document_id()),
                false,
            ),
        }
    }
}

/// The document a request names, if it names one; a malformed name is refused.
fn named(fields: &Map<String, Value>) -> Result<Option<Named>, Refusal> {
    const MALFORMED: &str = "DOCUMENT_ID_MALFORMED";
    let document_id = match fields.get("documentId") {
        None | Some(Value::Null) => None,
        Some(id) => Some(id.as_str().and_then(DocumentHash::from_document_id).ok_or_else(|| {
            Refusal::malformed(
                Some(MALFORMED),
                "`documentId` must be `sha256:` followed by the document's SHA-256 in 64 lower-case hex digits",
            )
        })?),
    };
    let apq = match fields.get("extensions").and_then(|extensions| extensions.get("persistedQuery")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(persisted)) => {
            if persisted.get("version").and_then(Value::as_u64) != Some(1) {
                return Err(Refusal::malformed(
                    Some("PERSISTED_QUERY_VERSION_UNSUPPORTED"),
                    "Unsupported persisted query version: only version 1 (SHA-256) is served",
                ));
            }
            Some(persisted.get("sha256Hash").and_then(Value::as_str).and_then(DocumentHash::from_hex).ok_or_else(
                || Refusal::malformed(Some(MALFORMED), "`extensions.persistedQuery.sha256Hash` must be 64 hex digits"),
            )?)
        }
        Some(_) => return Err(Refusal::malformed(Some(MALFORMED), "`extensions.persistedQuery` must be an object")),
    };
    match (document_id, apq) {
        (Some(_), Some(_)) => {
            Err(Refusal::malformed(None, "send either `documentId` or `extensions.persistedQuery`, not both"))
        }
        (Some(hash), None) => Ok(Some(Named::DocumentId(hash))),
        (None, Some(hash)) => Ok(Some(Named::Apq(hash))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
