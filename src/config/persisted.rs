//! Persisted documents' settings (`persisted`): the safelist mode and its manifest, and
//! the bounds on what clients may register.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;

use super::parse_or;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedSettings {
    /// `FINQL_PERSISTED_ONLY` (default false): run only the documents of the manifest, by id.
    /// Free-text queries and APQ registration are refused; for production front ends whose
    /// operations are all known at build time.
    pub only: bool,
    /// `FINQL_PERSISTED_MANIFEST`: a manifest file read at start-up (Apollo's
    /// `persisted-query-manifest.json` or graphql-codegen's `persisted-documents.json`). Its
    /// documents are always known; required by `FINQL_PERSISTED_ONLY`.
    pub manifest: Option<PathBuf>,
    /// `FINQL_PERSISTED_MAX_BYTES` (default 32768): the largest document a client may register.
    /// Twice the largest query the parsed-documents cache keeps and a third of the default body
    /// limit: generated clients' biggest operations stay well below it.
    pub max_bytes: usize,
    /// `FINQL_PERSISTED_TTL_SECS` (default 86400): how long a registered document is kept. A
    /// forgotten document costs its client one round trip to register it again, so a day keeps
    /// that to once a day per document while nobody's old documents stay for ever.
    pub ttl: Duration,
    /// `FINQL_PERSISTED_MAX_SHARED` (default 5000): registered documents kept in Redis at most
    /// (the oldest go first). A front end has hundreds of operations across its live versions;
    /// the cap bounds what endless registrations can take (at most this many times
    /// `FINQL_PERSISTED_MAX_BYTES`, 160 MiB with the defaults).
    pub max_shared: usize,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        Self { only: false, manifest: None, max_bytes: 32 * 1024, ttl: Duration::from_secs(86_400), max_shared: 5000 }
    }
}

impl PersistedSettings {
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let only = parse_or(get, "FINQL_PERSISTED_ONLY", false)?;
        let manifest = get("FINQL_PERSISTED_MANIFEST").map(|path| PathBuf::from(path.trim()));
        if only && manifest.is_none() {
            bail!("FINQL_PERSISTED_ONLY=true needs FINQL_PERSISTED_MANIFEST: the documents it allows");
        }
        let max_bytes = parse_or(get, "FINQL_PERSISTED_MAX_BYTES", defaults.max_bytes)?;
        if max_bytes == 0 {
            bail!("FINQL_PERSISTED_MAX_BYTES must be at least 1");
        }
        let ttl = match parse_or(get, "FINQL_PERSISTED_TTL_SECS", defaults.ttl.as_secs())? {
            0 => bail!("FINQL_PERSISTED_TTL_SECS must be at least 1"),
            secs => Duration::from_secs(secs),
        };
        let max_shared = parse_or(get, "FINQL_PERSISTED_MAX_SHARED", defaults.max_shared)?;
        if max_shared == 0 {
            bail!("FINQL_PERSISTED_MAX_SHARED must be at least 1");
        }
        Ok(Self { only, manifest, max_bytes, ttl, max_shared })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<PersistedSettings> {
        PersistedSettings::from_lookup(&crate::config::test_lookup(vars))
    }

    #[test]
    fn defaults_overrides_and_refusals() {
        assert_eq!(settings(&[]).unwrap(), PersistedSettings::default());
        let set = settings(&[
            ("FINQL_PERSISTED_ONLY", "true"),
            ("FINQL_PERSISTED_MANIFEST", "web/persisted-query-manifest.json"),
            ("FINQL_PERSISTED_MAX_BYTES", "1000"),
            ("FINQL_PERSISTED_TTL_SECS", "60"),
            ("FINQL_PERSISTED_MAX_SHARED", "10"),
        ])
        .unwrap();
        assert_eq!(
            set,
            PersistedSettings {
                only: true,
                manifest: Some("web/persisted-query-manifest.json".into()),
                max_bytes: 1000,
                ttl: Duration::from_secs(60),
                max_shared: 10,
            }
        );
        let err = settings(&[("FINQL_PERSISTED_ONLY", "true")]).unwrap_err().to_string();
        assert!(err.contains("FINQL_PERSISTED_MANIFEST"), "{err}");
        for bad in [
            ("FINQL_PERSISTED_ONLY", "yes"),
            ("FINQL_PERSISTED_MAX_BYTES", "0"),
            ("FINQL_PERSISTED_TTL_SECS", "0"),
            ("FINQL_PERSISTED_MAX_SHARED", "0"),
        ] {
            let err = settings(&[bad]).unwrap_err().to_string();
            assert!(err.contains(bad.0), "{err}");
        }
    }
}
