//! Email addresses, parsed once.

use std::fmt;

use crate::error::AppError;

/// A syntactically valid, normalised address: trimmed and lower-cased, so uniqueness is
/// case-insensitive. (Lower-casing the local part is technically lossy per RFC 5321, but no
/// mainstream provider distinguishes case, and users expect `Ann@X.com` and `ann@x.com` to be
/// one account.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321's limit on a forward path.
const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let normalised = raw.trim().to_lowercase();
        let invalid = || AppError::bad_field("email", format!("`{}` is not a valid email address", raw.trim()));
        if normalised.is_empty() || normalised.len() > MAX_LEN {
            return Err(invalid());
        }
        let parsed: email_address::EmailAddress = normalised.parse().map_err(|_| invalid())?;
        // Display names (`Ann <ann@x.com>`) parse, but an account address is the bare address.
        // A domain without a dot (`ann@localhost`) is valid syntax but never a real mailbox.
        if parsed.email() != normalised || normalised.contains(char::is_whitespace) || !parsed.domain().contains('.') {
            return Err(invalid());
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_and_rejects() {
        assert_eq!(Email::parse("  Ann.Lee@Example.COM ").unwrap().as_str(), "ann.lee@example.com");
        for bad in ["", "ann", "ann@", "@x.com", "ann@@x.com", "Ann <ann@x.com>", "ann@localhost", "a b@x.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Email::parse(&format!("{}@x.com", "a".repeat(260))).is_err());
    }
}
