//! API keys: `fq_<prefix>_<secret>`.
//!
//! The prefix (12 lower-case letters and digits, 62 bits) is visible: it names the key in lists,
//! logs and usage, and finds its row. The secret is 256 random bits (43 base64url characters).
//! Only the SHA-256 of the whole key is stored: with that much entropy a slow hash buys
//! nothing, and a fast one lets every request be checked without an argon2 cost. Comparison is
//! constant-time.

use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// What every key starts with: recognisable in a header, in a leaked file, to secret scanners.
pub const KEY_PREFIX: &str = "fq_";
/// Characters of the visible prefix.
const PREFIX_LEN: usize = 12;
/// The prefix alphabet: no `_` (the separator), no upper case (case-insensitive eyes).
const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// The longest key text looked at: a longer `Authorization` value is not a key of ours.
const MAX_KEY_LEN: usize = 128;

/// A newly made key: the whole text (shown once) and what is stored.
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

impl NewKey {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let prefix: String =
            (0..PREFIX_LEN).map(|_| PREFIX_ALPHABET[rng.random_range(0..PREFIX_ALPHABET.len())] as char).collect();
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        use base64::Engine;
        let secret = format!("{KEY_PREFIX}{prefix}_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let hash = hash_key(&secret);
        Self { secret, prefix, hash }
    }
}

/// Whether a credential looks like one of our keys (rather than a JWT).
pub fn is_api_key(raw: &str) -> bool {
    raw.starts_with(KEY_PREFIX)
}

/// The prefix of a well-formed key, or `None` for anything else.
pub fn prefix_of(raw: &str) -> Option<&str> {
    if raw.len() > MAX_KEY_LEN {
        return None;
    }
    let rest = raw.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let well_formed = prefix.len() == PREFIX_LEN
        && prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b))
        && !secret.is_empty()
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(prefix)
}

/// Hex SHA-256 of the whole key.
pub fn hash_key(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two hashes (no timing oracle on how much of a guess matched).
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash() {
        let key = NewKey::generate();
        assert!(is_api_key(&key.secret));
        assert_eq!(prefix_of(&key.secret), Some(key.prefix.as_str()));
        assert!(same_hash(&hash_key(&key.secret), &key.hash));
        assert_ne!(NewKey::generate().secret, key.secret);
        assert!(!same_hash(&hash_key(&format!("{}x", key.secret)), &key.hash));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        for bad in
            ["fq_", "fq_short_abc", "fq_ABCDEFGHIJKL_abc", "fq_abcdefghijkl_", "fq_abcdefghijkl_a b", "eyJhbGciOi"]
        {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
        assert_eq!(prefix_of(&format!("fq_abcdefghijkl_{}", "a".repeat(200))), None);
    }
}
