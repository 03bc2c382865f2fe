//! A document's identity: the SHA-256 of its text, as 64 lower-case hex digits.
//!
//! Every way a client names a persisted document comes down to this one value: APQ's
//! `sha256Hash`, the appendix's `documentId: "sha256:<hex>"`, the keys of both manifest
//! formats, and the audit record's `documentHash`. So the text a hash resolves to always hashes
//! back to it, and the audit of a persisted request shows the id the client sent.

use std::fmt;

use sha2::{Digest, Sha256};

/// 64 lower-case hex digits: the SHA-256 of a document's text (UTF-8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocumentHash(String);

/// The GraphQL-over-HTTP appendix's prefix for a SHA-256 document identifier.
const SHA256_PREFIX: &str = "sha256:";

impl DocumentHash {
    /// The hash of `text`.
    pub fn of(text: &str) -> Self {
        Self(format!("{:x}", Sha256::digest(text.as_bytes())))
    }

    /// APQ's `sha256Hash` (and a manifest's id): 64 hex digits. Upper case is read as lower
    /// case (some SHA-256 libraries print it), anything else is not a SHA-256.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(hex.to_ascii_lowercase()))
    }

    /// A `documentId`: the appendix's `sha256:` and 64 lower-case hex digits, or the 64 digits
    /// alone (a custom identifier to the appendix; graphql-codegen's client preset and Hive's
    /// clients send the bare hash), read as the same SHA-256. Other prefixes and custom ids
    /// name nothing finql stores.
    pub fn from_document_id(id: &str) -> Option<Self> {
        let hex = id.strip_prefix(SHA256_PREFIX).unwrap_or(id);
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(|| Self(hex.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The appendix's form, `sha256:<hex>`, for messages.
    pub fn document_id(&self) -> String {
        format!("{SHA256_PREFIX}{}", self.0)
    }
}

impl fmt::Display for DocumentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DocumentHash> for String {
    fn from(hash: DocumentHash) -> Self {
        hash.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The appendix's own examples.
    const SPACED: &str = "query ($id: ID!) {\n  user(id: $id) {\n    name\n  }\n}";
    const SPACED_ID: &str = "sha256:7dba4bd717b41f10434822356a93c32b1fb4907b983e854300ad839f84cdcd6e";
    const COMPACT: &str = "query($id:ID!){user(id:$id){name}}";
    const COMPACT_ID: &str = "sha256:71f7dc5758652baac68e4a10c50be732b741c892ade2883a99358f52b555286b";

    #[test]
    fn the_appendix_examples_hash_to_their_ids() {
        assert_eq!(DocumentHash::of(SPACED).document_id(), SPACED_ID);
        assert_eq!(DocumentHash::of(COMPACT).document_id(), COMPACT_ID);
        assert_eq!(DocumentHash::from_document_id(COMPACT_ID), Some(DocumentHash::of(COMPACT)));
    }

    #[test]
    fn document_ids_are_sha256_in_lower_case_hex_with_or_without_the_prefix() {
        let hex = &COMPACT_ID[7..];
        assert_eq!(DocumentHash::from_document_id(hex), Some(DocumentHash::of(COMPACT)));
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            &COMPACT_ID.to_ascii_uppercase(),
            &format!("sha256:{}", hex.to_ascii_uppercase()),
            &format!("md5:{hex}"),
            &format!("x-app:{hex}"),
            &format!("sha256:{hex}0"),
            &format!("sha256:{}g", &hex[1..]),
        ] {
            assert_eq!(DocumentHash::from_document_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn apq_hashes_are_64_hex_digits_of_either_case() {
        let hex = &COMPACT_ID[7..];
        assert_eq!(DocumentHash::from_hex(&hex.to_ascii_uppercase()), Some(DocumentHash::of(COMPACT)));
        for bad in ["", "abc", COMPACT_ID, &format!("{hex}0"), &format!("{}z", &hex[1..])] {
            assert_eq!(DocumentHash::from_hex(bad), None, "{bad}");
        }
    }
}
