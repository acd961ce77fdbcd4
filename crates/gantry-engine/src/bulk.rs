//! Bulk cancel and retry (SPEC section 4): the runs a filter matches, at
//! most [`MAX_BULK`] per call, each cancelled or retried exactly as a
//! single action does (its own transaction under its run's lock), a few at
//! a time; and deleting a finished run.

use crate::{Engine, Error, Result};
use futures::stream::{self, StreamExt};
use gantry_dag::RunStatus;
use gantry_store::{BulkFilter, Deleted};

/// Most runs one bulk call applies to.
pub const MAX_BULK: usize = 10_000;
/// Runs acted on at once.
const CONCURRENCY: usize = 8;

/// A bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk {
    /// Cancel running runs.
    Cancel,
    /// Retry failed and cancelled runs.
    Retry,
}

/// What a bulk call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Runs the filter matched (at most [`MAX_BULK`]), each acted on.
    pub matched: usize,
    /// More runs match: call again.
    pub more: bool,
}

impl Engine {
    /// Delete finished run `run` with its child runs, nodes, attempts and
    /// tags; returns how many runs that was. `Conflict` while it, a
    /// descendant or its parent runs.
    pub async fn delete_run(&self, run: uuid::Uuid) -> Result<u64> {
        match self.store.delete_run(run).await? {
            Deleted::Runs(n) => {
                metrics::counter!(gantry_telemetry::RUNS_DELETED).increment(n);
                Ok(n)
            }
            Deleted::NotFound => Err(Error::RunNotFound(run)),
            Deleted::Running(r) if r == run => {
                Err(Error::Conflict(format!("run {run} is still running")))
            }
            Deleted::Running(r) => Err(Error::Conflict(format!(
                "run {run} has a child run {r} that is still running"
            ))),
            Deleted::ParentRunning(p) => Err(Error::Conflict(format!(
                "run {run} is a child of run {p}, which is still running"
            ))),
        }
    }

    /// Delete up to `limit` top-level finished runs past their retention
    /// (`retention_days` of their version, else `default_days`; 0 keeps
    /// them), with their child runs. Returns how many runs that was.
    pub async fn purge_expired(&self, default_days: u32, limit: i64) -> Result<u64> {
        let n = self.store.purge_expired(default_days, limit).await?;
        metrics::counter!(gantry_telemetry::RUNS_DELETED).increment(n);
        Ok(n)
    }

    /// Apply `action` to the top-level runs `filter` matches that it
    /// applies to (cancel: running; retry: failed or cancelled), oldest
    /// first. A run that changed meanwhile (ended, or retried by someone
    /// else) is left as it is. Child runs follow their parent.
    pub async fn bulk(&self, action: Bulk, filter: &BulkFilter) -> Result<BulkOutcome> {
        let statuses: &[RunStatus] = match action {
            Bulk::Cancel => &[RunStatus::Running],
            Bulk::Retry => &[RunStatus::Failed, RunStatus::Cancelled],
        };
        let limit = i64::try_from(MAX_BULK + 1).unwrap_or(i64::MAX);
        let mut ids = self.reads().bulk_targets(filter, statuses, limit).await?;
        let more = ids.len() > MAX_BULK;
        ids.truncate(MAX_BULK);
        let results: Vec<Result<()>> = stream::iter(ids.iter().copied())
            .map(|id| async move {
                let done = match action {
                    Bulk::Cancel => self.cancel(id).await,
                    Bulk::Retry => self.retry(id).await,
                };
                match done {
                    Ok(_) | Err(Error::Conflict(_) | Error::RunNotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(BulkOutcome {
            matched: ids.len(),
            more,
        })
    }
}
