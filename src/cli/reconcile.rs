//! `finql reconcile --date D [--market M] [--format csv|json]`: a T+1 reconciliation now, on
//! the configured sources and database, its report written like a scheduled run's and printed
//! (CSV: a line per difference; JSON: the run with the items that are not `MATCH` or
//! `NO_DATA`).

use chrono::NaiveDate;
use serde_json::json;

use crate::{
    config::Config,
    db,
    reconcile::{Reconciler, ReconciliationStore, compare::Verdict, service::Report},
    reference::ReferenceService,
    sources,
};

/// How the report is printed.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    Csv,
    Json,
}

/// Runs `finql reconcile`; returns the report to print.
pub async fn reconcile(config: &Config, date: &str, market: Option<&str>, format: Format) -> anyhow::Result<String> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| anyhow::anyhow!("--date must be YYYY-MM-DD"))?;
    let built = sources::build_source(&config.market, config.resilience.breaker())?;
    let db = db::connect(&config.database).await?;
    if config.database.migrate_on_start {
        db::migrate(&db).await?;
    }
    let store = ReconciliationStore::new(db.clone());
    let reconciler =
        Reconciler::new(built.ordered, ReferenceService::new(db.clone()), store, config.reconcile.divergence_bps);
    let report = reconciler.run(day, market, None).await;
    db.close().await.ok();
    let report = report.map_err(super::failure)?.ok_or_else(|| anyhow::anyhow!("the run was claimed elsewhere"))?;
    Ok(match format {
        Format::Csv => csv(&report),
        Format::Json => serde_json::to_string_pretty(&json_of(&report))?,
    })
}

/// A header, then a line per difference: `symbol,verdict,field,source,value,reference,reference_value,bps`;
/// instruments without differences are counted in the summary line that ends it.
fn csv(report: &Report) -> String {
    let mut out = String::from("symbol,verdict,field,source,value,reference,reference_value,bps\n");
    for item in &report.items {
        for d in &item.differences {
            let cells = [
                item.symbol.as_str(),
                item.verdict.as_str(),
                &d.field,
                &d.source,
                d.value.as_deref().unwrap_or(""),
                &d.reference,
                d.reference_value.as_deref().unwrap_or(""),
                &d.bps.map(|b| b.to_string()).unwrap_or_default(),
            ];
            out.push_str(&cells.map(quoted).join(","));
            out.push('\n');
        }
    }
    let run = &report.run;
    out.push_str(&format!(
        "# {} {}: {} instruments, {} matched, {} different, {} missing, {} unavailable (sources {}, tolerance {} bps)\n",
        run.day,
        run.market.as_deref().unwrap_or("all markets"),
        run.instruments,
        run.matched,
        run.different,
        run.missing,
        run.unavailable,
        run.sources.join(","),
        run.tolerance_bps
    ));
    out
}

/// A CSV cell, quoted when it must be (RFC 4180).
fn quoted(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell.to_owned() }
}

fn json_of(report: &Report) -> serde_json::Value {
    let run = &report.run;
    let items: Vec<serde_json::Value> = report
        .items
        .iter()
        .filter(|i| !matches!(i.verdict, Verdict::Match | Verdict::NoData))
        .map(|i| json!({ "symbol": i.symbol, "verdict": i.verdict.as_str(), "differences": i.differences }))
        .collect();
    json!({
        "id": run.id.to_string(),
        "date": run.day.to_string(),
        "market": run.market,
        "sources": run.sources,
        "toleranceBps": run.tolerance_bps,
        "instruments": run.instruments,
        "matched": run.matched,
        "different": run.different,
        "missing": run.missing,
        "unavailable": run.unavailable,
        "items": items,
    })
}
