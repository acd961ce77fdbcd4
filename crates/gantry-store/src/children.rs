//! Child runs (SPEC 2.1) as the store keeps them: claiming a parent's
//! queued `workflow` slots, finding a slot's child, reporting a finished
//! child's outcome to its parent's slot like an attempt result, and the
//! reads of the cancel cascade (migration 0010).

use crate::rows::{i32_of, run_status, u32_of};
use crate::{AttemptResult, Reads, Result, RunTx};
use gantry_dag::{NodeIdx, Outcome, RunStatus, FIRST_SLOT};
use serde_json::Value;
use uuid::Uuid;

/// A `workflow` slot just claimed to start (or resume) its child run.
#[derive(Debug, Clone)]
pub struct ChildSlot {
    pub slot: NodeIdx,
    /// The attempt the child's outcome is recorded as.
    pub attempt: u32,
    /// The instance's item, for a `for_each` over a workflow.
    pub item: Option<Value>,
}

/// A child run as its parent's run page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOf {
    pub id: Uuid,
    pub status: RunStatus,
    /// The parent's `workflow` node (its index in the definition).
    pub node: NodeIdx,
    /// The instance, for a `for_each` over a workflow.
    pub index: Option<u32>,
}

/// A child run as its parent's slot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRun {
    pub id: Uuid,
    pub status: RunStatus,
    /// Set once it succeeded.
    pub output: Option<Value>,
}

impl RunTx<'_> {
    /// Claim those of `slots` of `run` that are `queued` (the caller holds
    /// the run `FOR UPDATE`): status `running`, attempt and tries + 1, and
    /// an attempt row whose worker is `workflow`. No lease: no worker
    /// renews one; the child run's own end finishes the attempt.
    pub async fn claim_child_slots(
        &mut self,
        run: Uuid,
        slots: &[NodeIdx],
    ) -> Result<Vec<ChildSlot>> {
        let idxs: Vec<i32> = slots.iter().map(|&i| i32_of(i)).collect();
        let rows: Vec<(i32, i32, Option<Value>)> = sqlx::query_as(
            "WITH claimed AS (
                 UPDATE nodes n
                 SET status = 'running', attempt = n.attempt + 1, tries = n.tries + 1,
                     lease_owner = NULL, lease_expires_at = NULL,
                     started_at = clock_timestamp(), finished_at = NULL, retry_at = NULL
                 WHERE n.run_id = $1 AND n.idx = ANY($2) AND n.status = 'queued'
                 RETURNING n.idx, n.attempt, n.item, n.started_at
             ), opened AS (
                 INSERT INTO attempts (run_id, idx, attempt, worker, status, started_at)
                 SELECT $1, idx, attempt, 'workflow', 'running', started_at FROM claimed
             )
             SELECT idx, attempt, item FROM claimed ORDER BY idx",
        )
        .bind(run)
        .bind(&idxs)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(idx, attempt, item)| ChildSlot {
                slot: u32_of(idx),
                attempt: u32_of(attempt),
                item,
            })
            .collect())
    }

    /// The run's input and nesting depth.
    pub async fn input_and_depth(&mut self, run: Uuid) -> Result<(Value, u32)> {
        let (input, depth): (Value, i32) =
            sqlx::query_as("SELECT input, depth FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok((input, u32_of(depth)))
    }

    /// The child run `run`'s `slot` started, if any.
    pub async fn child_of(&mut self, run: Uuid, slot: NodeIdx) -> Result<Option<ChildRun>> {
        let row: Option<(Uuid, String, Option<Value>)> = sqlx::query_as(
            "SELECT id, status, output FROM runs WHERE parent_run_id = $1 AND parent_idx = $2",
        )
        .bind(run)
        .bind(i32_of(slot))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|(id, status, output)| {
            Ok(ChildRun {
                id,
                status: run_status(&status)?,
                output,
            })
        })
        .transpose()
    }

    /// Record the end of child run `child` as the result of its parent
    /// slot's current attempt, fenced like a worker's result (nothing when
    /// the slot is no longer running: a cancelled parent), and wake the
    /// coordinators. A child that succeeded gives its output; one that
    /// failed, its first failed node's error; one cancelled, says so.
    pub async fn report_to_parent(
        &mut self,
        child: Uuid,
        (parent, slot): (Uuid, i32),
        status: RunStatus,
        output: Option<Value>,
    ) -> Result<bool> {
        let attempt: Option<(i32,)> = sqlx::query_as(
            "SELECT attempt FROM nodes WHERE run_id = $1 AND idx = $2 AND status = 'running'",
        )
        .bind(parent)
        .bind(slot)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some((attempt,)) = attempt else {
            return Ok(false);
        };
        let (outcome, output, error) = match status {
            RunStatus::Succeeded => (
                Outcome::Succeeded,
                Some(output.unwrap_or(Value::Null)),
                None,
            ),
            RunStatus::Cancelled => (
                Outcome::Failed { retryable: false },
                None,
                Some(format!("child run {child} was cancelled")),
            ),
            _ => {
                let first: Option<(String, Option<String>)> = sqlx::query_as(
                    "SELECT node_id, error FROM nodes
                     WHERE run_id = $1 AND idx < $2 AND status = 'failed'
                     ORDER BY finished_at NULLS LAST, idx LIMIT 1",
                )
                .bind(child)
                .bind(i32_of(FIRST_SLOT))
                .fetch_optional(&mut *self.tx)
                .await?;
                let why = match first {
                    Some((node, error)) => format!(
                        "node {node:?} failed: {}",
                        error.as_deref().unwrap_or("no error recorded")
                    ),
                    None => "it failed".to_owned(),
                };
                (
                    Outcome::Failed { retryable: false },
                    None,
                    Some(format!("child run {child} failed: {why}")),
                )
            }
        };
        let result = AttemptResult {
            run_id: parent,
            node: u32_of(slot),
            attempt: u32_of(attempt),
            outcome,
            output,
            error,
            exit_code: None,
            log_tail: None,
        };
        let accepted = self.record_results(&[result]).await?;
        let accepted = accepted.first().copied().unwrap_or(false);
        if accepted {
            self.notify_advance().await?;
        }
        Ok(accepted)
    }
}

impl Reads {
    /// The child runs of `run` that are still running (the cancel cascade).
    pub async fn running_children(&self, run: Uuid) -> Result<Vec<Uuid>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM runs WHERE parent_run_id = $1 AND status = 'running' ORDER BY id",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Up to `limit` child runs of `run` in slot order (a node's, then its
    /// instances' in item order).
    pub async fn children_of(&self, run: Uuid, limit: u32) -> Result<Vec<ChildOf>> {
        let rows: Vec<(Uuid, String, i32)> = sqlx::query_as(
            "SELECT id, status, parent_idx FROM runs WHERE parent_run_id = $1
             ORDER BY parent_idx LIMIT $2",
        )
        .bind(run)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, status, idx)| {
                let slot = gantry_dag::Slot::of(u32_of(idx));
                Ok(ChildOf {
                    id,
                    status: run_status(&status)?,
                    node: slot.node(),
                    index: slot.item(),
                })
            })
            .collect()
    }

    /// Up to `limit` running runs whose parent was cancelled: a cascade a
    /// crash interrupted, for the reconciler to finish.
    pub async fn orphaned_children(&self, limit: i64) -> Result<Vec<Uuid>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT c.id FROM runs c
             JOIN runs p ON p.id = c.parent_run_id
             WHERE c.status = 'running' AND c.parent_run_id IS NOT NULL
               AND p.status = 'cancelled'
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

impl RunTx<'_> {
    /// [`Reads::node_views`] in this transaction: what the input template
    /// of a `workflow` node reads of its ancestors.
    pub async fn node_views(
        &mut self,
        wanted: &[(Uuid, NodeIdx)],
    ) -> Result<std::collections::HashMap<(Uuid, NodeIdx), gantry_dag::NodeView>> {
        crate::work::node_views_in(&mut *self.tx, wanted).await
    }
}
