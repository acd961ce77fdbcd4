//! The pull loop: take as many jobs as there are free slots, claim them in
//! Postgres in one statement, prepare their inputs in one query, and start
//! each attempt.

use crate::complete::{Done, Finished};
use crate::guard::{Admission, Guards};
use crate::held::Held;
use crate::{run_one, Config, Result};
use gantry_engine::Engine;
use gantry_executor::Executor;
use gantry_queue::{Consumer, Delivery, Job};
use gantry_store::{ClaimJob, Dispatch};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most jobs taken in one read.
const MAX_BATCH: usize = 256;

/// A stream entry handed out this many times without ever being
/// acknowledged keeps killing or wedging its workers: it goes to the dead
/// hash instead of round again. (A node's retries are bounded separately,
/// in Postgres, by its policy.)
const MAX_DELIVERIES: u64 = 5;

/// How long a job of a runtime this worker lacks waits before it is
/// delivered again (to any worker of its queue).
const LACKING_RUNTIME_DELAY: Duration = Duration::from_secs(1);

pub(crate) struct Ctx {
    pub(crate) engine: Engine,
    pub(crate) executor: Arc<Executor>,
    pub(crate) config: Arc<Config>,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) held: Held,
    pub(crate) guards: Guards,
    pub(crate) done: mpsc::UnboundedSender<Finished>,
}

pub(crate) async fn run(ctx: Ctx, shutdown: CancellationToken) -> Result<()> {
    let mut consumer: Option<Consumer> = None;
    let mut backoff = Duration::from_millis(100);
    let mut last_reclaim = Instant::now();
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            p = ctx.slots.clone().acquire_owned() => p.expect("slots never close"),
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match ctx.slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        if consumer.is_none() {
            match ctx
                .engine
                .consumer(&ctx.config.id, &ctx.config.queues)
                .await
            {
                Ok(c) => consumer = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open queue consumer");
                    drop(permits);
                    pause(&shutdown, &mut backoff).await;
                    continue;
                }
            }
        }
        let c = consumer.as_mut().expect("consumer set");
        let fetched = if last_reclaim.elapsed() >= ctx.config.lease {
            last_reclaim = Instant::now();
            c.reclaim(ctx.config.lease, permits.len()).await
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = c.fetch(permits.len(), Duration::from_secs(1)) => r,
            }
        };
        let deliveries = match fetched {
            Ok(d) => {
                backoff = Duration::from_millis(100);
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching jobs failed");
                consumer = None;
                drop(permits);
                pause(&shutdown, &mut backoff).await;
                continue;
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        if let Err(e) = start(&ctx, deliveries, &mut permits).await {
            tracing::warn!(error = %e, "claiming jobs failed; they will be reclaimed");
            drop(permits);
            pause(&shutdown, &mut backoff).await;
        }
    }
}

async fn pause(shutdown: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}

/// Claim `deliveries` and spawn an attempt for each claimed node. Jobs that
/// cannot be claimed (duplicates, cancelled runs, garbage) are acknowledged.
async fn start(
    ctx: &Ctx,
    deliveries: Vec<Delivery>,
    permits: &mut Vec<OwnedSemaphorePermit>,
) -> Result<()> {
    let (poison, deliveries): (Vec<Delivery>, Vec<Delivery>) = deliveries
        .into_iter()
        .partition(|d| d.deliveries > MAX_DELIVERIES);
    if !poison.is_empty() {
        tracing::warn!(
            jobs = poison.len(),
            "burying jobs delivered too often without finishing"
        );
        let error = format!(
            "delivered more than {MAX_DELIVERIES} times without finishing: its workers died or hung"
        );
        ctx.engine.bury(&poison, &error).await?;
    }
    let mut by_key: HashMap<(Uuid, u32), (Delivery, Dispatch)> = HashMap::new();
    let mut drop_now = Vec::new();
    for d in deliveries {
        match serde_json::from_str::<Dispatch>(&d.payload) {
            Ok(job) => {
                if let Some((old, _)) = by_key.insert((job.run_id, job.node), (d, job)) {
                    drop_now.push(old);
                }
            }
            Err(e) => {
                tracing::warn!(job = %d.id, error = %e, "dropping a job whose payload does not parse");
                drop_now.push(d);
            }
        }
    }
    defer_unadmitted(ctx, &mut by_key).await?;
    let jobs: Vec<ClaimJob> = by_key.values().map(|(_, job)| job.into()).collect();
    let claimed = ctx
        .engine
        .claim(&ctx.config.id, &jobs, ctx.config.lease)
        .await?;
    for c in &claimed {
        if let Some(waited) = c.waited_s {
            metrics::histogram!(gantry_telemetry::DISPATCH_LATENCY).record(waited.max(0.0));
        }
    }
    let prepared = run_one::prepare(&ctx.engine, &claimed).await;
    for (c, input) in claimed.into_iter().zip(prepared) {
        let Some((delivery, job)) = by_key.remove(&(c.run_id, c.node)) else {
            continue;
        };
        let permit = permits.pop().expect("one permit per delivery");
        let token = ctx.held.insert(c.run_id, c.node, c.attempt);
        tokio::spawn(run_one::run(
            ctx.guards.clone(),
            ctx.executor.clone(),
            ctx.config.clone(),
            run_one::Attempt {
                claimed: c,
                prepared: input,
                traceparent: job.traceparent,
            },
            token,
            Done::sender(ctx.done.clone(), delivery, permit),
        ));
    }
    drop_now.extend(by_key.into_values().map(|(d, _)| d));
    if !drop_now.is_empty() {
        ctx.engine.ack(&drop_now).await?;
    }
    Ok(())
}

/// Put back, with a delay and without claiming, the jobs whose agent's
/// runtime this worker lacks (for a worker that has it), or whose agent's
/// breaker is open or rate limit spent on this worker.
async fn defer_unadmitted(
    ctx: &Ctx,
    by_key: &mut HashMap<(Uuid, u32), (Delivery, Dispatch)>,
) -> Result<()> {
    let now = tokio::time::Instant::now();
    let mut deferred = Vec::new();
    for (key, (_, job)) in by_key.iter() {
        let Ok(plan) = ctx.engine.plan(&job.plan_hash).await else {
            continue; // the attempt reports the problem
        };
        if job.node as usize >= plan.nodes.len() {
            continue;
        }
        let agent = plan.agent(job.node);
        if !ctx.executor.supports(agent.runtime) {
            deferred.push((*key, LACKING_RUNTIME_DELAY));
            continue;
        }
        if let Admission::Defer(delay) = ctx.guards.admit(agent, now) {
            deferred.push((*key, delay));
        }
    }
    if deferred.is_empty() {
        return Ok(());
    }
    let mut later = Vec::with_capacity(deferred.len());
    let mut acks = Vec::with_capacity(deferred.len());
    for (key, delay) in deferred {
        if let Some((delivery, _)) = by_key.remove(&key) {
            later.push((
                Job {
                    id: delivery.id.clone(),
                    queue: delivery.queue.clone(),
                    payload: delivery.payload.clone(),
                },
                delay,
            ));
            acks.push(delivery);
        }
    }
    tracing::debug!(
        jobs = later.len(),
        "deferring jobs (runtime missing here, breaker open or rate limited)"
    );
    ctx.engine.schedule(&later).await?;
    ctx.engine.ack(&acks).await?;
    Ok(())
}
