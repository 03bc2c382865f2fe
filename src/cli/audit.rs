//! `finql audit --tenant SLUG --from DATE --to DATE [--format csv|json]`: a tenant's audit
//! trail for compliance exports, read from the configured database, oldest first.
//!
//! Dates are UTC days, both inclusive; an RFC 3339 time is taken as is, `--to` then exclusive
//! (as `finql usage`). The export is streamed: months of records are never held in memory.
//! CSV has a header line and lists (fields, symbols, error codes) separated by spaces within
//! their column; JSON is JSON Lines, one record per line, in the shape of the
//! `FINQL_AUDIT_LOG=json` log lines. Records the writer has not written yet (a fraction of a
//! second's) are not in the export.

use std::io::Write;

use anyhow::{Context, bail};
use chrono::SecondsFormat;
use entity::audit_log;
use sea_orm::DatabaseConnection;

use super::usage::parse_time;
use crate::{
    audit::{AuditLog, store::AuditFilter, store::split_list},
    config::Config,
    error::AppError,
    tenancy::TenancyService,
};

/// The export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// JSON Lines.
    Json,
}

/// What the operator asked for, as typed.
#[derive(Clone, Debug)]
pub struct AuditArgs {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub format: Format,
}

const CSV_HEADER: &str = "at,id,trace_id,principal,event,transport,operation_type,operation_name,document_hash,\
                          fields,symbols,outcome,error_codes,duration_ms,response_bytes";

/// Writes the export to `out`; the number of records.
pub async fn export(
    config: &Config,
    db: &DatabaseConnection,
    args: &AuditArgs,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let from = parse_time(&args.from, false).context("--from")?;
    let to = parse_time(&args.to, true).context("--to")?;
    if to <= from {
        bail!("--to must be after --from");
    }
    let tenancy = TenancyService::new(db.clone(), &config.tenancy);
    let tenant = match tenancy.tenant_by_slug(&args.tenant).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => bail!("no tenant `{}`", args.tenant),
        Err(err) => bail!("reading tenant `{}`: {}", args.tenant, async_graphql::Error::from(err).message),
    };
    let audit = AuditLog::new(db.clone(), config.audit.clone());
    let filter = AuditFilter { from: Some(from), to: Some(to), ..AuditFilter::default() };
    if args.format == Format::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut count = 0u64;
    audit
        .each(tenant.id, &filter, |row| {
            count += 1;
            let line = match args.format {
                Format::Csv => csv_line(&row),
                Format::Json => json_line(&row).to_string(),
            };
            writeln!(out, "{line}").map_err(|err| AppError::internal(anyhow::anyhow!("writing the export: {err}")))
        })
        .await
        .map_err(|err| anyhow::anyhow!(async_graphql::Error::from(err).message))?;
    Ok(count)
}

fn csv_line(row: &audit_log::Model) -> String {
    let list = |column: &str| split_list(column).join(" ");
    let fields = [
        row.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        row.id.to_string(),
        row.trace_id.clone().unwrap_or_default(),
        row.principal.clone(),
        row.event.clone(),
        row.transport.clone(),
        row.operation_type.clone().unwrap_or_default(),
        row.operation_name.clone().unwrap_or_default(),
        row.document_hash.clone().unwrap_or_default(),
        list(&row.fields),
        list(&row.symbols),
        row.outcome.clone(),
        list(&row.error_codes),
        format!("{:.3}", row.duration_us as f64 / 1000.0),
        row.response_bytes.to_string(),
    ];
    fields.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(",")
}

/// RFC 4180 quoting when a field needs it (an operation name is the client's text).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn json_line(row: &audit_log::Model) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "at": row.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "traceId": row.trace_id,
        "tenantId": row.tenant_id,
        "principal": row.principal,
        "event": row.event,
        "transport": row.transport,
        "operationType": row.operation_type,
        "operationName": row.operation_name,
        "documentHash": row.document_hash,
        "fields": split_list(&row.fields),
        "symbols": split_list(&row.symbols),
        "outcome": row.outcome,
        "errorCodes": split_list(&row.error_codes),
        "durationMs": row.duration_us as f64 / 1000.0,
        "responseBytes": row.response_bytes,
    })
}
