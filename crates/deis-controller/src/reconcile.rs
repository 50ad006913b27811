//! Reconciliation: the containers the database says should run and the containers that run
//! converge, at start-up and then periodically. A container removed by hand comes back; after a
//! controller restart, containers that already run are adopted as they are, not restarted.
//! Each pass runs in the span `reconcile`, each app's convergence in `converge{app release}`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::release::{self, ReleaseError};
use crate::report::Report;
use crate::state::AppState;

/// Converges every app now and then every `interval`, until `shutdown`.
pub(crate) async fn run(state: AppState, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(e) = pass(&state, &shutdown).await {
            tracing::warn!(error = %Report(&e), "Reconciliation failed; trying again later");
        }
    }
}

/// One pass over every app. An app whose lock is taken (a change in progress) is left to the
/// change and to the next pass.
#[tracing::instrument(name = "reconcile", skip_all)]
async fn pass(state: &AppState, shutdown: &CancellationToken) -> Result<(), ReleaseError> {
    let (apps, _) = state.db.apps_visible("", true, i64::MAX, 0).await?;
    for app in apps {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let Some(_guard) = state.locks.try_lock(&app.id) else {
            continue;
        };
        let Some(desired) = release::current(state, &app).await? else {
            continue;
        };
        let span = tracing::info_span!(
            "converge",
            app = %app.id,
            release = desired.release.version
        );
        async {
            if let Err(e) = state.scheduler.converge(&desired).await {
                tracing::warn!(error = %Report(&e), "Converging an app failed");
            }
        }
        .instrument(span)
        .await;
    }
    Ok(())
}
