//! The coordinator loop: wake on `gantry_advance` notifications (or a tick,
//! in case one was lost), drain every pending result, and reconcile. A run
//! whose advance fails on its own is set aside (`isolate.rs`), never
//! retried in a loop that holds up the others.

use crate::isolate::SetAside;
use crate::reconcile;
use gantry_engine::{Engine, Result};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Coordinator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often the reconciler runs.
    pub reconcile_every: Duration,
    /// A queued node older than this and absent from Redis is delivered again.
    pub redeliver_after: Duration,
    /// Runs advanced per transaction.
    pub batch_runs: i64,
    /// Days a finished run is kept when its workflow does not say (0: for
    /// ever; `GANTRY_RETENTION_DAYS`).
    pub retention_days: u32,
    /// Most runs retention deletes per batch (a batch a second).
    pub purge_batch: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reconcile_every: Duration::from_secs(1),
            redeliver_after: Duration::from_secs(5),
            batch_runs: 64,
            retention_days: 30,
            purge_batch: 500,
        }
    }
}

/// Run the coordinator until `shutdown` fires. Connection failures are
/// retried with a capped backoff; the loop only returns on shutdown.
pub async fn run(engine: Engine, config: Config, shutdown: CancellationToken) -> Result<()> {
    let scheduler = tokio::spawn(crate::scheduler::run(engine.clone(), shutdown.clone()));
    let retention = tokio::spawn(crate::retention::run(
        engine.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    let out = coordinate(&engine, &config, &shutdown).await;
    let _ = scheduler.await;
    let _ = retention.await;
    out
}

async fn coordinate(engine: &Engine, config: &Config, shutdown: &CancellationToken) -> Result<()> {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match serve(engine, config, shutdown).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "coordinator loop failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}

async fn serve(engine: &Engine, config: &Config, shutdown: &CancellationToken) -> Result<()> {
    let mut listener = engine.listen_advance().await?;
    let mut tick = tokio::time::interval(config.reconcile_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut aside = SetAside::default();
    drain_isolated(engine, config.batch_runs, &mut aside).await?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            n = listener.recv() => n?,
            _ = tick.tick() => {
                match reconcile::once(engine, config).await {
                    Ok(()) => engine.health.ok(),
                    Err(e) => {
                        engine.health.failed();
                        return Err(e);
                    }
                }
            }
        }
        drain_isolated(engine, config.batch_runs, &mut aside).await?;
    }
}

/// Most batches one drain advances before it yields to the loop (which
/// drains again at once on the next notification or tick).
const MAX_BATCHES: usize = 10_000;

/// Advance runs until no result is pending. Returns how many runs advanced.
pub async fn drain(engine: &Engine, batch_runs: i64) -> Result<usize> {
    drain_isolated(engine, batch_runs, &mut SetAside::default()).await
}

/// [`drain`], leaving out the runs in `aside`. A batch that fails for any
/// reason but an unreachable database is advanced again run by run; a run
/// that still fails is set aside (and logged), so one bad run never blocks
/// the others. Connection-level failures are returned for the caller's
/// backoff.
async fn drain_isolated(engine: &Engine, batch_runs: i64, aside: &mut SetAside) -> Result<usize> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let skip = aside.active(Instant::now());
        match engine.advance_pending(batch_runs, &skip).await {
            Ok(0) => {
                engine.health.ok();
                return Ok(total);
            }
            Ok(n) => {
                engine.health.ok();
                total += n;
            }
            Err(e) if e.is_retryable() => {
                engine.health.failed();
                return Err(e);
            }
            Err(e) => {
                engine.health.failed();
                tracing::warn!(error = %e, "advancing a batch of runs failed; advancing them one by one");
                total += advance_one_by_one(engine, batch_runs, &skip, aside).await?;
            }
        }
    }
    Ok(total)
}

/// Advance each run of the next batch in a transaction of its own; set
/// aside those that fail.
async fn advance_one_by_one(
    engine: &Engine,
    batch_runs: i64,
    skip: &[Uuid],
    aside: &mut SetAside,
) -> Result<usize> {
    let ids = engine.pending_runs(batch_runs, skip).await?;
    let mut advanced = 0;
    for id in ids {
        match engine.advance_run(id).await {
            Ok(()) => {
                engine.health.ok();
                aside.clear(id);
                advanced += 1;
            }
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                let pause = aside.fail(id, Instant::now());
                tracing::error!(run = %id, error = %e, ?pause,
                    "advancing this run failed; it is set aside so other runs go on");
            }
        }
    }
    Ok(advanced)
}
