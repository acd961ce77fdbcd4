//! Child runs (SPEC 2.1). Delivering a queued `workflow` node (or one of
//! its instances) is a transaction under its parent's lock that claims the
//! slot and, in the same commit, creates the child run (or retries the
//! child a failed slot left, or reports again a child that already ended).
//! A slot that cannot start its child (nesting too deep, an input the
//! child refuses, a template path missing) fails with the reason. The
//! child's own end reports to the slot like an attempt result (the store's
//! `report_to_parent`); cancelling a parent cancels its running children
//! after commit, and the reconciler finishes a cascade a crash cut short.

use crate::after::Applied;
use crate::{Engine, Error, Result};
use gantry_dag::limits::MAX_DEPTH;
use gantry_dag::{
    NodeIdx, NodeKind, NodeView, Outcome, RunStatus, Scope, Slot, TemplateRef, ValidatedDag,
};
use gantry_store::{AttemptResult, ChildSlot, Dispatch, NewRun, ParentRef, RunHead, RunTx};
use serde_json::Value;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// `workflow` slots to start, by parent run (id, workflow id, plan hash).
pub(crate) type Slots = BTreeMap<(Uuid, i64, String), Vec<NodeIdx>>;

/// What a parent's transaction read once for all the slots it starts.
struct ParentScope<'a> {
    head: &'a RunHead,
    dag: &'a ValidatedDag,
    input: Value,
    depth: u32,
    views: HashMap<(Uuid, NodeIdx), NodeView>,
    /// Each child workflow the slots name, read before the parent's lock.
    children: HashMap<(String, Option<u32>), Result<ChildPlan, String>>,
}

/// A child workflow ready to start: its version, validated DAG and plan.
struct ChildPlan {
    workflow: gantry_store::WorkflowRecord,
    dag: Arc<ValidatedDag>,
    plan: Arc<gantry_dag::Plan>,
}

impl Engine {
    /// Split `dispatches` into agent jobs (for Redis) and the slots of
    /// `workflow` nodes, by run (for [`Engine::start_children_of`]).
    pub(crate) async fn split_children(&self, dispatches: Vec<Dispatch>) -> (Vec<Dispatch>, Slots) {
        let mut dags: HashMap<i64, Option<Arc<ValidatedDag>>> = HashMap::new();
        let mut jobs = Vec::with_capacity(dispatches.len());
        let mut children = Slots::new();
        for d in dispatches {
            if let Entry::Vacant(e) = dags.entry(d.workflow_id) {
                e.insert(self.cache.dag(&self.store, d.workflow_id).await.ok());
            }
            let is_child = dags
                .get(&d.workflow_id)
                .and_then(Option::as_ref)
                .is_some_and(|dag| dag.node(d.node).workflow.is_some());
            if is_child {
                children
                    .entry((d.run_id, d.workflow_id, d.plan_hash))
                    .or_default()
                    .push(d.node);
            } else {
                jobs.push(d);
            }
        }
        (jobs, children)
    }

    /// Start the child runs of these slots, a transaction per parent run. A
    /// failure is logged: the slot stays queued and the reconciler delivers
    /// it again.
    pub(crate) async fn start_children_of(&self, children: Slots) {
        for ((run, workflow_id, plan_hash), slots) in children {
            // Boxed: a child's own workflow nodes come back here.
            let start = self.start_children(run, (workflow_id, &plan_hash), &slots);
            if let Err(e) = Box::pin(start).await {
                tracing::warn!(%run, error = %e, "cannot start child runs; the reconciler will retry");
            }
        }
    }

    /// One transaction for `slots` of `run`: claim them, start (or resume)
    /// their children, and apply whatever finished at once.
    async fn start_children(
        &self,
        run: Uuid,
        (workflow_id, plan_hash): (i64, &str),
        slots: &[NodeIdx],
    ) -> Result<()> {
        // Everything read from the pool is read before the parent's lock is
        // taken: a transaction that waited for a pooled connection while
        // holding the lock stalled the workers whose claims of the same run
        // held the other connections (a stall the chaos suite found).
        let dag = self.cache.dag(&self.store, workflow_id).await?;
        // Cached for advance_heads below.
        self.cache.plan(&self.store, plan_hash).await?;
        let mut plans = HashMap::new();
        for &slot in slots {
            if let NodeKind::Workflow { name, version } = dag.node(slot).kind() {
                if let Entry::Vacant(e) = plans.entry((name.to_owned(), version)) {
                    e.insert(self.child_plan(name, version).await?);
                }
            }
        }
        let mut tx = self.store.begin().await?;
        // Never wait long for the parent: the slot stays queued and is
        // delivered again.
        tx.set_lock_timeout(std::time::Duration::from_secs(5))
            .await?;
        let Some(head) = tx.lock_run(run).await? else {
            return Ok(());
        };
        if head.status != RunStatus::Running {
            return Ok(());
        }
        let claimed = tx.claim_child_slots(run, slots).await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let (input, depth) = tx.input_and_depth(run).await?;
        let mut wanted: Vec<(Uuid, NodeIdx)> = claimed
            .iter()
            .flat_map(|c| dag.refs(c.slot).iter().filter_map(TemplateRef::node))
            .filter_map(|n| dag.idx(n))
            .map(|i| (run, i))
            .collect();
        wanted.sort();
        wanted.dedup();
        let views = tx.node_views(&wanted).await?;
        let scope = ParentScope {
            head: &head,
            dag: &dag,
            input,
            depth,
            views,
            children: plans,
        };
        let mut out = Applied::default();
        let mut failed = Vec::new();
        for c in &claimed {
            if let Err(why) = self.start_child(&mut tx, &scope, c, &mut out).await? {
                failed.push(AttemptResult {
                    run_id: run,
                    node: c.slot,
                    attempt: c.attempt,
                    outcome: Outcome::Failed { retryable: false },
                    output: None,
                    error: Some(why),
                    exit_code: None,
                    log_tail: None,
                });
            }
        }
        if !failed.is_empty() {
            tx.record_results(&failed).await?;
        }
        // Slots that failed, and children that ended at once (every node
        // skipped, an empty map), are results of this run: apply them now.
        let applied =
            crate::apply::advance_heads(self, &mut tx, std::slice::from_ref(&head)).await?;
        tx.commit().await?;
        out.deliver(self).await;
        applied.deliver(self).await;
        Ok(())
    }

    /// Start the child of one claimed slot. `Ok(Err(why))` fails the slot.
    async fn start_child(
        &self,
        tx: &mut RunTx<'_>,
        p: &ParentScope<'_>,
        c: &ChildSlot,
        out: &mut Applied,
    ) -> Result<Result<(), String>> {
        let node = p.dag.node(c.slot);
        let NodeKind::Workflow { name, version } = node.kind() else {
            return Ok(Err(format!("node {:?} is not a workflow node", node.id)));
        };
        if let Some(child) = tx.child_of(p.head.id, c.slot).await? {
            return self.resume_child(tx, p.head.id, c.slot, child, out).await;
        }
        if p.depth >= MAX_DEPTH {
            return Ok(Err(format!(
                "child workflow {name:?} not started: child runs nest at most {MAX_DEPTH} deep"
            )));
        }
        let input = match render_input(p, c) {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        let child = match p.children.get(&(name.to_owned(), version)) {
            Some(Ok(child)) => child,
            Some(Err(why)) => return Ok(Err(why.clone())),
            None => return Ok(Err(format!("child workflow {name:?} was not prepared"))),
        };
        let problems = child.dag.input_problems(&input);
        if !problems.is_empty() {
            return Ok(Err(format!(
                "the input of child workflow {name:?} violates its input_schema: {}",
                messages(&problems)
            )));
        }
        let new = NewRun {
            workflow: &child.workflow,
            dag: &child.dag,
            plan: &child.plan,
            input: &input,
            idempotency: None,
            traceparent: None,
            // The child takes its parent's (insert_run).
            tags: &gantry_dag::Tags::new(),
        };
        let parent = ParentRef {
            run: p.head.id,
            slot: c.slot,
            depth: p.depth + 1,
        };
        let (child, dispatches) = tx.create_child(&new, parent).await?;
        out.observed
            .note_ended_at_start(&child.workflow, child.status);
        out.dispatches.extend(dispatches);
        Ok(Ok(()))
    }

    /// The version of child workflow `name` a slot starts now (`version`,
    /// else the latest), with its DAG and plan; `Err(why)` fails the slot.
    async fn child_plan(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Result<ChildPlan, String>> {
        let pinned = version.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        let Some(workflow) = self.store.get_workflow(name, pinned).await? else {
            let which = version.map_or("any version".to_owned(), |v| format!("version {v}"));
            return Ok(Err(format!("child workflow {name:?} has no {which}")));
        };
        let dag = self.cache.dag(&self.store, workflow.id).await?;
        let plan = match self.resolve_plan(&dag).await? {
            Ok(plan) => Arc::new(plan),
            Err(problems) => {
                return Ok(Err(format!(
                    "child workflow {name:?} cannot start: {}",
                    messages(&problems)
                )))
            }
        };
        // The child's workers and coordinator read the plan next.
        self.cache
            .insert_plan(gantry_store::Store::plan_key(&plan), plan.clone());
        Ok(Ok(ChildPlan {
            workflow,
            dag,
            plan,
        }))
    }

    /// A slot started again (its parent retried, or a delivery repeated)
    /// whose child exists: a running child reports when it ends, a failed
    /// or cancelled one is retried (only its failed nodes run again), and
    /// one that succeeded reports its output to this attempt at once.
    async fn resume_child(
        &self,
        tx: &mut RunTx<'_>,
        parent: Uuid,
        slot: NodeIdx,
        child: gantry_store::ChildRun,
        out: &mut Applied,
    ) -> Result<Result<(), String>> {
        let at = (parent, i32::try_from(slot).unwrap_or(i32::MAX));
        match child.status {
            RunStatus::Running => {}
            RunStatus::Succeeded => {
                tx.report_to_parent(child.id, at, child.status, child.output)
                    .await?;
            }
            RunStatus::Failed | RunStatus::Cancelled => {
                let Some(head) = tx.lock_run(child.id).await? else {
                    return Ok(Err(format!("child run {} is gone", child.id)));
                };
                self.apply_locked(tx, &head, gantry_dag::Event::Retry, out)
                    .await?;
            }
        }
        Ok(Ok(()))
    }

    /// Cancel the running child runs of `run` (which was just cancelled),
    /// and so on down: each under its own lock, after its parent's commit.
    pub(crate) async fn cancel_children(&self, run: Uuid) {
        let children = match self.store.running_children(run).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%run, error = %e, "cannot list child runs to cancel; the reconciler will");
                return;
            }
        };
        for child in children {
            // Boxed: cancelling a child cancels its own children.
            match Box::pin(self.cancel(child)).await {
                Ok(_) | Err(Error::Conflict(_)) | Err(Error::RunNotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(%run, %child, error = %e, "cannot cancel a child run; the reconciler will")
                }
            }
        }
    }
}

/// The slot's input, rendered over its parent run. Not async: the scope's
/// closure is not `Send`.
fn render_input(p: &ParentScope<'_>, c: &ChildSlot) -> Result<Value, String> {
    let run_id = p.head.id.to_string();
    let nodes = |n: &str| {
        p.dag
            .idx(n)
            .and_then(|i| p.views.get(&(p.head.id, i)))
            .cloned()
    };
    let scope = Scope {
        run_id: &run_id,
        input: &p.input,
        nodes: &nodes,
        item: Slot::of(c.slot)
            .item()
            .map(|i| (c.item.as_ref().unwrap_or(&Value::Null), i)),
    };
    gantry_dag::render_in(&p.dag.node(c.slot).input, &scope).map_err(|e| e.to_string())
}

fn messages(problems: &[gantry_dag::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}
