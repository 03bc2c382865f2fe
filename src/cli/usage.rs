//! `finql usage --tenant SLUG --from DATE --to DATE [--format csv|json] [--granularity
//! hour|day]`: a tenant's usage for operators (billing exports), read from the configured
//! database.
//!
//! Dates are UTC days, both inclusive (`--from 2026-12-01 --to 2026-12-31` is December); an
//! RFC 3339 time is taken as is, `--to` then exclusive. What replicas have not flushed yet (at
//! most `FINQL_USAGE_FLUSH_SECS` of it) is not in the database, so not in the export.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use sea_orm::DatabaseConnection;

use crate::{
    config::Config,
    tenancy::TenancyService,
    usage::{
        UsageService,
        report::{Granularity, UsagePeriod},
    },
};

/// The export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A header line, then one line per actor and period.
    Csv,
    /// `{"tenant", "from", "to", "granularity", "rows": [...]}`.
    Json,
}

/// What the operator asked for, as typed.
#[derive(Clone, Debug)]
pub struct UsageArgs {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub format: Format,
    pub granularity: Granularity,
}

/// The export's text (ending with a newline).
pub async fn export(config: &Config, db: &DatabaseConnection, args: &UsageArgs) -> anyhow::Result<String> {
    let from = parse_time(&args.from, false).context("--from")?;
    let to = parse_time(&args.to, true).context("--to")?;
    let tenancy = TenancyService::new(db.clone(), &config.tenancy);
    let tenant = match tenancy.tenant_by_slug(&args.tenant).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => bail!("no tenant `{}`", args.tenant),
        Err(err) => bail!("reading tenant `{}`: {}", args.tenant, async_graphql::Error::from(err).message),
    };
    let usage = UsageService::new(db.clone(), config.tenancy.usage_flush);
    let rows = usage
        .report(tenant.id, from, to, args.granularity)
        .await
        .map_err(|err| anyhow::anyhow!(async_graphql::Error::from(err).message))?;
    Ok(match args.format {
        Format::Csv => csv(&rows),
        Format::Json => {
            let document = serde_json::json!({
                "tenant": args.tenant,
                "from": rfc3339(from),
                "to": rfc3339(to),
                "granularity": args.granularity.as_str(),
                "rows": rows.iter().map(json_row).collect::<Vec<_>>(),
            });
            format!("{}\n", serde_json::to_string_pretty(&document)?)
        }
    })
}

/// `YYYY-MM-DD` (midnight UTC; for the end of a range, the midnight after it) or RFC 3339.
pub(super) fn parse_time(raw: &str, end: bool) -> anyhow::Result<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = if end { day.checked_add_days(Days::new(1)).context("date out of range")? } else { day };
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    match DateTime::parse_from_rfc3339(raw) {
        Ok(time) => Ok(time.with_timezone(&Utc)),
        Err(_) => bail!("`{raw}` is not a date (YYYY-MM-DD) or an RFC 3339 time"),
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

const CSV_HEADER: &str = "start,actor,requests,cost,errors,rate_limited,response_bytes,subscription_seconds";

fn csv(rows: &[UsagePeriod]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for row in rows {
        let c = &row.counts;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            rfc3339(row.start),
            csv_field(&row.actor),
            c.requests,
            c.cost,
            c.errors,
            c.rate_limited,
            c.response_bytes,
            c.subscription_seconds
        );
    }
    out
}

/// RFC 4180 quoting when a field needs it (actors are `key:<prefix>`/`user:<id>` today, but a
/// CSV writer must not trust that).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn json_row(row: &UsagePeriod) -> serde_json::Value {
    let c = &row.counts;
    serde_json::json!({
        "start": rfc3339(row.start),
        "actor": row.actor,
        "requests": c.requests,
        "cost": c.cost,
        "errors": c.errors,
        "rate_limited": c.rate_limited,
        "response_bytes": c.response_bytes,
        "subscription_seconds": c.subscription_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_utc_days_and_times_are_exact() {
        assert_eq!(rfc3339(parse_time("2026-12-01", false).unwrap()), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(parse_time("2026-12-01", true).unwrap()), "2026-12-02T00:00:00Z");
        assert_eq!(rfc3339(parse_time("2026-12-01T05:30:00+01:00", true).unwrap()), "2026-12-01T04:30:00Z");
        assert!(parse_time("2026-13-01", false).is_err());
        assert!(parse_time("yesterday", false).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("key:abc"), "key:abc");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
