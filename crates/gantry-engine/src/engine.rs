//! Every state change of a run goes through [`Engine`]: lock the run, load
//! the state, apply the pure `advance`, save, commit, then deliver.

use crate::after::Applied;
use crate::cache::Cache;
use crate::{Error, Result, WriteHealth};
use gantry_dag::{advance, Action, Event, NodeIdx, Plan, RunStatus, Tags};
use gantry_queue::{Job, Queue};
use gantry_store::{
    AttemptResult, Created, Dispatch, NewRun, RunHead, RunSummary, RunTx, Store, WorkflowRecord,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Shared by the api, the coordinator and the workers. Its store and queue
/// are private: every write goes through an engine call, and the roles read
/// through [`Engine::reads`] and the queue inspection calls.
#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) queue: Queue,
    pub(crate) cache: Cache,
    /// Whether this process's writes keep failing (its `/readyz`).
    pub health: WriteHealth,
    /// Most jobs waiting (ready and delayed) in a queue before new runs
    /// that use it are refused; `None` is no limit.
    max_queue_depth: Option<u64>,
}

/// Result of [`Engine::start_run`].
#[derive(Debug, Clone)]
pub enum Started {
    New(RunSummary),
    /// Same idempotency key, same request.
    Existing(RunSummary),
    /// Same idempotency key, another request.
    Conflict,
}

impl Engine {
    pub fn new(store: Store, queue: Queue) -> Self {
        Self {
            store,
            queue,
            cache: Cache::default(),
            health: WriteHealth::default(),
            max_queue_depth: None,
        }
    }

    /// Refuse new runs while a queue they use holds `depth` waiting jobs.
    pub fn with_max_queue_depth(mut self, depth: Option<u64>) -> Self {
        self.max_queue_depth = depth;
        self
    }

    /// Backpressure: `QueueFull` when any of the plan's queues is at its
    /// limit. Already-accepted work is never dropped; only new runs wait.
    async fn check_depth(&self, plan: &Plan) -> Result<()> {
        let Some(limit) = self.max_queue_depth else {
            return Ok(());
        };
        let mut queues: Vec<&str> = plan
            .nodes
            .iter()
            .map(|n| n.queue.as_str())
            .filter(|q| !q.is_empty())
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            let s = self.queue.stats(queue).await?;
            let depth = s.ready + s.delayed;
            if depth >= limit {
                return Err(Error::QueueFull {
                    queue: queue.to_owned(),
                    depth,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// The plan of a new run of `dag`: its agents as registered now, or
    /// the problems (an agent deleted since registration).
    pub(crate) async fn resolve_plan(
        &self,
        dag: &gantry_dag::ValidatedDag,
    ) -> Result<Result<Plan, Vec<gantry_dag::Problem>>> {
        let mut names: Vec<String> = dag
            .def()
            .nodes
            .iter()
            .filter(|n| !n.agent.is_empty())
            .map(|n| n.agent.clone())
            .collect();
        names.sort();
        names.dedup();
        let agents = self.store.agents_by_name(&names).await?;
        Ok(Plan::resolve(dag, &|n| agents.get(n).cloned()))
    }

    /// Start a run of `workflow` with `input`. `idempotency` is the
    /// `Idempotency-Key` header with the hash of the request body.
    pub async fn start_run(
        &self,
        workflow: &WorkflowRecord,
        input: &Value,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Started> {
        self.start_tagged_run(workflow, input, idempotency, &Tags::new())
            .await
    }

    /// [`Engine::start_run`] with `tags` (checked by the caller with
    /// [`gantry_dag::parse_tags`]).
    pub async fn start_tagged_run(
        &self,
        workflow: &WorkflowRecord,
        input: &Value,
        idempotency: Option<(&str, &str)>,
        tags: &Tags,
    ) -> Result<Started> {
        let dag = self.cache.dag(&self.store, workflow.id).await?;
        let problems = dag.input_problems(input);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let plan = self.resolve_plan(&dag).await?.map_err(Error::Invalid)?;
        self.check_depth(&plan).await?;
        // The root of the run's trace; every job of the run carries its
        // context. It ends here: later spans hang off it across processes.
        let span = tracing::info_span!(parent: None, "workflow.run",
            workflow.name = %workflow.name, run.id = tracing::field::Empty);
        let traceparent = gantry_telemetry::traceparent(&span);
        // create_run stores the plan in the run's transaction.
        let created = self
            .store
            .create_run(NewRun {
                workflow,
                dag: &dag,
                plan: &plan,
                input,
                idempotency,
                traceparent: traceparent.as_deref(),
                tags,
            })
            .await?;
        Ok(match created {
            Created::New(run, dispatches) => {
                span.record("run.id", tracing::field::display(run.id));
                // Workers and coordinators in this process need the plan
                // next; a 5,000-node plan costs tens of ms to read back.
                self.cache
                    .insert_plan(Store::plan_key(&plan), Arc::new(plan));
                let mut after = Applied {
                    dispatches,
                    ..Applied::default()
                };
                after
                    .observed
                    .note_ended_at_start(&workflow.name, run.status);
                after.deliver(self).await;
                Started::New(run)
            }
            Created::Existing(run) => Started::Existing(run),
            Created::Conflict => Started::Conflict,
        })
    }

    /// Apply one event to one run under its lock. Returns the run's status
    /// after it. `RunNotFound`/`NodeNotFound`/`Conflict` for bad requests.
    pub async fn apply(&self, run: Uuid, event: Event) -> Result<RunStatus> {
        let mut tx = self.store.begin().await?;
        let head = tx.lock_run(run).await?.ok_or(Error::RunNotFound(run))?;
        match event {
            Event::Cancel if head.status.is_terminal() => {
                return Err(Error::Conflict(format!("run already {}", head.status)));
            }
            Event::Retry if matches!(head.status, RunStatus::Running | RunStatus::Succeeded) => {
                return Err(Error::Conflict(format!(
                    "run is {}; only failed or cancelled runs can be retried",
                    head.status
                )));
            }
            _ => {}
        }
        let mut out = Applied::default();
        let status = self.apply_locked(&mut tx, &head, event, &mut out).await?;
        tx.commit().await?;
        out.deliver(self).await;
        Ok(status)
    }

    /// [`Engine::apply`] to a run already locked in `tx`; what is left to do
    /// after commit goes into `out`.
    pub(crate) async fn apply_locked(
        &self,
        tx: &mut RunTx<'_>,
        head: &RunHead,
        event: Event,
        out: &mut Applied,
    ) -> Result<RunStatus> {
        let dag = self.cache.dag(&self.store, head.workflow_id).await?;
        let plan = self.cache.plan(&self.store, &head.plan_hash).await?;
        let mut state = crate::load::state_for(tx, &dag, &plan, head, &[event]).await?;
        let t = advance(&dag, &plan, &mut state, event, rand::random());
        if t.changed.is_empty() {
            if let Event::Approved { node } | Event::Rejected { node } = event {
                let what = match gantry_dag::Slot::of(node) {
                    gantry_dag::Slot::Node(n) => format!("node {:?}", dag.node(n).id),
                    gantry_dag::Slot::Instance { node, item } => {
                        format!("instance {item} of node {:?}", dag.node(node).id)
                    }
                };
                return Err(Error::Conflict(format!(
                    "{what} is not waiting for approval"
                )));
            }
        }
        let dispatches = tx.save((head, &dag, &plan), &state, &t, &[]).await?;
        out.observed.note(head, &dag, &plan, &t.actions);
        out.dispatches.extend(dispatches);
        if t.actions.iter().any(|a| matches!(a, Action::Stop { .. })) {
            out.stops.push(head.id);
        }
        Ok(state.status)
    }

    /// Record attempt results (fenced by attempt) and, in the same
    /// transaction, apply them to every run whose lock is free; runs another
    /// transaction holds are left flagged for the coordinator, which is
    /// notified. This saves a notification, a transaction and a commit per
    /// hop (see docs/decisions/0002-workers-apply-their-own-results.md).
    /// Returns, per result, whether it was accepted.
    pub async fn record_results(&self, results: &[AttemptResult]) -> Result<Vec<bool>> {
        let mut runs: Vec<Uuid> = results.iter().map(|r| r.run_id).collect();
        runs.sort_unstable();
        runs.dedup();
        let mut tx = self.store.begin().await?;
        let heads = tx.try_lock_runs(&runs).await?;
        let held: Vec<Uuid> = heads.iter().map(|h| h.id).collect();
        let accepted = tx.record_results_held(results, &held).await?;
        let mine: Vec<(Uuid, gantry_store::PendingResult)> = results
            .iter()
            .zip(&accepted)
            .filter(|(r, ok)| **ok && held.contains(&r.run_id))
            .map(|(r, _)| (r.run_id, gantry_store::PendingResult::of(r)))
            .collect();
        let applied = crate::apply::advance_heads_with(self, &mut tx, &heads, &mine).await?;
        if heads.len() < runs.len() && accepted.iter().any(|a| *a) {
            tx.notify_advance().await?;
        }
        tx.commit().await?;
        applied.deliver(self).await;
        let stale = accepted.iter().filter(|a| !**a).count();
        if stale > 0 {
            metrics::counter!(gantry_telemetry::STALE_RESULTS).increment(stale as u64);
        }
        Ok(accepted)
    }

    /// Cancel: nothing new starts; running attempts are told to stop.
    /// `Conflict` when the run already ended.
    pub async fn cancel(&self, run: Uuid) -> Result<RunStatus> {
        self.apply(run, Event::Cancel).await
    }

    /// Re-run failed, cancelled and skipped nodes. `Conflict` when the run is
    /// still running or succeeded.
    pub async fn retry(&self, run: Uuid) -> Result<RunStatus> {
        self.apply(run, Event::Retry).await
    }

    /// Approve a node in `waiting_approval` (by node id). For a `for_each`
    /// node, `index` approves that instance alone; without it, every
    /// instance that waits is approved.
    pub async fn approve(&self, run: Uuid, node_id: &str, index: Option<u32>) -> Result<RunStatus> {
        let node = self.gate_idx(run, node_id, index).await?;
        let parked_at = self.store.node_ready_at(run, node).await?;
        let status = self
            .decide_gate(run, node, crate::gates::Decision::Approve)
            .await?;
        if let Some(at) = parked_at {
            let waited = (chrono::Utc::now() - at).to_std().unwrap_or_default();
            metrics::histogram!(gantry_telemetry::APPROVAL_WAIT).record(waited.as_secs_f64());
        }
        Ok(status)
    }

    /// Reject a node in `waiting_approval`: it fails, its dependents are
    /// skipped. `index` as in [`Engine::approve`].
    pub async fn reject(&self, run: Uuid, node_id: &str, index: Option<u32>) -> Result<RunStatus> {
        let node = self.gate_idx(run, node_id, index).await?;
        self.decide_gate(run, node, crate::gates::Decision::Reject)
            .await
    }

    /// What an approval names: node `node_id` of the run, or its instance
    /// `index` (only a `for_each` node has instances).
    async fn gate_idx(&self, run: Uuid, node_id: &str, index: Option<u32>) -> Result<NodeIdx> {
        let summary = self
            .store
            .get_run(run)
            .await?
            .ok_or(Error::RunNotFound(run))?;
        let rec = self
            .store
            .get_workflow(&summary.run.workflow, Some(summary.run.version))
            .await?
            .ok_or_else(|| Error::Corrupt(format!("workflow of run {run} missing")))?;
        let dag = self.cache.dag(&self.store, rec.id).await?;
        let node = dag
            .idx(node_id)
            .ok_or_else(|| Error::NodeNotFound(node_id.to_owned()))?;
        let Some(index) = index else {
            return Ok(node);
        };
        let problem = |message: String| {
            Error::Invalid(vec![gantry_dag::Problem {
                field: "index".into(),
                code: "bad_value",
                message,
            }])
        };
        let fe = dag.for_each(node).ok_or_else(|| {
            problem(format!(
                "node {node_id:?} has no for_each: only its instances take an index"
            ))
        })?;
        if index >= fe.max_items {
            return Err(problem(format!(
                "index {index} is past node {node_id:?}'s max_items ({})",
                fe.max_items
            )));
        }
        Ok(gantry_dag::instance_slot(node, index))
    }

    /// List nodes whose every try died with its worker as dead jobs of
    /// their queues. Logged, not returned: the node's failure is committed.
    pub(crate) async fn bury_lost(&self, dead: &[(Dispatch, u32)]) {
        if dead.is_empty() {
            return;
        }
        let jobs: Vec<(Job, u64)> = dead
            .iter()
            .map(|(d, tries)| (job_of(d), u64::from(*tries)))
            .collect();
        let error = "every try ended with its lease expired: the job kills or hangs its workers";
        if let Err(e) = self.queue.bury_jobs(&jobs, error).await {
            tracing::warn!(jobs = jobs.len(), error = %e, "cannot list dead jobs");
        }
    }

    /// Replay dead job `job` of `queue`. A node's job re-runs its run's
    /// failed, cancelled and skipped nodes (a retry), which needs the run to
    /// have ended; other jobs go back on the queue as they were. `None`
    /// when there is no such dead job.
    pub async fn replay_dead(
        &self,
        queue: &str,
        job: &str,
    ) -> Result<Option<gantry_queue::JobView>> {
        let Some(view) = self.queue.dead_job(queue, job).await? else {
            return Ok(None);
        };
        match serde_json::from_str::<Dispatch>(&view.payload) {
            Ok(d) => {
                match self.retry(d.run_id).await {
                    Ok(_) | Err(Error::RunNotFound(_)) => {}
                    Err(Error::Conflict(m)) => {
                        return Err(Error::Conflict(format!(
                            "{m}; replay this job once its run has ended"
                        )))
                    }
                    Err(e) => return Err(e),
                }
                self.queue.forget_dead(queue, job).await?;
            }
            Err(_) => {
                self.queue.replay(queue, job).await?;
            }
        }
        Ok(Some(view))
    }

    /// Hand dispatches to Redis. A failure is logged, not returned: the
    /// state is committed in Postgres and the reconciler delivers what Redis
    /// missed.
    pub async fn deliver(&self, dispatches: Vec<Dispatch>) {
        if dispatches.is_empty() {
            return;
        }
        // A `workflow` node is delivered by starting its child run, after
        // the agent jobs: a child start that fails or waits for a lock
        // never holds them back.
        let (jobs, children) = self.split_children(dispatches).await;
        self.enqueue(jobs).await;
        self.start_children_of(children).await;
    }

    /// Deliver again what Postgres says should be queued but may have been
    /// lost (a crash between commit and delivery, a flushed Redis): agent
    /// jobs Redis does not hold are enqueued again, and every `workflow`
    /// slot, which never is in Redis, is started again (a slot that has
    /// started meanwhile is not claimed twice). Slots are started even when
    /// Redis cannot be asked. Returns how many agent jobs were missing.
    pub async fn redeliver(&self, candidates: Vec<Dispatch>) -> Result<usize> {
        let (jobs, children) = self.split_children(candidates).await;
        let keys: Vec<(String, String)> =
            jobs.iter().map(|d| (d.queue.clone(), d.job_id())).collect();
        let present = self.queue.present(&keys).await;
        let lost = match &present {
            Ok(present) => {
                let lost: Vec<Dispatch> = jobs
                    .into_iter()
                    .zip(present)
                    .filter(|(_, p)| !**p)
                    .map(|(mut d, _)| {
                        d.delay_ms = None;
                        d
                    })
                    .collect();
                let n = lost.len();
                if n > 0 {
                    tracing::warn!(jobs = n, "re-delivering jobs missing from redis");
                }
                self.enqueue(lost).await;
                n
            }
            Err(_) => 0,
        };
        self.start_children_of(children).await;
        present?;
        Ok(lost)
    }

    /// Hand agent jobs to Redis (see [`Engine::deliver`]).
    async fn enqueue(&self, dispatches: Vec<Dispatch>) {
        if dispatches.is_empty() {
            return;
        }
        // Each queue's lease-expiry counter exists (at 0) from its first job.
        let mut queues: Vec<&str> = dispatches.iter().map(|d| d.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        gantry_telemetry::init_lease_expiries(queues);
        let mut now = Vec::new();
        let mut later = Vec::new();
        let mut spans = Vec::new();
        for mut d in dispatches {
            if let Some(parent) = d.traceparent.take() {
                let span = self.dispatch_span(&d, &parent).await;
                d.traceparent = gantry_telemetry::traceparent(&span).or(Some(parent));
                spans.push(span);
            }
            let job = job_of(&d);
            match d.delay_ms {
                Some(ms) if ms > 0 => later.push((
                    job,
                    Duration::from_millis(gantry_dag::limits::clamp_delay_ms(ms)),
                )),
                _ => now.push(job),
            }
        }
        if !now.is_empty() {
            if let Err(e) = self.queue.enqueue(&now).await {
                tracing::warn!(jobs = now.len(), error = %e, "delivery failed; the reconciler will retry");
            }
        }
        if !later.is_empty() {
            if let Err(e) = self.queue.schedule(&later).await {
                tracing::warn!(jobs = later.len(), error = %e, "scheduling failed; the reconciler will retry");
            }
        }
        drop(spans);
    }

    /// A `node.dispatch` span, child of the run's `parent` context, that the
    /// job then carries to the worker. Only for traced runs.
    async fn dispatch_span(&self, d: &Dispatch, parent: &str) -> tracing::Span {
        let dag = self.cache.dag(&self.store, d.workflow_id).await.ok();
        let node = dag.as_ref().map(|dag| dag.node(d.node));
        let span = tracing::info_span!("node.dispatch",
            workflow.name = dag.as_ref().map(|g| g.def().name.as_str()).unwrap_or_default(),
            run.id = %d.run_id,
            node.id = node.map(|n| n.id.as_str()).unwrap_or_default(),
            agent.name = node.map(|n| n.agent.as_str()).unwrap_or_default(),
            queue = %d.queue,
            delay_ms = d.delay_ms.unwrap_or(0));
        gantry_telemetry::set_parent(&span, parent);
        span
    }
}

/// The Redis job that delivers `d`: one id per node, the dispatch as payload.
fn job_of(d: &Dispatch) -> Job {
    Job {
        id: d.job_id(),
        queue: d.queue.clone(),
        payload: serde_json::to_string(d).expect("dispatch serializes"),
    }
}
