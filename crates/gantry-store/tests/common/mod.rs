//! Fixtures shared by the store's integration tests: agents, workflows, a
//! worker that claims and finishes jobs, and one coordinator step driven by
//! the pure `gantry_dag::advance`.
#![allow(dead_code)]

use gantry_dag::{
    advance, AgentDef, Event, NodeIdx, Outcome, Plan, RunState, Transition, ValidatedDag,
    WorkflowDef, DEFAULT_MAX_NODES,
};
use gantry_store::{
    AttemptResult, ClaimJob, Claimed, Created, Dispatch, NewRun, RunSummary, Store, WorkflowRecord,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const LEASE: Duration = Duration::from_secs(30);

/// A builtin `noop` agent on queue `default`.
pub(crate) fn agent(name: &str) -> AgentDef {
    serde_json::from_value(json!({"name": name, "runtime": "builtin", "builtin": "noop"}))
        .expect("agent json")
}

/// A workflow version with its validated DAG and resolved plan.
pub(crate) struct Fixture {
    pub(crate) store: Store,
    pub(crate) wf: WorkflowRecord,
    pub(crate) dag: ValidatedDag,
    pub(crate) plan: Plan,
}

/// Register the `noop` agent and the workflow `def`, validate and resolve it.
pub(crate) async fn fixture(store: &Store, def: Value) -> Fixture {
    store.upsert_agent(&agent("noop")).await.unwrap();
    let def: WorkflowDef = serde_json::from_value(def).unwrap();
    let wf = store.register_workflow(&def).await.unwrap();
    let agents = store.agents_by_name(&["noop".to_owned()]).await.unwrap();
    let dag = ValidatedDag::new(
        wf.definition.clone(),
        &|a| agents.contains_key(a),
        DEFAULT_MAX_NODES,
    )
    .unwrap();
    let plan = Plan::resolve(&dag, &|a| agents.get(a).cloned()).unwrap();
    Fixture {
        store: store.clone(),
        wf,
        dag,
        plan,
    }
}

/// `n` nodes: `a` and `b` are roots, `c` depends on both.
pub(crate) fn join_def(name: &str) -> Value {
    json!({"name": name, "nodes": [
        {"id": "a", "agent": "noop"},
        {"id": "b", "agent": "noop"},
        {"id": "c", "agent": "noop", "depends_on": ["a", "b"]}
    ]})
}

impl Fixture {
    /// Start a run without an idempotency key.
    pub(crate) async fn start(&self, input: Value) -> (RunSummary, Vec<Dispatch>) {
        match self
            .store
            .create_run(NewRun {
                workflow: &self.wf,
                dag: &self.dag,
                plan: &self.plan,
                input: &input,
                idempotency: None,
                traceparent: None,
                tags: &gantry_dag::Tags::new(),
            })
            .await
            .unwrap()
        {
            Created::New(run, jobs) => (run, jobs),
            other => panic!("expected a new run, got {other:?}"),
        }
    }

    pub(crate) fn idx(&self, id: &str) -> NodeIdx {
        self.dag.idx(id).unwrap()
    }

    /// One coordinator step: lock runs with pending results, apply them with
    /// `advance`, save, commit. Returns how many runs were locked and the
    /// dispatches to deliver.
    pub(crate) async fn coordinate(&self) -> gantry_store::Result<(usize, Vec<Dispatch>)> {
        let mut tx = self.store.begin().await?;
        let heads = tx.lock_pending_runs(16).await?;
        let mut out = Vec::new();
        for head in &heads {
            let results = tx.pending_results(head.id).await?;
            let events: Vec<Event> = results
                .iter()
                .map(gantry_store::PendingResult::event)
                .collect();
            let mut view = Some(BTreeSet::new());
            for e in &events {
                match (RunState::view(&self.dag, e), view.as_mut()) {
                    (Some(v), Some(all)) => all.extend(v),
                    _ => view = None,
                }
            }
            let view: Option<Vec<NodeIdx>> = view.map(|v| v.into_iter().collect());
            let mut state = tx.load_state(head, view.as_deref()).await?;
            let mut t = Transition::default();
            for e in events {
                t.absorb(advance(&self.dag, &self.plan, &mut state, e, 0.5));
            }
            let processed: Vec<NodeIdx> = results.iter().map(|r| r.node).collect();
            out.extend(
                tx.save((head, &self.dag, &self.plan), &state, &t, &processed)
                    .await?,
            );
        }
        tx.commit().await?;
        Ok((heads.len(), out))
    }

    /// Apply one event to one run under `lock_run` (what the API does).
    pub(crate) async fn apply(&self, run: Uuid, event: Event) -> Vec<Dispatch> {
        let mut tx = self.store.begin().await.unwrap();
        let head = tx.lock_run(run).await.unwrap().unwrap();
        let view = RunState::view(&self.dag, &event);
        let mut state = tx.load_state(&head, view.as_deref()).await.unwrap();
        let t = advance(&self.dag, &self.plan, &mut state, event, 0.5);
        let out = tx
            .save((&head, &self.dag, &self.plan), &state, &t, &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        out
    }
}

/// Claim the dispatched jobs as `worker`.
pub(crate) async fn claim(store: &Store, worker: &str, jobs: &[Dispatch]) -> Vec<Claimed> {
    let jobs: Vec<ClaimJob> = jobs.iter().map(ClaimJob::from).collect();
    store.claim(worker, &jobs, LEASE).await.unwrap()
}

/// The result of a claimed attempt.
pub(crate) fn result(c: &Claimed, outcome: Outcome, output: Option<Value>) -> AttemptResult {
    AttemptResult {
        run_id: c.run_id,
        node: c.node,
        attempt: c.attempt,
        outcome,
        output,
        error: match outcome {
            Outcome::Succeeded => None,
            Outcome::Failed { .. } | Outcome::Lost | Outcome::TimedOut => {
                Some(format!("node {} broke", c.node))
            }
        },
        exit_code: Some(match outcome {
            Outcome::Succeeded => 0,
            Outcome::Failed { retryable: true } | Outcome::Lost => 1,
            Outcome::Failed { retryable: false } | Outcome::TimedOut => 78,
        }),
        log_tail: Some("log line".to_owned()),
    }
}

/// `(status, attempt, waiting_on, pending_advance)` of one node.
pub(crate) async fn node_row(store: &Store, run: Uuid, idx: NodeIdx) -> (String, i32, i32, bool) {
    sqlx::query_as(
        "SELECT status, attempt, waiting_on, pending_advance FROM nodes
         WHERE run_id = $1 AND idx = $2",
    )
    .bind(run)
    .bind(idx as i32)
    .fetch_one(store.pool())
    .await
    .unwrap()
}
