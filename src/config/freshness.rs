//! The data freshness alarm's settings (`live::freshness`): how long a live source may be silent
//! while its markets trade, and where its alerts go.

use std::time::Duration;

use anyhow::bail;

use super::{Secret, fractional_secs, positive_millis};

#[derive(Clone, Debug)]
pub struct FreshnessSettings {
    /// `FINQL_SOURCE_STALE_SECS` (default 3; fractions allowed): a live source from which no
    /// event has arrived for this long, while at least one market it is streaming is in its
    /// regular session, is stale. Three seconds is the desk's own rule: liquid instruments
    /// tick several times a second, so three silent seconds in session mean a broken feed,
    /// not a quiet market.
    pub stale_after: Duration,
    /// `FINQL_ALERT_WEBHOOK_URL` (unset: no webhook): where a JSON alert is POSTed when a
    /// source goes stale, and a resolve when it recovers. A secret: chat webhooks carry their
    /// credential in the URL.
    pub webhook: Option<Secret<String>>,
    /// `FINQL_ALERT_TIMEOUT_MS` (default 2000): one webhook POST, connection included, before
    /// it counts as failed and is retried.
    pub webhook_timeout: Duration,
}

impl FreshnessSettings {
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let webhook = match get("FINQL_ALERT_WEBHOOK_URL").map(|raw| raw.trim().to_owned()).filter(|u| !u.is_empty()) {
            None => None,
            Some(raw) => match url::Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(Secret::new(raw)),
                // The URL may hold a credential: never echo it.
                _ => bail!("FINQL_ALERT_WEBHOOK_URL must be an http(s) URL"),
            },
        };
        Ok(Self {
            stale_after: fractional_secs(get, "FINQL_SOURCE_STALE_SECS", 3.0)?,
            webhook,
            webhook_timeout: positive_millis(get, "FINQL_ALERT_TIMEOUT_MS", 2000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<FreshnessSettings> {
        FreshnessSettings::from_lookup(&crate::config::test_lookup(vars))
    }

    #[test]
    fn three_seconds_and_no_webhook_by_default() {
        let default = settings(&[]).unwrap();
        assert_eq!(default.stale_after, Duration::from_secs(3));
        assert!(default.webhook.is_none());
        assert_eq!(default.webhook_timeout, Duration::from_secs(2));
    }

    #[test]
    fn fractions_and_a_webhook_are_accepted() {
        let set = settings(&[
            ("FINQL_SOURCE_STALE_SECS", "0.5"),
            ("FINQL_ALERT_WEBHOOK_URL", "https://hooks.example.com/T000/secret"),
            ("FINQL_ALERT_TIMEOUT_MS", "750"),
        ])
        .unwrap();
        assert_eq!(set.stale_after, Duration::from_millis(500));
        assert_eq!(set.webhook.unwrap().expose(), "https://hooks.example.com/T000/secret");
        assert_eq!(set.webhook_timeout, Duration::from_millis(750));
    }

    #[test]
    fn refusals_name_the_variable_and_never_echo_the_url() {
        for zero in ["0", "-1", "soon"] {
            let err = settings(&[("FINQL_SOURCE_STALE_SECS", zero)]).unwrap_err();
            assert!(err.to_string().contains("FINQL_SOURCE_STALE_SECS"), "{err}");
        }
        let err = settings(&[("FINQL_ALERT_WEBHOOK_URL", "ftp://user:hunter2@example.com")]).unwrap_err();
        assert!(err.to_string().contains("FINQL_ALERT_WEBHOOK_URL"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = settings(&[("FINQL_ALERT_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.to_string().contains("FINQL_ALERT_TIMEOUT_MS"), "{err}");
    }
}
