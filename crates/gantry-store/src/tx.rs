//! The transaction in which the coordinator (and the API, for cancel, retry
//! and approvals) advances runs: lock the run row, load the state the pure
//! state machine needs, save what it changed.
//!
//! Locking: runs are locked before their nodes, and nodes in `(run, idx)`
//! order, by every writer. The coordinator takes runs `FOR NO KEY UPDATE`
//! (so it does not block workers' claims, which take `FOR KEY SHARE`);
//! [`RunTx::lock_run`] takes `FOR UPDATE`, which waits for claims in flight
//! and holds new ones off, so a cancel never races a claim of the same node.

use crate::rows::{i32_of, node_status, run_status, u32_of};
use crate::{AttemptResult, PendingResult, Result, RunHead};
use gantry_dag::{
    Fact, Facts, MapState, NodeIdx, NodeState, Outcome, RunState, SkipReason, Wanted,
};
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// An open transaction over runs. Dropping it rolls back.
pub struct RunTx<'c> {
    pub(crate) tx: Transaction<'c, Postgres>,
}

const HEAD_COLS: &str = "id, workflow_id, plan_hash, status, remaining, failed, created_at";

#[derive(sqlx::FromRow)]
struct HeadRow {
    id: Uuid,
    workflow_id: i64,
    plan_hash: String,
    status: String,
    remaining: i32,
    failed: i32,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl HeadRow {
    fn into_head(self) -> Result<RunHead> {
        Ok(RunHead {
            id: self.id,
            workflow_id: self.workflow_id,
            plan_hash: self.plan_hash,
            status: run_status(&self.status)?,
            remaining: u32_of(self.remaining),
            failed: u32_of(self.failed),
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    idx: i32,
    attempt: i32,
    status: Option<String>,
    retryable: Option<bool>,
    /// Its lease ran out (migration 0011).
    lost: Option<bool>,
    /// A wait's deadline passed (migration 0016).
    timed_out: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    idx: i32,
    status: String,
    attempt: i32,
    tries: i32,
    waiting_on: i32,
    failed_parents: i32,
    skipped_parents: i32,
    skip_reason: Option<String>,
    items: Option<i32>,
    next_item: Option<i32>,
    items_active: Option<i32>,
    items_succeeded: Option<i32>,
    failed_item: Option<i32>,
    items_parked: Option<i32>,
}

impl StateRow {
    fn into_state(self) -> Result<(NodeIdx, NodeState)> {
        let skip_reason = match self.skip_reason.as_deref() {
            None => None,
            Some(s) => Some(SkipReason::parse(s).ok_or_else(|| crate::Error::Corrupt {
                what: "skip reason",
                reason: format!("unknown skip reason {s:?}"),
            })?),
        };
        let map = self.items.map(|items| MapState {
            items: u32_of(items),
            next: u32_of(self.next_item.unwrap_or(0)),
            active: u32_of(self.items_active.unwrap_or(0)),
            parked: u32_of(self.items_parked.unwrap_or(0)),
            succeeded: u32_of(self.items_succeeded.unwrap_or(0)),
            failed_item: self.failed_item.map(u32_of),
        });
        let state = NodeState {
            status: node_status(&self.status)?,
            attempt: u32_of(self.attempt),
            tries: u32_of(self.tries),
            waiting_on: u32_of(self.waiting_on),
            failed_parents: u32_of(self.failed_parents),
            skipped_parents: u32_of(self.skipped_parents),
            skip_reason,
            map,
        };
        Ok((u32_of(self.idx), state))
    }
}

/// The columns of a [`StateRow`].
const STATE_COLS: &str = "idx, status, attempt, tries, waiting_on, failed_parents, \
     skipped_parents, skip_reason, items, next_item, items_active, items_succeeded, failed_item, \
     items_parked";

#[derive(sqlx::FromRow)]
struct FactRow {
    idx: i32,
    status: String,
    output: serde_json::Value,
    error: Option<String>,
}

impl<'c> RunTx<'c> {
    pub(crate) fn new(tx: Transaction<'c, Postgres>) -> Self {
        Self { tx }
    }

    /// Lock (`FOR UPDATE SKIP LOCKED`) up to `limit` runs that have nodes
    /// flagged `pending_advance`, oldest first. Runs another coordinator holds
    /// are skipped; it will see their flags when it is done.
    pub async fn lock_pending_runs(&mut self, limit: i64) -> Result<Vec<RunHead>> {
        self.lock_pending_runs_except(limit, &[]).await
    }

    /// [`RunTx::lock_pending_runs`] leaving out the runs in `except` (runs
    /// whose advance keeps failing, set aside so they cannot hold up the
    /// others).
    pub async fn lock_pending_runs_except(
        &mut self,
        limit: i64,
        except: &[Uuid],
    ) -> Result<Vec<RunHead>> {
        // NO KEY UPDATE: exclusive among coordinators, compatible with claims.
        let rows: Vec<HeadRow> = sqlx::query_as(&format!(
            "SELECT {HEAD_COLS} FROM runs
             WHERE id IN (SELECT run_id FROM nodes WHERE pending_advance)
               AND id <> ALL($2)
             ORDER BY id
             LIMIT $1
             FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .bind(limit)
        .bind(except)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter().map(HeadRow::into_head).collect()
    }

    /// Lock those of `ids` no other transaction holds (`FOR NO KEY UPDATE
    /// SKIP LOCKED`, in id order); a worker uses it to apply its own results
    /// in the transaction that records them, leaving busy runs to the
    /// coordinator.
    pub async fn try_lock_runs(&mut self, ids: &[Uuid]) -> Result<Vec<RunHead>> {
        let rows: Vec<HeadRow> = sqlx::query_as(&format!(
            "SELECT {HEAD_COLS} FROM runs
             WHERE id = ANY($1)
             ORDER BY id
             FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .bind(ids)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter().map(HeadRow::into_head).collect()
    }

    /// [`crate::Store::record_results`] inside this transaction, without the
    /// notification (see [`RunTx::notify_advance`]).
    pub async fn record_results(&mut self, results: &[AttemptResult]) -> Result<Vec<bool>> {
        crate::work::record_in(&mut self.tx, results, &[]).await
    }

    /// [`RunTx::record_results`] in a transaction that holds the locks of
    /// the runs in `held` and applies their results itself: those nodes
    /// are not flagged `pending_advance` (a row version less per node: the
    /// save that applies the result is the node's next write), so the
    /// caller hands them to the state machine (see
    /// [`crate::PendingResult::of`]).
    pub async fn record_results_held(
        &mut self,
        results: &[AttemptResult],
        held: &[Uuid],
    ) -> Result<Vec<bool>> {
        crate::work::record_in(&mut self.tx, results, held).await
    }

    /// Wake the coordinators: results wait in runs this transaction did not
    /// advance.
    pub async fn notify_advance(&mut self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(crate::ADVANCE_CHANNEL)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Give up (an error) on any lock this transaction waits for longer
    /// than `limit`, instead of waiting for ever.
    pub async fn set_lock_timeout(&mut self, limit: std::time::Duration) -> Result<()> {
        let ms = limit.as_millis().clamp(1, i32::MAX as u128);
        sqlx::query(&format!("SET LOCAL lock_timeout = {ms}"))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Lock one run (`FOR UPDATE`, waiting for other holders).
    pub async fn lock_run(&mut self, id: Uuid) -> Result<Option<RunHead>> {
        let row: Option<HeadRow> = sqlx::query_as(&format!(
            "SELECT {HEAD_COLS} FROM runs WHERE id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(HeadRow::into_head).transpose()
    }

    /// The results waiting on `run` (nodes flagged `pending_advance`, with
    /// their latest attempt's outcome), in the order they were recorded.
    pub async fn pending_results(&mut self, run: Uuid) -> Result<Vec<PendingResult>> {
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT n.idx, n.attempt, a.status, a.retryable, a.lost, a.timed_out
             FROM nodes n
             -- One primary-key probe per flagged node (see save_nodes.sql).
             LEFT JOIN LATERAL (
                 SELECT a.status, a.retryable, a.lost, a.timed_out, a.finished_at FROM attempts a
                 WHERE a.run_id = n.run_id AND a.idx = n.idx AND a.attempt = n.attempt
                   AND a.finished_at IS NOT NULL
                 OFFSET 0
             ) a ON true
             WHERE n.run_id = $1 AND n.pending_advance
             ORDER BY a.finished_at NULLS LAST, n.idx",
        )
        .bind(run)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut stray = Vec::new();
        for r in rows {
            let outcome = match (r.status.as_deref(), r.retryable) {
                (Some("succeeded"), _) => Outcome::Succeeded,
                (Some("failed"), _) if r.lost == Some(true) => Outcome::Lost,
                (Some("failed"), _) if r.timed_out == Some(true) => Outcome::TimedOut,
                (Some("failed"), retryable) => Outcome::Failed {
                    retryable: retryable.unwrap_or(false),
                },
                _ => {
                    stray.push(r.idx);
                    continue;
                }
            };
            out.push(PendingResult {
                node: u32_of(r.idx),
                attempt: u32_of(r.attempt),
                outcome,
            });
        }
        if !stray.is_empty() {
            // A flag without a finished attempt carries no result; clearing
            // it keeps the run from being picked up forever.
            tracing::warn!(%run, nodes = ?stray, "clearing pending_advance without a result");
            sqlx::query(
                "UPDATE nodes SET pending_advance = false WHERE run_id = $1 AND idx = ANY($2)",
            )
            .bind(run)
            .bind(&stray)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(out)
    }

    /// Load nodes into a [`RunState`] with the head's counters: `Some(view)`
    /// loads those nodes, `None` every node.
    pub async fn load_state(
        &mut self,
        head: &RunHead,
        view: Option<&[NodeIdx]>,
    ) -> Result<RunState> {
        // Two statements, not `($2 IS NULL OR idx = ANY($2))`: the OR keeps
        // the planner from probing the primary key, so a view of two nodes
        // read the whole run. The view is one fenced primary-key probe per
        // node, not `idx = ANY($2)`: `run_id` has no statistics (migration
        // 0002), so for a view of hundreds of nodes the planner's custom
        // plans scanned every row of the run instead (50,000 rows read for a
        // view of 513 in a 50,000-node fan-out).
        const COLS: &str = STATE_COLS;
        let rows: Vec<StateRow> = match view {
            Some(view) if view.len() > crate::save::WIDE_BATCH => {
                let idxs: Vec<i32> = view.iter().map(|&i| i32_of(i)).collect();
                sqlx::query_as(&format!(
                    "SELECT n.* FROM unnest($2::int[]) AS v(i)
                     CROSS JOIN LATERAL (
                         SELECT {COLS} FROM nodes WHERE run_id = $1 AND idx = v.i OFFSET 0
                     ) n"
                ))
                .bind(head.id)
                .bind(idxs)
                .fetch_all(&mut *self.tx)
                .await?
            }
            // A few nodes: the plain statement plans and runs faster.
            Some(view) => {
                let idxs: Vec<i32> = view.iter().map(|&i| i32_of(i)).collect();
                sqlx::query_as(&format!(
                    "SELECT {COLS} FROM nodes WHERE run_id = $1 AND idx = ANY($2)"
                ))
                .bind(head.id)
                .bind(idxs)
                .fetch_all(&mut *self.tx)
                .await?
            }
            None => {
                sqlx::query_as(&format!("SELECT {COLS} FROM nodes WHERE run_id = $1"))
                    .bind(head.id)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
        };
        let mut nodes = BTreeMap::new();
        for r in rows {
            let (idx, state) = r.into_state()?;
            nodes.insert(idx, state);
        }
        Ok(RunState {
            status: head.status,
            remaining: head.remaining,
            failed: head.failed,
            nodes,
            facts: Facts::default(),
        })
    }

    /// Add to `state` the instances `wanted` names: up to its limit of
    /// those in its slot range and status, lowest first (the candidates a
    /// map node may start or gate, see [`RunState::instances_wanted`]).
    pub async fn load_instances(
        &mut self,
        run: Uuid,
        wanted: Wanted,
        state: &mut RunState,
    ) -> Result<()> {
        let rows: Vec<StateRow> = sqlx::query_as(&format!(
            "SELECT {STATE_COLS} FROM nodes
             WHERE run_id = $1 AND idx >= $2 AND idx < $3 AND status = $5
             ORDER BY idx LIMIT $4"
        ))
        .bind(run)
        .bind(i32_of(wanted.from))
        .bind(i32_of(wanted.to))
        .bind(i64::from(wanted.limit))
        .bind(wanted.status.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        for r in rows {
            let (idx, ns) = r.into_state()?;
            state.nodes.entry(idx).or_insert(ns);
        }
        Ok(())
    }

    /// What the conditions an event may decide read (see
    /// [`RunState::facts_view`]): the run's id and input, and each of
    /// `nodes`' status, output and error. A node whose result is still
    /// pending (it finishes in this very transaction) reads its latest
    /// finished attempt's output and error.
    pub async fn load_facts(&mut self, run: Uuid, nodes: &[NodeIdx]) -> Result<Facts> {
        let (input,): (serde_json::Value,) = sqlx::query_as("SELECT input FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&mut *self.tx)
            .await?;
        let idxs: Vec<i32> = nodes.iter().map(|&i| i32_of(i)).collect();
        let rows: Vec<FactRow> = if idxs.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT n.idx, n.status, COALESCE(n.output, a.output, 'null'::jsonb) AS output,
                        COALESCE(n.error, a.error) AS error
                 FROM nodes n
                 LEFT JOIN LATERAL (
                     SELECT a.output, a.error FROM attempts a
                     WHERE a.run_id = n.run_id AND a.idx = n.idx AND a.attempt = n.attempt
                       AND a.finished_at IS NOT NULL
                     OFFSET 0
                 ) a ON true
                 WHERE n.run_id = $1 AND n.idx = ANY($2)",
            )
            .bind(run)
            .bind(&idxs)
            .fetch_all(&mut *self.tx)
            .await?
        };
        let mut facts = BTreeMap::new();
        for r in rows {
            let fact = Fact {
                status: node_status(&r.status)?,
                output: r.output,
                error: r.error,
            };
            facts.insert(u32_of(r.idx), fact);
        }
        Ok(Facts {
            run_id: run.to_string(),
            input,
            nodes: facts,
        })
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
