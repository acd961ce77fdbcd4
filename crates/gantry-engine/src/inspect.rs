//! Queue inspection for the API, the dashboard and the metrics: reads of
//! Redis that change nothing.

use crate::{Engine, Result};
use gantry_queue::{JobPage, JobState, QueueStats, WorkerInfo};

impl Engine {
    /// `PING` Redis, for readiness.
    pub async fn queue_ping(&self) -> Result<()> {
        Ok(self.queue.ping().await?)
    }

    /// Every queue that has held a job.
    pub async fn queue_names(&self) -> Result<Vec<String>> {
        Ok(self.queue.queues().await?)
    }

    /// Job counts of one queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        Ok(self.queue.stats(queue).await?)
    }

    /// Job counts of every queue, by name.
    pub async fn all_queue_stats(&self) -> Result<Vec<(String, QueueStats)>> {
        Ok(self.queue.all_stats().await?)
    }

    /// Up to `limit` jobs of `queue` in `state`, after `cursor`.
    pub async fn queue_jobs(
        &self,
        queue: &str,
        state: JobState,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<JobPage> {
        Ok(self.queue.jobs(queue, state, limit, cursor).await?)
    }

    /// Live workers.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        Ok(self.queue.workers().await?)
    }
}
