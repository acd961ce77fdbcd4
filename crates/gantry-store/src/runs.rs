//! Creating runs.

use crate::register::{insert_plan, plan_hash};
use crate::rows::{i32_of, RunSummaryRow, RUN_SUMMARY_COLS};
use crate::{Created, Dispatch, NewRun, ParentRef, Result, RunHead, RunSummary, RunTx, Store};
use gantry_dag::{advance, Event, Facts, RunState};
use uuid::Uuid;

impl Store {
    /// Create a run and its nodes in one transaction: every node `pending`
    /// with `waiting_on` = number of parents ([`RunState::new`]), then
    /// [`Event::Begin`] decides the roots (queued, parked, skipped by a
    /// `when`, expanded into instances) and is saved like any event. With an
    /// idempotency key already used: `Existing` when the stored request hash
    /// matches, else `Conflict`, and nothing is written. Notifies
    /// [`crate::RUN_CHANNEL`]. The returned dispatches must be delivered by the
    /// caller after this returns (the reconciler re-delivers them if the
    /// caller dies first).
    pub async fn create_run(&self, new: NewRun<'_>) -> Result<Created> {
        let mut tx = RunTx::new(self.pool.begin().await?);
        let (key, request_hash) = new.idempotency.unzip();
        let Some((summary, dispatches)) = tx.insert_run(&new, None, None).await? else {
            // The key was used before (the conflicting insert has committed:
            // ON CONFLICT waited for it, and this statement sees it).
            tx.tx.rollback().await?;
            let existing: Option<ExistingRow> = sqlx::query_as(&format!(
                "SELECT request_hash, {RUN_SUMMARY_COLS} FROM runs WHERE idempotency_key = $1"
            ))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
            return match existing {
                Some(e) if e.request_hash.as_deref() == request_hash => {
                    Ok(Created::Existing(e.run.into_summary()?))
                }
                _ => Ok(Created::Conflict),
            };
        };
        tx.commit().await?;
        Ok(Created::New(summary, dispatches))
    }
}

impl RunTx<'_> {
    /// Create a child run of `parent` in this transaction (which holds the
    /// parent's lock), as [`Store::create_run`] does (no idempotency key:
    /// one child per parent slot is the unique index of migration 0010).
    /// Its dispatches are delivered after commit.
    pub async fn create_child(
        &mut self,
        new: &NewRun<'_>,
        parent: ParentRef,
    ) -> Result<(RunSummary, Vec<Dispatch>)> {
        self.insert_run(new, Some(parent), None)
            .await?
            .ok_or_else(|| crate::Error::Corrupt {
                what: "child run",
                reason: "a child run insert with no idempotency key conflicted".to_owned(),
            })
    }

    /// Insert the run row, its nodes (every one pending) and the effect of
    /// [`Event::Begin`]; or, for a re-run, its nodes as `rerun` has them
    /// (reused ones succeeded with their old output) and the effect of
    /// [`Event::Retry`]. `None` when the idempotency key is taken.
    pub(crate) async fn insert_run(
        &mut self,
        new: &NewRun<'_>,
        parent: Option<ParentRef>,
        rerun: Option<&crate::rerun::Rerun>,
    ) -> Result<Option<(RunSummary, Vec<Dispatch>)>> {
        let mut state = match rerun {
            Some(r) => r.state.clone(),
            None => RunState::new(new.dag),
        };
        let canonical = new.plan.canonical_json();
        let hash = plan_hash(&canonical);
        let id = Uuid::now_v7();
        let (key, request_hash) = new.idempotency.unzip();
        insert_plan(&mut *self.tx, &hash, &canonical).await?;
        let inserted: Option<RunSummaryRow> = sqlx::query_as(&format!(
            "INSERT INTO runs (id, workflow_id, workflow_name, workflow_version, plan_hash,
                               input, status, remaining, failed, idempotency_key,
                               request_hash, traceparent, finished_at,
                               parent_run_id, parent_idx, depth, tags, rerun_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                     CASE WHEN $7::text <> 'running' THEN clock_timestamp() END,
                     $13, $14, $15,
                     COALESCE((SELECT p.tags FROM runs p WHERE p.id = $13), $16), $17)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING {RUN_SUMMARY_COLS}"
        ))
        .bind(id)
        .bind(new.workflow.id)
        .bind(&new.workflow.name)
        .bind(new.workflow.version)
        .bind(&hash)
        .bind(new.input)
        // A re-run's state reads failed until Retry applies; it is running.
        .bind(gantry_dag::RunStatus::Running.as_str())
        .bind(i32_of(state.remaining))
        .bind(i32_of(state.failed))
        .bind(key)
        .bind(request_hash)
        .bind(new.traceparent)
        .bind(parent.map(|p| p.run))
        .bind(parent.map(|p| i32_of(p.slot)))
        .bind(i32_of(parent.map_or(0, |p| p.depth)))
        .bind(sqlx::types::Json(new.tags))
        .bind(rerun.map(|r| r.of))
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = inserted else {
            return Ok(None);
        };
        if !row.tags.0.is_empty() {
            sqlx::query(
                "INSERT INTO run_tags (run_id, key, value, created_at)
                 SELECT $1, t.key, t.value, $2 FROM jsonb_each_text($3) AS t",
            )
            .bind(id)
            .bind(row.created_at)
            .bind(sqlx::types::Json(&row.tags.0))
            .execute(&mut *self.tx)
            .await?;
        }

        let n = state.nodes.len();
        let mut idxs = Vec::with_capacity(n);
        let mut node_ids = Vec::with_capacity(n);
        let mut agents = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut tries = Vec::with_capacity(n);
        let mut waiting = Vec::with_capacity(n);
        let mut outputs: Vec<Option<&serde_json::Value>> = Vec::with_capacity(n);
        let mut reused = Vec::with_capacity(n);
        for (&i, s) in &state.nodes {
            let plan = new.plan.node(i);
            let def = new.dag.node(i);
            idxs.push(i32_of(i));
            node_ids.push(def.id.as_str());
            // A workflow node's `agent` column names its child workflow.
            agents.push(def.workflow.as_deref().unwrap_or(plan.agent.as_str()));
            queues.push(plan.queue.as_str());
            statuses.push(s.status.as_str());
            attempts.push(i32_of(s.attempt));
            tries.push(i32_of(s.tries));
            waiting.push(i32_of(s.waiting_on));
            let kept = rerun.and_then(|r| r.outputs.get(&i));
            outputs.push(kept);
            reused.push(kept.is_some());
        }
        sqlx::query(
            "INSERT INTO nodes (run_id, idx, node_id, agent, queue, status, attempt, tries,
                                waiting_on, queued_at, output, reused, finished_at)
             SELECT $1, t.idx, t.node_id, t.agent, t.queue, t.status, t.attempt, t.tries,
                    t.waiting_on,
                    CASE WHEN t.status IN ('queued', 'waiting_approval') THEN clock_timestamp() END,
                    t.output, t.reused, CASE WHEN t.reused THEN clock_timestamp() END
             FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::int[], $8::int[], $9::int[], $10::jsonb[], $11::bool[])
                  AS t(idx, node_id, agent, queue, status, attempt, tries, waiting_on,
                       output, reused)",
        )
        .bind(id)
        .bind(&idxs)
        .bind(&node_ids)
        .bind(&agents)
        .bind(&queues)
        .bind(&statuses)
        .bind(&attempts)
        .bind(&tries)
        .bind(&waiting)
        .bind(&outputs)
        .bind(&reused)
        .execute(&mut *self.tx)
        .await?;
        let head = RunHead {
            id,
            workflow_id: new.workflow.id,
            plan_hash: hash,
            status: state.status,
            remaining: state.remaining,
            failed: state.failed,
            created_at: row.created_at,
        };
        if new.dag.needs_facts() {
            state.facts = Facts::of_new_run(new.dag, id.to_string(), new.input.clone());
            if let Some(r) = rerun {
                r.fill_facts(&mut state.facts);
            }
        }
        let event = if rerun.is_some() {
            Event::Retry
        } else {
            Event::Begin
        };
        // Neither decides a backoff, so its jitter is never read.
        let t = advance(new.dag, new.plan, &mut state, event, 0.5);
        // save notifies RUN_CHANNEL.
        let dispatches = self
            .save((&head, new.dag, new.plan), &state, &t, &[])
            .await?;
        let mut summary = row.into_summary()?;
        summary.status = state.status;
        Ok(Some((summary, dispatches)))
    }
}

#[derive(sqlx::FromRow)]
struct ExistingRow {
    request_hash: Option<String>,
    #[sqlx(flatten)]
    run: RunSummaryRow,
}
