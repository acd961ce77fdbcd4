//! The worker: pulls jobs from its queues (blocking reads, no sleep-polling),
//! claims each node in Postgres under a lease, executes the agent within a
//! concurrency limit, records the result fenced by attempt, and only then
//! acknowledges the job in Redis.

mod breaker;
mod complete;
mod error;
mod guard;
mod heartbeat;
mod held;
mod pull;
mod record;
mod run_one;

pub use breaker::{Breaker, BreakerConfig, Decision, Outcome as Health, State as BreakerState};
pub use error::{Error, Result};

use gantry_engine::Engine;
use gantry_executor::Executor;
use held::Held;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unique per process; the Redis consumer name and lease owner.
    pub id: String,
    pub queues: Vec<String>,
    /// Attempts executing at once.
    pub concurrency: usize,
    /// Lease on a running node; renewed every third of it.
    pub lease: Duration,
    /// After shutdown is asked for, how long running attempts may finish.
    pub grace: Duration,
    /// Per-agent circuit breakers (the Docker daemon's needs twice the failures).
    pub breaker: BreakerConfig,
    /// Apply recorded results to their runs in the same transaction when the
    /// run's lock is free, instead of always leaving them to the coordinator.
    pub inline_advance: bool,
}

/// Run a worker until `shutdown` fires, then stop taking jobs, let running
/// attempts finish within the grace period, and hand back the rest.
pub async fn run(
    engine: Engine,
    executor: Arc<Executor>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let held = Held::default();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    // Stops the background tasks once every attempt is recorded.
    let stop = CancellationToken::new();

    let completer = tokio::spawn(complete::run(
        engine.clone(),
        config.clone(),
        held.clone(),
        done_rx,
    ));
    let renewer = tokio::spawn(held::renew(
        engine.clone(),
        config.clone(),
        held.clone(),
        stop.clone(),
    ));
    let guards = guard::Guards::new(config.breaker);
    let beat = tokio::spawn(heartbeat::run(
        engine.clone(),
        config.clone(),
        executor.runtimes(),
        held.clone(),
        guards.clone(),
        stop.clone(),
    ));
    let canceller = tokio::spawn(held::listen_cancel(
        engine.clone(),
        held.clone(),
        stop.clone(),
    ));

    let ctx = pull::Ctx {
        engine: engine.clone(),
        executor,
        config: config.clone(),
        slots: slots.clone(),
        held: held.clone(),
        guards,
        done: done_tx,
    };
    let pulled = pull::run(ctx, shutdown.clone()).await;

    // Drain: wait for running attempts up to the grace period, then tell the
    // rest to stop; their results (cancelled, retryable) are still recorded.
    let all = config.concurrency.max(1) as u32;
    let drained = tokio::time::timeout(config.grace, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            running = held.len(),
            "grace period over; handing back running attempts"
        );
        held.cancel_all();
        let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all)).await;
    }
    stop.cancel();
    let _ = completer.await;
    let _ = renewer.await;
    let _ = canceller.await;
    let _ = beat.await;
    pulled
}
