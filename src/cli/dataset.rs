//! `finql dataset load NAME FILE`: an operator's load of a proprietary dataset, through the
//! same checks and the same single transaction as the `loadDataset` mutation, without its row
//! cap. Prints what was accepted and rejected (each reject with its line); fails, writing
//! nothing, when more rows were rejected than `--max-rejects`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{
    config::Config,
    datasets::{
        DatasetService,
        load::Format,
        manifest,
        service::{LoadOptions, LoadReport},
    },
    db,
    reference::ReferenceService,
};

/// What `finql dataset load` was asked.
pub struct LoadArgs {
    pub name: String,
    pub file: PathBuf,
    /// `None`: from the file's extension (`.csv`; `.jsonl`, `.ndjson`).
    pub format: Option<Format>,
    pub replace: bool,
    pub max_rejects: u64,
}

/// Runs `finql dataset load`; returns the report to print, or why nothing was written.
pub async fn load(config: &Config, args: LoadArgs) -> anyhow::Result<String> {
    let format = match args.format {
        Some(format) => format,
        None => format_of(&args.file)?,
    };
    let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let manifests = manifest::configured(config.datasets_dir.as_deref(), &config.tenancy.plans)?;
    let db = db::connect(&config.database).await?;
    if config.database.migrate_on_start {
        db::migrate(&db).await?;
    }
    let datasets =
        DatasetService::open(db.clone(), manifests, ReferenceService::new(db.clone()), Duration::ZERO).await?;
    let loaded = async {
        let manifest = datasets.manifest(&args.name).map_err(super::failure)?;
        let options = LoadOptions { replace: args.replace, max_rejects: args.max_rejects };
        let input = std::io::BufReader::new(file);
        datasets.load(manifest, format, input, options, None).await.map_err(super::failure)
    }
    .await;
    db.close().await.ok();
    let report = loaded?;
    let summary = summary(&args.name, &report);
    if !report.written {
        bail!("{summary}");
    }
    Ok(summary)
}

fn format_of(file: &Path) -> anyhow::Result<Format> {
    match file.extension().and_then(|ext| ext.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("jsonl" | "ndjson") => Ok(Format::JsonLines),
        _ => bail!("cannot tell the format of {} from its name: pass --format csv or --format jsonl", file.display()),
    }
}

/// The report: a line of counts, then a line per reported reject.
fn summary(name: &str, report: &LoadReport) -> String {
    let mut out = format!("dataset {name}: {} rows accepted, {} rejected", report.accepted, report.rejected);
    match report.rows {
        Some(rows) => out.push_str(&format!("; written, the dataset holds {rows} rows")),
        None => out.push_str("; nothing written (more rejects than --max-rejects)"),
    }
    for reject in &report.rejects {
        out.push_str(&format!("\nline {}: {}", reject.line, reject.message));
    }
    if report.rejected > report.rejects.len() as u64 {
        out.push_str(&format!("\n… and {} more", report.rejected - report.rejects.len() as u64));
    }
    out
}
