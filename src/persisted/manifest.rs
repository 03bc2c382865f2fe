//! The manifest: documents a front end's build emitted, read once at start-up
//! (`FINQL_PERSISTED_MANIFEST`).
//!
//! Two formats, as the tools write them:
//! - Apollo's `persisted-query-manifest.json` (`@apollo/generate-persisted-query-manifest`):
//!   `{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "body",
//!   "name", "type"}]}`;
//! - graphql-codegen's client preset `persisted-documents.json`: `{"<hash>": "<document>"}`.
//!
//! Each id must be the SHA-256 of its body (both tools' default): a manifest with custom ids,
//! another hash, or a body edited after the build would let an id run a document other than the
//! one it names, so it stops start-up with the entry at fault, as does anything unreadable.

use std::{collections::HashMap, path::Path, sync::Arc};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::hash::DocumentHash;

/// The manifest's documents by hash.
pub type Manifest = HashMap<DocumentHash, Arc<str>>;

/// The `format` of Apollo's manifest.
const APOLLO_FORMAT: &str = "apollo-persisted-query-manifest";

#[derive(Deserialize)]
#[serde(untagged)]
enum ManifestFile {
    Apollo { format: String, version: u32, operations: Vec<ApolloOperation> },
    Codegen(HashMap<String, String>),
}

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    body: String,
    /// For messages only.
    #[serde(default)]
    name: Option<String>,
}

/// Reads and checks the manifest at `path`.
pub fn load(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("reading the persisted documents manifest {} (FINQL_PERSISTED_MANIFEST)", path.display())
    })?;
    parse(&text)
        .with_context(|| format!("the persisted documents manifest {} (FINQL_PERSISTED_MANIFEST)", path.display()))
}

/// The documents of a manifest's text, each id checked against its body.
pub fn parse(text: &str) -> anyhow::Result<Manifest> {
    let file: ManifestFile = serde_json::from_str(text).context(
        "not a manifest: expected Apollo's persisted-query-manifest.json or graphql-codegen's \
         persisted-documents.json ({\"<sha256>\": \"<document>\"})",
    )?;
    let entries: Vec<(String, String, Option<String>)> = match file {
        ManifestFile::Apollo { format, version, operations } => {
            if format != APOLLO_FORMAT || version != 1 {
                bail!("format `{format}` version {version}: only `{APOLLO_FORMAT}` version 1 is read");
            }
            operations.into_iter().map(|op| (op.id, op.body, op.name)).collect()
        }
        ManifestFile::Codegen(documents) => documents.into_iter().map(|(id, body)| (id, body, None)).collect(),
    };
    let mut manifest = Manifest::with_capacity(entries.len());
    for (id, body, name) in entries {
        let entry = match &name {
            Some(name) => format!("`{id}` ({name})"),
            None => format!("`{id}`"),
        };
        let Some(hash) = DocumentHash::from_hex(&id) else {
            bail!("the id {entry} is not a SHA-256 (64 hex digits): generate the manifest with SHA-256 ids");
        };
        if DocumentHash::of(&body) != hash {
            bail!("the id {entry} is not the SHA-256 of its body: the manifest was edited or made with another hash");
        }
        manifest.insert(hash, Arc::from(body));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const QUOTE: &str = "query Quote($s: String!) { quote(symbol: $s) { last } }";
    const ME: &str = "query Me { me { id } }";

    fn hex(body: &str) -> String {
        DocumentHash::of(body).to_string()
    }

    #[test]
    fn reads_apollos_manifest() {
        let text = json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                { "id": hex(QUOTE), "body": QUOTE, "name": "Quote", "type": "query" },
                { "id": hex(ME), "body": ME, "name": "Me", "type": "query" },
            ],
        });
        let manifest = parse(&text.to_string()).unwrap();
        assert_eq!(manifest.len(), 2);
        assert_eq!(manifest.get(&DocumentHash::of(QUOTE)).map(|b| &**b), Some(QUOTE));
    }

    #[test]
    fn reads_codegens_persisted_documents() {
        let text = json!({ hex(QUOTE): QUOTE, hex(ME): ME });
        let manifest = parse(&text.to_string()).unwrap();
        assert_eq!(manifest.get(&DocumentHash::of(ME)).map(|b| &**b), Some(ME));
    }

    #[test]
    fn refuses_ids_that_are_not_the_bodys_sha256_naming_the_entry() {
        let edited = json!({ hex(QUOTE): ME });
        let err = format!("{:#}", parse(&edited.to_string()).unwrap_err());
        assert!(err.contains(&hex(QUOTE)) && err.contains("not the SHA-256 of its body"), "{err}");
        let custom = json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{ "id": "quote-v1", "body": QUOTE, "name": "Quote", "type": "query" }],
        });
        let err = format!("{:#}", parse(&custom.to_string()).unwrap_err());
        assert!(err.contains("`quote-v1` (Quote)") && err.contains("not a SHA-256"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_manifest() {
        for text in [
            "not json",
            "[]",
            r#"{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}"#,
            r#"{"format": "relay", "version": 1, "operations": []}"#,
            r#"{"abc": 7}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
