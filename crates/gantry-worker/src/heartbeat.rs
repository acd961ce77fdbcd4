//! The worker's presence in Redis (`GET /v1/workers`): who it is, its
//! queues, runtimes and concurrency, what it runs now and its circuit breakers, renewed every second
//! and removed when it stops. Losing it is harmless: leases, not presence,
//! decide who owns a node.

use crate::guard::Guards;
use crate::held::Held;
use crate::Config;
use gantry_engine::Engine;
use gantry_queue::{unix_ms, WorkerInfo};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A beat a second (a `SET` per worker per second is nothing for Redis,
/// and the running list stays fresh); presence lives five beats.
const EVERY: Duration = Duration::from_secs(1);
const PRESENCE: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    engine: Engine,
    config: Arc<Config>,
    runtimes: Vec<String>,
    held: Held,
    guards: Guards,
    stop: CancellationToken,
) {
    let started_at_ms = unix_ms();
    loop {
        let info = WorkerInfo {
            id: config.id.clone(),
            queues: config.queues.clone(),
            concurrency: config.concurrency,
            running: held.job_ids(),
            started_at_ms,
            last_heartbeat_ms: unix_ms(),
            breakers: guards.breakers(),
            runtimes: runtimes.clone(),
        };
        if let Err(e) = engine.heartbeat(&info, PRESENCE).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
    if let Err(e) = engine.worker_gone(&config.id).await {
        tracing::debug!(error = %e, "cannot remove this worker's presence; it expires");
    }
}
