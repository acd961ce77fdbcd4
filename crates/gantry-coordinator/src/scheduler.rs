//! The cron scheduler of a coordinator (SPEC section 9): start the run of
//! each tick that is due, then sleep until the next one (at most a second,
//! so new, changed and resumed schedules are seen). Every coordinator runs
//! one; the tick's idempotency key makes their starts one run.

use chrono::Utc;
use gantry_engine::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest sleep between passes.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Slept past a tick, so that the wall clock has passed it on waking.
const MARGIN: Duration = Duration::from_millis(2);

/// Run passes until `shutdown` fires. A failed pass (an outage) is logged
/// and retried after a second.
pub(crate) async fn run(engine: Engine, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let sleep = match engine.fire_schedules(Utc::now()).await {
            Ok(Some(next)) => (next - Utc::now())
                .to_std()
                .unwrap_or_default()
                .saturating_add(MARGIN)
                .min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::warn!(error = %e, "a scheduler pass failed; trying again in a second");
                MAX_SLEEP
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
