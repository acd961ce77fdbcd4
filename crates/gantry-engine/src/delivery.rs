//! The worker's side of delivery: pulling jobs through a consumer,
//! acknowledging, delaying and burying them, renewing leases, announcing
//! itself, hearing cancellations, and handing results to the coordinator.
//! Each call is the engine's so that the workers never hold the store or
//! the queue themselves.

use crate::{Engine, Result};
use futures::stream::BoxStream;
use gantry_dag::NodeIdx;
use gantry_queue::{Consumer, Delivery, Job, WorkerInfo};
use gantry_store::AttemptResult;
use std::time::Duration;
use uuid::Uuid;

impl Engine {
    /// A consumer named `name` reading `queues`.
    pub async fn consumer(&self, name: &str, queues: &[String]) -> Result<Consumer> {
        Ok(self.queue.consumer(name, queues).await?)
    }

    /// Acknowledge and delete deliveries (after their result is in Postgres,
    /// or when they name nothing to do).
    pub async fn ack(&self, deliveries: &[Delivery]) -> Result<()> {
        Ok(self.queue.ack(deliveries).await?)
    }

    /// Deliver each job again after its delay (a job put back without
    /// spending an attempt).
    pub async fn schedule(&self, jobs: &[(Job, Duration)]) -> Result<()> {
        Ok(self.queue.schedule(jobs).await?)
    }

    /// Move deliveries to their queue's dead jobs with `error` and take them
    /// off the stream.
    pub async fn bury(&self, deliveries: &[Delivery], error: &str) -> Result<()> {
        Ok(self.queue.bury(deliveries, error).await?)
    }

    /// Record jobs (with how often each was tried) as dead with `error`.
    pub async fn bury_jobs(&self, jobs: &[(Job, u64)], error: &str) -> Result<()> {
        Ok(self.queue.bury_jobs(jobs, error).await?)
    }

    /// Extend `worker`'s leases on these attempts to now + `lease`. Returns
    /// the attempts whose lease was no longer its own (to abandon).
    pub async fn renew_leases(
        &self,
        worker: &str,
        held: &[(Uuid, NodeIdx, u32)],
        lease: Duration,
    ) -> Result<Vec<(Uuid, NodeIdx, u32)>> {
        Ok(self.store.renew_leases(worker, held, lease).await?)
    }

    /// Record attempt results (fenced by attempt) for the coordinator to
    /// apply, and notify it; [`Engine::record_results`] applies them inline.
    /// Returns, per result, whether it was accepted.
    pub async fn record_results_deferred(
        &self,
        worker: &str,
        results: &[AttemptResult],
    ) -> Result<Vec<bool>> {
        Ok(self.store.record_results(worker, results).await?)
    }

    /// Announce (or refresh) a live worker for `ttl`.
    pub async fn heartbeat(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        Ok(self.queue.heartbeat(info, ttl).await?)
    }

    /// A worker that shut down: drop it from the live list at once.
    pub async fn worker_gone(&self, id: &str) -> Result<()> {
        Ok(self.queue.worker_gone(id).await?)
    }

    /// Ids of runs cancelled from now on (their attempts are to stop).
    pub async fn cancellations(&self) -> Result<BoxStream<'static, String>> {
        Ok(self.queue.cancellations().await?)
    }
}
