//! The audit trail's settings (`crate::audit`).

use anyhow::bail;

use super::parse_or;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// `FINQL_AUDIT` (`on`, the default, or `off`): whether operations are audited at all.
    /// Off is for development and for deployments that audit at a gateway; a regulated
    /// deployment keeps it on.
    pub enabled: bool,
    /// `FINQL_AUDIT_RETENTION_DAYS` (default 90, at least 1): records older than this are
    /// deleted (hourly, in batches).
    pub retention_days: u32,
    /// `FINQL_AUDIT_LOG` (`json`, or `off`, the default): also log every record as one JSON
    /// line (target `finql::audit`).
    pub json_log: bool,
    /// `FINQL_AUDIT_BUFFER` (default 10000): records waiting for the writer at most; past it,
    /// new records are dropped and counted (`finql_audit_dropped_total`) rather than making
    /// requests wait. At ~1 KB a record, 10 MB; at 5,000 operations a second, two seconds of
    /// a stalled database.
    pub buffer: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { enabled: true, retention_days: 90, json_log: false, buffer: 10_000 }
    }
}

impl AuditSettings {
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let enabled = match get("FINQL_AUDIT").as_deref().map(str::trim) {
            None | Some("" | "on") => true,
            Some("off") => false,
            Some(other) => bail!("FINQL_AUDIT must be `on` or `off`, not `{other}`"),
        };
        let retention_days = parse_or(get, "FINQL_AUDIT_RETENTION_DAYS", defaults.retention_days)?;
        if retention_days == 0 {
            bail!("FINQL_AUDIT_RETENTION_DAYS must be at least 1");
        }
        let json_log = match get("FINQL_AUDIT_LOG").as_deref().map(str::trim) {
            None | Some("" | "off") => false,
            Some("json") => true,
            Some(other) => bail!("FINQL_AUDIT_LOG must be `json` or `off`, not `{other}`"),
        };
        let buffer = parse_or(get, "FINQL_AUDIT_BUFFER", defaults.buffer)?;
        if buffer == 0 {
            bail!("FINQL_AUDIT_BUFFER must be at least 1");
        }
        Ok(Self { enabled, retention_days, json_log, buffer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<AuditSettings> {
        AuditSettings::from_lookup(&crate::config::test_lookup(vars))
    }

    #[test]
    fn defaults_overrides_and_refusals() {
        assert_eq!(settings(&[]).unwrap(), AuditSettings::default());
        let set =
            settings(&[("FINQL_AUDIT_RETENTION_DAYS", "7"), ("FINQL_AUDIT_LOG", "json"), ("FINQL_AUDIT_BUFFER", "5")])
                .unwrap();
        assert_eq!(set, AuditSettings { enabled: true, retention_days: 7, json_log: true, buffer: 5 });
        assert!(!settings(&[("FINQL_AUDIT", "off")]).unwrap().enabled);
        for bad in [
            ("FINQL_AUDIT", "no"),
            ("FINQL_AUDIT_RETENTION_DAYS", "0"),
            ("FINQL_AUDIT_LOG", "yaml"),
            ("FINQL_AUDIT_BUFFER", "0"),
        ] {
            let err = settings(&[bad]).unwrap_err().to_string();
            assert!(err.contains(bad.0), "{err}");
        }
    }
}
