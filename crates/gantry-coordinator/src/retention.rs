//! Retention (SPEC section 4.1): a coordinator's task that deletes finished
//! runs past their age, a bounded batch a second, apart from the loop that
//! advances runs, so that deleting never holds up the hot path. Every
//! coordinator runs one; batches lock with SKIP LOCKED, so two never take
//! the same run.

use gantry_engine::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pause between batches.
const EVERY: Duration = Duration::from_secs(1);

/// Delete batches until `shutdown` fires; a failed batch (an outage) is
/// logged and tried again after the pause.
pub(crate) async fn run(engine: Engine, config: crate::Config, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match engine
            .purge_expired(config.retention_days, config.purge_batch)
            .await
        {
            Ok(0) => {}
            Ok(runs) => tracing::info!(runs, "finished runs past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "a retention batch failed; trying again"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
