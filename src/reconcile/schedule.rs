//! The daily reconciliation at `FINQL_RECONCILE_AT` (UTC): every replica keeps the schedule,
//! and each day's run is claimed in the database (`reconciliation_runs.claim` is unique), so
//! exactly one replica runs it, with or without Redis. A replica started after the hour runs
//! the day at once if nobody has: a deploy at the wrong moment does not skip a day.

use chrono::{Days, NaiveTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Reconciler;

/// Starts the daily run of the previous UTC day at `at`, until `shutdown`.
pub fn spawn(reconciler: Reconciler, at: NaiveTime, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let today_at = now.date_naive().and_time(at).and_utc();
            if now >= today_at {
                run_once(&reconciler).await;
            }
            let next = if now >= today_at { today_at + Days::new(1) } else { today_at };
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Yesterday's run, unless another replica has claimed it.
async fn run_once(reconciler: &Reconciler) {
    let Some(day) = Utc::now().date_naive().checked_sub_days(Days::new(1)) else { return };
    let claim = format!("schedule:{day}:*");
    match reconciler.run(day, None, Some(claim)).await {
        Ok(Some(report)) => tracing::info!(%day, different = report.run.different, "scheduled reconciliation done"),
        Ok(None) => tracing::debug!(%day, "scheduled reconciliation already claimed"),
        Err(err) => tracing::warn!(%day, error = ?err, "scheduled reconciliation failed"),
    }
}
