//! The transaction in which the coordinator (and the API, for cancel, retry
//! and approvals) advances runs: lock the run row, load the state the pure
//! state machine needs, save what it changed.
//!
//! Locking: runs are locked before their nodes, and nodes in `(run, idx)`
//! order, by every writer. The coordinator takes runs `FOR NO KEY UPDATE`
//! (so it does not block workers' claims, which take `FOR KEY SHARE`);
//! [`RunTx::lock_run`] takes `FOR UPDATE`, which waits for claims in flight
//! and holds new ones off, so a cancel never races a claim of the same node.

use crate::rows::{i32_of, millis, node_status, run_status, u32_of};
use crate::{AttemptResult, Dispatch, PendingResult, Result, RunHead, RUN_CHANNEL};
use gantry_dag::limits::{clamp_delay_ms, MAX_DELAY_MS};
use gantry_dag::{
    Action, Fact, Facts, NodeFailure, NodeIdx, NodeState, NodeStatus, Outcome, Plan, RunState,
    SkipReason, ValidatedDag,
};
use sqlx::{Postgres, Transaction};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// An open transaction over runs. Dropping it rolls back.
pub struct RunTx<'c> {
    tx: Transaction<'c, Postgres>,
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
}

#[derive(sqlx::FromRow)]
struct FactRow {
    idx: i32,
    status: String,
    output: serde_json::Value,
    error: Option<String>,
}

/// What `save` writes into the `error` column of a skipped node.
fn skip_text(reason: Option<SkipReason>) -> &'static str {
    match reason {
        Some(SkipReason::ConditionFalse) => "skipped: its condition is false",
        Some(SkipReason::UpstreamSkipped) => "skipped: an upstream node was skipped",
        Some(SkipReason::UpstreamFailed) | None => "skipped: an upstream node failed",
    }
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
        crate::work::record_in(&mut self.tx, results).await
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
            "SELECT n.idx, n.attempt, a.status, a.retryable
             FROM nodes n
             -- One primary-key probe per flagged node (see save_nodes.sql).
             LEFT JOIN LATERAL (
                 SELECT a.status, a.retryable, a.finished_at FROM attempts a
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
        // read the whole run.
        const COLS: &str =
            "idx, status, attempt, tries, waiting_on, failed_parents, skipped_parents, skip_reason";
        let rows: Vec<StateRow> = match view {
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
            let skip_reason = match r.skip_reason.as_deref() {
                None => None,
                Some(s) => Some(SkipReason::parse(s).ok_or_else(|| crate::Error::Corrupt {
                    what: "skip reason",
                    reason: format!("unknown skip reason {s:?}"),
                })?),
            };
            nodes.insert(
                u32_of(r.idx),
                NodeState {
                    status: node_status(&r.status)?,
                    attempt: u32_of(r.attempt),
                    tries: u32_of(r.tries),
                    waiting_on: u32_of(r.waiting_on),
                    failed_parents: u32_of(r.failed_parents),
                    skipped_parents: u32_of(r.skipped_parents),
                    skip_reason,
                },
            );
        }
        Ok(RunState {
            status: head.status,
            remaining: head.remaining,
            failed: head.failed,
            nodes,
            facts: Facts::default(),
        })
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

    /// Persist the result of applying events to `head`'s run:
    /// - each node in `changed` gets its new status, attempt, tries and
    ///   waiting_on from `state`; entering `queued` sets `queued_at`; entering
    ///   `retrying` sets `retry_at` from the action's delay; entering
    ///   `succeeded` copies output from its latest attempt and sets
    ///   `finished_at`; entering `failed` copies the attempt's error (or
    ///   "rejected"), `skipped` gets error "skipped: an upstream node failed",
    ///   `cancelled` gets "cancelled";
    /// - `pending_advance` is cleared on `processed`;
    /// - the run row gets `state.status`, `remaining`, `failed`, `updated_at`
    ///   and, on `FinishRun`, `finished_at`;
    /// - [`crate::RUN_CHANNEL`] is notified with the run id.
    ///
    /// Returns the dispatches for `Enqueue` and `Schedule` actions (with
    /// `delay_ms` for `Schedule`) to deliver after commit. All writes are
    /// batched (UNNEST), not one statement per node.
    #[allow(clippy::too_many_arguments)]
    pub async fn save(
        &mut self,
        head: &RunHead,
        dag: &ValidatedDag,
        plan: &Plan,
        state: &RunState,
        changed: &[NodeIdx],
        actions: &[Action],
        failures: &[(NodeIdx, NodeFailure)],
        processed: &[NodeIdx],
    ) -> Result<Vec<Dispatch>> {
        // The DAG is not needed to persist a state; callers pass the same
        // (dag, plan, state) triple they advanced with.
        let _ = dag;
        let delays: HashMap<NodeIdx, u64> = actions
            .iter()
            .filter_map(|a| match *a {
                // Clamped: a delay past the bound (a policy stored before
                // bounds were enforced) made Postgres fail the whole batch
                // with "interval out of range".
                Action::Schedule { node, delay } => Some((
                    node,
                    clamp_delay_ms(u64::try_from(millis(delay)).unwrap_or(0)),
                )),
                _ => None,
            })
            .collect();
        self.save_nodes(head.id, state, changed, &delays, failures, processed)
            .await?;
        // Processed results that changed nothing (stale or replayed) still
        // lose their flag; the others lost it in save_nodes.
        let changed_set: std::collections::HashSet<NodeIdx> = changed.iter().copied().collect();
        let unchanged: Vec<i32> = processed
            .iter()
            .filter(|i| !changed_set.contains(i) || !state.nodes.contains_key(i))
            .map(|&i| i32_of(i))
            .collect();
        if !unchanged.is_empty() {
            let idxs = unchanged;
            sqlx::query(
                "UPDATE nodes SET pending_advance = false
                 WHERE run_id = $1 AND idx = ANY($2) AND pending_advance",
            )
            .bind(head.id)
            .bind(&idxs)
            .execute(&mut *self.tx)
            .await?;
        }
        let finish = actions
            .iter()
            .any(|a| matches!(a, Action::FinishRun { .. }));
        // One round trip: the run row, and the notification to event streams.
        let (traceparent, _): (Option<String>, Option<String>) = sqlx::query_as(
            "UPDATE runs
             SET status = $2, remaining = $3, failed = $4, updated_at = clock_timestamp(),
                 finished_at = CASE
                     WHEN $2 = 'running' THEN NULL
                     WHEN $5 THEN clock_timestamp()
                     ELSE COALESCE(finished_at, clock_timestamp())
                 END
             WHERE id = $1
             RETURNING traceparent, pg_notify($6, $1::text)::text",
        )
        .bind(head.id)
        .bind(state.status.as_str())
        .bind(i32_of(state.remaining))
        .bind(i32_of(state.failed))
        .bind(finish)
        .bind(RUN_CHANNEL)
        .fetch_one(&mut *self.tx)
        .await?;

        let dispatch = |node: NodeIdx, delay_ms: Option<u64>| {
            Dispatch::of(head, plan, node, delay_ms, traceparent.clone())
        };
        Ok(actions
            .iter()
            .filter_map(|a| match *a {
                Action::Enqueue { node } => Some(dispatch(node, None)),
                Action::Schedule { node, delay } => Some(dispatch(
                    node,
                    Some(clamp_delay_ms(
                        u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    )),
                )),
                _ => None,
            })
            .collect())
    }

    /// The node half of [`RunTx::save`]: one statement for all changed nodes,
    /// then one that closes attempts left open by nodes that ended.
    async fn save_nodes(
        &mut self,
        run: Uuid,
        state: &RunState,
        changed: &[NodeIdx],
        delays: &HashMap<NodeIdx, u64>,
        failures: &[(NodeIdx, NodeFailure)],
        processed: &[NodeIdx],
    ) -> Result<()> {
        let n = changed.len();
        let failures: HashMap<NodeIdx, String> = failures
            .iter()
            .map(|(i, why)| (*i, why.to_string()))
            .collect();
        let mut failed_parents = Vec::with_capacity(n);
        let mut skipped_parents = Vec::with_capacity(n);
        let mut skip_reasons: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
        let processed: std::collections::HashSet<NodeIdx> = processed.iter().copied().collect();
        let mut done = Vec::with_capacity(n);
        let mut idxs = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut tries = Vec::with_capacity(n);
        let mut waiting = Vec::with_capacity(n);
        let mut delay_ms: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut ended = Vec::new();
        for &i in changed {
            let Some(s) = state.nodes.get(&i) else {
                continue;
            };
            idxs.push(i32_of(i));
            done.push(processed.contains(&i));
            statuses.push(s.status.as_str());
            attempts.push(i32_of(s.attempt));
            tries.push(i32_of(s.tries));
            waiting.push(i32_of(s.waiting_on));
            failed_parents.push(i32_of(s.failed_parents));
            skipped_parents.push(i32_of(s.skipped_parents));
            skip_reasons.push(s.skip_reason.map(SkipReason::as_str));
            errors.push(match s.status {
                NodeStatus::Skipped => Some(skip_text(s.skip_reason)),
                NodeStatus::Failed => failures.get(&i).map(String::as_str),
                _ => None,
            });
            delay_ms.push(
                delays
                    .get(&i)
                    .map(|&d| i64::try_from(d).unwrap_or(i64::MAX)),
            );
            if matches!(
                s.status,
                NodeStatus::Failed | NodeStatus::Skipped | NodeStatus::Cancelled
            ) {
                ended.push(i32_of(i));
            }
        }
        if idxs.is_empty() {
            return Ok(());
        }
        // Lock in idx order first, as every writer does, so the update below
        // may visit rows in any order without risking a deadlock.
        sqlx::query(
            "SELECT 1 FROM nodes WHERE run_id = $1 AND idx = ANY($2)
             ORDER BY idx FOR NO KEY UPDATE",
        )
        .bind(run)
        .bind(&idxs)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(include_str!("save_nodes.sql"))
            .bind(run)
            .bind(&idxs)
            .bind(&statuses)
            .bind(&attempts)
            .bind(&tries)
            .bind(&waiting)
            .bind(&delay_ms)
            .bind(&errors)
            .bind(&done)
            .bind(i64::try_from(MAX_DELAY_MS).unwrap_or(i64::MAX))
            .bind(&failed_parents)
            .bind(&skipped_parents)
            .bind(&skip_reasons)
            .execute(&mut *self.tx)
            .await?;
        if !ended.is_empty() {
            // An attempt still open on a node that ended (a cancel) will never
            // be recorded: its worker's result is fenced off. Close it.
            sqlx::query(
                "UPDATE attempts a
                 SET status = 'failed', retryable = false, finished_at = clock_timestamp(),
                     error = COALESCE(n.error, 'cancelled')
                 FROM nodes n
                 WHERE n.run_id = $1 AND n.idx = ANY($2)
                   AND a.run_id = n.run_id AND a.idx = n.idx AND a.finished_at IS NULL",
            )
            .bind(run)
            .bind(&ended)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Of `nodes` of `run`, those now `failed` because their last attempt's
    /// lease ran out (its worker died or hung on every try): the jobs that
    /// go to the dead list. With their tries.
    pub async fn died_of_lease_expiry(
        &mut self,
        run: Uuid,
        nodes: &[NodeIdx],
    ) -> Result<Vec<(NodeIdx, u32)>> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let idxs: Vec<i32> = nodes.iter().map(|&i| i32_of(i)).collect();
        let rows: Vec<(i32, i32)> = sqlx::query_as(
            "SELECT idx, tries FROM nodes
             WHERE run_id = $1 AND idx = ANY($2) AND status = 'failed'
               AND error = 'lease expired'",
        )
        .bind(run)
        .bind(&idxs)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(i, t)| (u32_of(i), u32_of(t)))
            .collect())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
