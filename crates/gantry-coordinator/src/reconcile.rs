//! The reconciler: repairs what a crash or a lost notification left behind.
//! Expired leases become retryable failures; queued or due nodes that Redis
//! no longer holds (a crash between commit and delivery, a flushed or
//! restarted Redis) are delivered again (a `workflow` node's delivery starts
//! its child run); running children of a cancelled parent (a cascade cut
//! short) are cancelled. Pending results are drained by the caller right
//! after.

use crate::Config;
use gantry_engine::{Engine, Result};

/// One reconciliation pass.
pub(crate) async fn once(engine: &Engine, config: &Config) -> Result<()> {
    for (queue, expired) in engine.store.expire_leases_by_queue(1000).await? {
        tracing::info!(%queue, expired, "leases expired; their nodes will be retried");
        metrics::counter!(gantry_telemetry::LEASE_EXPIRIES, "queue" => queue).increment(expired);
    }
    for child in engine.store.orphaned_children(100).await? {
        tracing::info!(%child, "cancelling a child run whose parent was cancelled");
        match engine.cancel(child).await {
            Ok(_)
            | Err(gantry_engine::Error::Conflict(_))
            | Err(gantry_engine::Error::RunNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let candidates = engine
        .store
        .deliverable(config.redeliver_after, 5000)
        .await?;
    if candidates.is_empty() {
        return Ok(());
    }
    let keys: Vec<(String, String)> = candidates
        .iter()
        .map(|d| (d.queue.clone(), d.job_id()))
        .collect();
    let present = engine.queue.present(&keys).await?;
    let lost: Vec<_> = candidates
        .into_iter()
        .zip(present)
        .filter(|(_, p)| !p)
        .map(|(mut d, _)| {
            d.delay_ms = None;
            d
        })
        .collect();
    if !lost.is_empty() {
        tracing::warn!(jobs = lost.len(), "re-delivering jobs missing from redis");
        engine.deliver(lost).await;
    }
    Ok(())
}
