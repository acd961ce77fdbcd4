//! [`RunTx::save`]: persisting what the state machine changed, in the
//! transaction that holds the run's lock (one statement for the nodes,
//! `save_nodes.sql`, one for the run row; instances in `instances.rs`).

use crate::rows::{i32_of, millis};
use crate::{Dispatch, Queued, Result, RunHead, RunTx, RUN_CHANNEL};
use gantry_dag::limits::{clamp_delay_ms, MAX_DELAY_MS};
use gantry_dag::{
    Action, NodeFailure, NodeIdx, NodeStatus, NodeView, Plan, RunState, RunStatus, Scope,
    SkipReason, Transition, ValidatedDag,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;
use uuid::Uuid;

/// Batches of more nodes than this are found by primary-key probes
/// (decision 0006); smaller ones by `idx = ANY`, which is faster for a few
/// rows. Both forms of `save_nodes.sql` are made once, from its markers.
pub(crate) const WIDE_BATCH: usize = 32;

static SAVE_WIDE: LazyLock<String> = LazyLock::new(|| {
    save_nodes(
        ", r.tid",
        "CROSS JOIN LATERAL (
        SELECT r.ctid AS tid FROM nodes r
        WHERE r.run_id = $1 AND r.idx = t.idx
        OFFSET 0
    ) r",
        "n.ctid = s.tid",
    )
});
static SAVE_NARROW: LazyLock<String> =
    LazyLock::new(|| save_nodes("", "", "n.run_id = $1 AND n.idx = ANY($2)"));

fn save_nodes(tid: &str, probe: &str, target: &str) -> String {
    include_str!("save_nodes.sql")
        .replace("/*TID*/", tid)
        .replace("/*PROBE*/", probe)
        .replace("/*TARGET*/", target)
}

/// What `save` writes into the `error` column of a skipped node.
fn skip_text(reason: Option<SkipReason>) -> &'static str {
    match reason {
        Some(SkipReason::ConditionFalse) => "skipped: its condition is false",
        Some(SkipReason::UpstreamSkipped) => "skipped: an upstream node was skipped",
        Some(SkipReason::TimedOut) => "skipped: no event came before its wait timed out",
        Some(SkipReason::UpstreamFailed) | None => "skipped: an upstream node failed",
    }
}

impl RunTx<'_> {
    /// Persist the result of applying events to `head`'s run:
    /// - each node in `changed` gets its new status, attempt, tries and
    ///   waiting_on from `state`; entering `queued` sets `queued_at`; entering
    ///   `retrying` sets `retry_at` from the action's delay; entering
    ///   `succeeded` copies output from its latest attempt and sets
    ///   `finished_at`; entering `failed` copies the attempt's error (or
    ///   "rejected"), `skipped` gets error "skipped: an upstream node failed",
    ///   `cancelled` gets "cancelled";
    /// - each expansion inserts its instances' rows (`instances.rs`), and a
    ///   map node that finished gets its output (the instances' outputs in
    ///   item order) or its failed instance's error;
    /// - `pending_advance` is cleared on `processed`;
    /// - the run row gets `state.status`, `remaining`, `failed`, `updated_at`
    ///   and, on `FinishRun`, `finished_at`;
    /// - [`crate::RUN_CHANNEL`] is notified with the run id.
    ///
    /// Returns the dispatches for `Enqueue` and `Schedule` actions (with
    /// `delay_ms` for `Schedule`) to deliver after commit. All writes are
    /// batched (UNNEST), not one statement per node.
    pub async fn save(
        &mut self,
        (head, dag, plan): (&RunHead, &ValidatedDag, &Plan),
        state: &RunState,
        t: &Transition,
        processed: &[NodeIdx],
    ) -> Result<Vec<Dispatch>> {
        let Transition {
            changed,
            actions,
            failures,
            expansions,
            waits,
        } = t;
        // Before any node is written: the lock order of waits.rs.
        self.lock_wait_keys(waits).await?;
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
        self.insert_instances(head.id, dag, plan, expansions)
            .await?;
        self.save_nodes(head.id, state, changed, &delays, failures, processed)
            .await?;
        self.finish_maps(head.id, dag, state, changed, failures)
            .await?;
        self.set_approval_deadlines(head.id, plan, actions).await?;
        self.begin_waits(head.id, waits).await?;
        // A match or a timeout ended its wait row already; a cancel did not.
        let left_waiting: Vec<i32> = changed
            .iter()
            .filter(|&&i| dag.wait(i).is_some())
            .filter(|i| {
                state
                    .nodes
                    .get(i)
                    .is_some_and(|n| n.status == NodeStatus::Cancelled)
            })
            .map(|&i| i32_of(i))
            .collect();
        if !left_waiting.is_empty() {
            self.close_waits(head.id, &left_waiting).await?;
        }
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
        let output = if state.status == RunStatus::Succeeded && finish {
            self.run_output(head.id, dag).await?
        } else {
            None
        };
        // One round trip: the run row, and the notification to event streams.
        let reported = output.clone();
        let (traceparent, _, parent, parent_idx): (
            Option<String>,
            Option<String>,
            Option<Uuid>,
            Option<i32>,
        ) = sqlx::query_as(
            "UPDATE runs
             SET status = $2, remaining = $3, failed = $4, updated_at = clock_timestamp(),
                 finished_at = CASE
                     WHEN $2 = 'running' THEN NULL
                     WHEN $5 THEN clock_timestamp()
                     ELSE COALESCE(finished_at, clock_timestamp())
                 END,
                 output = CASE
                     WHEN $2 = 'succeeded' AND $5 THEN $7::jsonb
                     WHEN $2 = 'running' THEN NULL
                     ELSE output
                 END
             WHERE id = $1
             RETURNING traceparent, pg_notify($6, $1::text)::text, parent_run_id, parent_idx",
        )
        .bind(head.id)
        .bind(state.status.as_str())
        .bind(i32_of(state.remaining))
        .bind(i32_of(state.failed))
        .bind(finish)
        .bind(RUN_CHANNEL)
        .bind(output)
        .fetch_one(&mut *self.tx)
        .await?;
        if let (true, Some(parent), Some(slot)) = (finish, parent, parent_idx) {
            self.report_to_parent(head.id, (parent, slot), state.status, reported)
                .await?;
        }

        let dispatch = |node: NodeIdx, delay_ms: Option<u64>| {
            Dispatch::of(head, plan, node, delay_ms, traceparent.clone())
        };
        Ok(actions
            .iter()
            .filter_map(|a| match *a {
                // The node as saved: its claim decides on this and skips
                // reading the row (a node no longer queued at the end of
                // the transition carries nothing, and its claim reads).
                Action::Enqueue { node } => Some(Dispatch {
                    queued: state
                        .nodes
                        .get(&node)
                        .filter(|n| n.status == NodeStatus::Queued)
                        .map(|n| Queued {
                            attempt: n.attempt,
                            tries: n.tries,
                        }),
                    ..dispatch(node, None)
                }),
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
        let mut maps: [Vec<Option<i32>>; 6] = Default::default();
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
            let m = s.map;
            maps[0].push(m.map(|m| i32_of(m.items)));
            maps[1].push(m.map(|m| i32_of(m.next)));
            maps[2].push(m.map(|m| i32_of(m.active)));
            maps[3].push(m.map(|m| i32_of(m.succeeded)));
            maps[4].push(m.and_then(|m| m.failed_item).map(i32_of));
            maps[5].push(m.map(|m| i32_of(m.parked)));
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
        // may visit rows in any order without risking a deadlock. A wide
        // batch finds each node by one primary-key probe (see
        // save_nodes.sql: with `idx = ANY($2)` the planner's plans read every
        // row of the run, or re-ran the UNNEST per row); a narrow one keeps
        // the plain statements, which cost a chain hop about 1 ms less.
        let wide = idxs.len() > WIDE_BATCH;
        let lock = if wide {
            "SELECT 1 FROM (SELECT DISTINCT i FROM unnest($2::int[]) AS v(i) ORDER BY i) v
             CROSS JOIN LATERAL (
                 SELECT 1 FROM nodes WHERE run_id = $1 AND idx = v.i FOR NO KEY UPDATE
             ) n"
        } else {
            "SELECT 1 FROM nodes WHERE run_id = $1 AND idx = ANY($2)
             ORDER BY idx FOR NO KEY UPDATE"
        };
        sqlx::query(lock)
            .bind(run)
            .bind(&idxs)
            .execute(&mut *self.tx)
            .await?;
        let update = if wide { &SAVE_WIDE } else { &SAVE_NARROW };
        sqlx::query(update.as_str())
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
            .bind(&maps[0])
            .bind(&maps[1])
            .bind(&maps[2])
            .bind(&maps[3])
            .bind(&maps[4])
            .bind(&maps[5])
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

    /// The output of a run that just succeeded: its workflow's `output`
    /// template rendered over the run's nodes, or each leaf's output by id.
    /// A template that cannot be rendered (a missing path) leaves it null,
    /// with a warning: the run has succeeded either way.
    async fn run_output(&mut self, run: Uuid, dag: &ValidatedDag) -> Result<Option<Value>> {
        let template = dag.def().output.as_ref();
        let ids: Vec<String> = match template {
            Some(t) => gantry_dag::refs(t)
                .unwrap_or_default()
                .iter()
                .filter_map(|(_, r)| r.node().map(str::to_owned))
                .collect(),
            None => dag.leaves().map(|i| dag.node(i).id.clone()).collect(),
        };
        let (input,): (Value,) = sqlx::query_as("SELECT input FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&mut *self.tx)
            .await?;
        let idxs: Vec<i32> = ids
            .iter()
            .filter_map(|id| dag.idx(id))
            .map(crate::rows::i32_of)
            .collect();
        let rows: Vec<(String, String, Value, Option<String>)> = sqlx::query_as(
            "SELECT node_id, status, COALESCE(output, 'null'::jsonb), error FROM nodes
             WHERE run_id = $1 AND idx = ANY($2)",
        )
        .bind(run)
        .bind(&idxs)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut views = HashMap::new();
        for (id, status, output, error) in rows {
            let status = crate::rows::node_status(&status)?;
            views.insert(
                id,
                NodeView {
                    status,
                    output,
                    error,
                },
            );
        }
        let Some(template) = template else {
            let leaves = views
                .into_iter()
                .map(|(id, v)| {
                    let output = if v.status == NodeStatus::Succeeded {
                        v.output
                    } else {
                        Value::Null
                    };
                    (id, output)
                })
                .collect();
            return Ok(Some(Value::Object(leaves)));
        };
        let run_id = run.to_string();
        let nodes = |n: &str| views.get(n).cloned();
        let scope = Scope {
            run_id: &run_id,
            input: &input,
            nodes: &nodes,
            item: None,
        };
        match gantry_dag::render_in(template, &scope) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(%run, error = %e, "run output template cannot be rendered; output left null");
                Ok(None)
            }
        }
    }
}
