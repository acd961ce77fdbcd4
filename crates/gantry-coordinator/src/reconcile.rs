//! The reconciler: repairs what a crash or a lost notification left behind.
//! Expired leases become retryable failures; queued or due nodes that Redis
//! no longer holds (a crash between commit and delivery, a flushed or
//! restarted Redis) are delivered again (a `workflow` node's delivery starts
//! its child run); running children of a cancelled parent (a cascade cut
//! short) are cancelled; approval gates past their deadline are decided by
//! their `on_approval_timeout`. Pending results are drained by the caller
//! right after.

use crate::Config;
use gantry_engine::{Engine, Result};

/// One reconciliation pass.
pub(crate) async fn once(engine: &Engine, config: &Config) -> Result<()> {
    for (queue, expired) in engine.expire_leases(1000).await? {
        tracing::info!(%queue, expired, "leases expired; their nodes will be retried");
        metrics::counter!(gantry_telemetry::LEASE_EXPIRIES, "queue" => queue).increment(expired);
    }
    let waits = engine.expire_waits(1000).await?;
    if waits > 0 {
        tracing::info!(waits, "waits timed out before their event came");
    }
    let started = engine.retrigger_events(100).await?;
    if started > 0 {
        tracing::info!(
            started,
            "runs started for events whose triggers had not run"
        );
    }
    let timed_out = engine.expire_approvals(100).await?;
    if timed_out > 0 {
        tracing::info!(
            gates = timed_out,
            "approval gates decided by their approval timeout"
        );
    }
    for child in engine.reads().orphaned_children(100).await? {
        tracing::info!(%child, "cancelling a child run whose parent was cancelled");
        match engine.cancel(child).await {
            Ok(_)
            | Err(gantry_engine::Error::Conflict(_))
            | Err(gantry_engine::Error::RunNotFound(_)) => {}
            // One child that cannot be cancelled never holds back the rest
            // of the pass; it is tried again next round.
            Err(e) => tracing::warn!(%child, error = %e, "cannot cancel an orphaned child run"),
        }
    }
    // Agent jobs are checked against Redis; `workflow` slots are never in
    // Redis and are started again (a queue-name check on their empty queue
    // once failed every round, and a slot whose first start was lost
    // stalled its run for good).
    let candidates = engine
        .reads()
        .deliverable(config.redeliver_after, 5000)
        .await?;
    engine.redeliver(candidates).await?;
    Ok(())
}
