//! Implementation of the state machine (see `advance.rs` for the contract).

use crate::*;

/// Collects changed nodes and actions while an event is applied.
pub(crate) struct Tx<'s> {
    pub(crate) state: &'s mut RunState,
    pub(crate) out: Transition,
}

impl Tx<'_> {
    pub(crate) fn get(&self, idx: NodeIdx) -> Option<NodeState> {
        let found = self.state.nodes.get(&idx).copied();
        // A needed node outside the loaded view is a caller bug: loud in
        // tests, skipped in production.
        debug_assert!(
            found.is_some(),
            "node {idx} missing from the run state view"
        );
        found
    }

    pub(crate) fn set(&mut self, idx: NodeIdx, new: NodeState) {
        if let Some(old) = self.state.nodes.get_mut(&idx) {
            if *old != new {
                *old = new;
                self.out.changed.push(idx);
            }
        }
    }

    /// A node whose trigger rule and `when` passed: park it for approval,
    /// expand it when it is a map node, else queue it. Returns whether
    /// that finished it (a map node over no items, or one whose `for_each`
    /// fails); the caller then settles it.
    pub(crate) fn make_ready(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        ns: NodeState,
    ) -> bool {
        // A map node's instances each wait for their own approval.
        if needs_approval(plan, idx) && dag.for_each(idx).is_none() {
            let mut ns = ns;
            ns.status = NodeStatus::WaitingApproval;
            self.out.actions.push(Action::Park { node: idx });
            self.set(idx, ns);
            return false;
        }
        self.begin(dag, plan, idx, ns)
    }

    /// Start a ready (or approved) node: expand a map node, queue others.
    /// Returns whether that finished it.
    pub(crate) fn begin(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        mut ns: NodeState,
    ) -> bool {
        if dag.for_each(idx).is_some() {
            return self.expand(dag, plan, idx, ns);
        }
        if let Some(spec) = dag.wait(idx) {
            return self.begin_wait(dag, idx, ns, spec);
        }
        ns.status = NodeStatus::Queued;
        self.out.actions.push(Action::Enqueue { node: idx });
        self.set(idx, ns);
        false
    }
}

pub(crate) fn needs_approval(plan: &Plan, idx: NodeIdx) -> bool {
    let found = plan.nodes.get(idx as usize);
    debug_assert!(found.is_some(), "node {idx} missing from the plan");
    found.is_some_and(|n| n.approval)
}

fn retry_policy(plan: &Plan, idx: NodeIdx) -> RetryPolicy {
    let found = plan.nodes.get(idx as usize);
    debug_assert!(found.is_some(), "node {idx} missing from the plan");
    // Clamped: a plan stored before the bounds were enforced may hold a
    // policy past them (u32::MAX attempts, u64::MAX delays).
    found.map(|n| n.retry.clamped()).unwrap_or_default()
}

fn parent_count(dag: &ValidatedDag, idx: NodeIdx) -> u32 {
    u32::try_from(dag.parents(idx).len()).unwrap_or(u32::MAX)
}

pub(crate) fn new_run(dag: &ValidatedDag) -> RunState {
    let nodes = (0..dag.len() as NodeIdx)
        .map(|i| (i, NodeState::pending(parent_count(dag, i))))
        .collect();
    RunState {
        status: RunStatus::Running,
        remaining: u32::try_from(dag.len()).unwrap_or(u32::MAX),
        failed: 0,
        nodes,
        facts: Facts::default(),
    }
}

/// Decide every root of a new run (their parents, none, have finished).
fn begin_run(tx: &mut Tx<'_>, dag: &ValidatedDag, plan: &Plan) -> bool {
    let mut any = false;
    for root in dag.roots() {
        if let Some(ns) = tx.get(root) {
            if ns.status == NodeStatus::Pending && ns.waiting_on == 0 {
                any = true;
                if tx.decide(dag, plan, root, ns) {
                    tx.settle(dag, plan, root);
                }
            }
        }
    }
    any
}

pub(crate) fn view(dag: &ValidatedDag, event: &Event) -> Option<Vec<NodeIdx>> {
    if let Some(view) = crate::map::view(dag, event) {
        return Some(view);
    }
    let (node, failed) = match *event {
        Event::Finished {
            node,
            outcome: Outcome::Succeeded,
            ..
        } => (node, false),
        Event::Finished { node, .. }
        | Event::LeaseExpired { node, .. }
        | Event::Rejected { node } => (node, true),
        Event::Approved { node } => {
            if (node as usize) >= dag.len() {
                return Some(Vec::new());
            }
            // An approved map node may finish at once (no items, or a bad
            // for_each), which decides what comes after it.
            let mut out = vec![node];
            if dag.for_each(node).is_some() {
                out.extend(dag.descendants(node));
            }
            return Some(out);
        }
        Event::Begin | Event::Cancel | Event::Retry => return None,
    };
    if node as usize >= dag.len() {
        return Some(Vec::new());
    }
    let mut out = vec![node];
    out.extend(decided_by(dag, node, failed));
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The nodes that `node` finishing (failing when `failed`) may decide.
pub(crate) fn decided_by(dag: &ValidatedDag, node: NodeIdx, failed: bool) -> Vec<NodeIdx> {
    let mut out = Vec::new();
    if failed {
        // A failure is decided for every descendant, one level at a time.
        out.extend(dag.descendants(node));
    } else {
        // A success decides the children; only a child that can be skipped
        // or failed by its decision takes the decision further down.
        for &c in dag.children(node) {
            out.push(c);
            if may_finish_when_decided(dag, c) {
                out.extend(dag.descendants(c));
            }
        }
    }
    out
}

/// Whether deciding `idx` after a parent succeeded can finish it: it has a
/// `when`, waits for a failure, has other parents that may have failed or
/// been skipped, is a map node (over no items, or a bad `for_each`), or is
/// a wait node (a key that cannot be rendered fails it).
fn may_finish_when_decided(dag: &ValidatedDag, idx: NodeIdx) -> bool {
    let rule = dag.node(idx).trigger_rule;
    dag.condition(idx).is_some()
        || dag.for_each(idx).is_some()
        || dag.wait(idx).is_some()
        || rule == TriggerRule::OneFailed
        || (rule != TriggerRule::AllDone && dag.parents(idx).len() > 1)
}

pub(crate) fn facts_view(dag: &ValidatedDag, event: &Event) -> Vec<NodeIdx> {
    if !dag.needs_facts() || *event == Event::Cancel {
        return Vec::new();
    }
    let candidates: Vec<NodeIdx> = match view(dag, event) {
        Some(v) => v.into_iter().filter(|&i| !is_instance(i)).collect(),
        None => (0..dag.len() as NodeIdx).collect(),
    };
    let mut out: Vec<NodeIdx> = Vec::new();
    for c in candidates {
        if let Some(cond) = dag.condition(c) {
            out.extend(cond.nodes().filter_map(|id| dag.idx(id)));
        }
        if let Some(source) = dag.for_each(c).and_then(|m| m.source.node()) {
            out.extend(dag.idx(source));
        }
        if let Some(wait) = dag.wait(c) {
            out.extend(wait.reads.iter().filter_map(|id| dag.idx(id)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

pub(crate) fn advance(
    dag: &ValidatedDag,
    plan: &Plan,
    state: &mut RunState,
    event: Event,
    jitter: f64,
) -> Transition {
    if state.status != RunStatus::Running && event != Event::Retry {
        return Transition::default();
    }
    let mut tx = Tx {
        state,
        out: Transition::default(),
    };
    if let Some(applied) = crate::map::advance(&mut tx, dag, plan, event, jitter) {
        return finish(tx, applied);
    }
    let applied = match event {
        Event::Begin => begin_run(&mut tx, dag, plan),
        Event::Finished {
            node,
            attempt,
            outcome,
        } => finished(&mut tx, dag, plan, node, attempt, outcome, jitter),
        Event::LeaseExpired { node, attempt } => {
            finished(&mut tx, dag, plan, node, attempt, Outcome::Lost, jitter)
        }
        Event::Approved { node } => match waiting_approval(&tx, dag, node) {
            Some(ns) => {
                if tx.begin(dag, plan, node, ns) {
                    tx.settle(dag, plan, node);
                }
                true
            }
            None => false,
        },
        Event::Rejected { node } => match waiting_approval(&tx, dag, node) {
            Some(ns) => {
                tx.fail(dag, plan, node, ns);
                true
            }
            None => false,
        },
        Event::Cancel => {
            cancel(&mut tx);
            true
        }
        Event::Retry => retry(&mut tx, dag, plan),
    };
    finish(tx, applied)
}

/// End applying an event: finish the run when nothing remains.
fn finish(mut tx: Tx<'_>, applied: bool) -> Transition {
    if applied && tx.state.status == RunStatus::Running && tx.state.remaining == 0 {
        let status = if tx.state.failed == 0 {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        tx.state.status = status;
        tx.out.actions.push(Action::FinishRun { status });
    }
    let mut out = tx.out;
    out.changed.sort_unstable();
    out.changed.dedup();
    out
}

fn waiting_approval(tx: &Tx<'_>, dag: &ValidatedDag, node: NodeIdx) -> Option<NodeState> {
    if node as usize >= dag.len() {
        return None;
    }
    tx.get(node)
        .filter(|ns| ns.status == NodeStatus::WaitingApproval)
}

fn finished(
    tx: &mut Tx<'_>,
    dag: &ValidatedDag,
    plan: &Plan,
    node: NodeIdx,
    attempt: u32,
    outcome: Outcome,
    jitter: f64,
) -> bool {
    if node as usize >= dag.len() {
        return false;
    }
    let Some(mut ns) = tx.get(node) else {
        return false;
    };
    // A wait node's attempt is its wait: it ends while `waiting`.
    let live = match dag.wait(node) {
        Some(_) => NodeStatus::Waiting,
        None => NodeStatus::Running,
    };
    if ns.status != live || ns.attempt != attempt {
        return false;
    }
    match outcome {
        Outcome::Succeeded => {
            ns.status = NodeStatus::Succeeded;
            tx.set(node, ns);
            tx.state.remaining = tx.state.remaining.saturating_sub(1);
            tx.settle(dag, plan, node);
        }
        Outcome::Failed { retryable: true } | Outcome::Lost
            if ns.tries < retry_policy(plan, node).max_attempts =>
        {
            ns.status = NodeStatus::Retrying;
            tx.set(node, ns);
            let delay = Backoff::delay_after(&retry_policy(plan, node), ns.tries, jitter);
            tx.out.actions.push(Action::Schedule { node, delay });
        }
        Outcome::TimedOut
            if dag
                .wait(node)
                .is_some_and(|w| w.on_timeout == OnTimeout::Skip) =>
        {
            ns.status = NodeStatus::Skipped;
            ns.skip_reason = Some(SkipReason::TimedOut);
            tx.set(node, ns);
            tx.state.remaining = tx.state.remaining.saturating_sub(1);
            tx.settle(dag, plan, node);
        }
        Outcome::Failed { .. } | Outcome::TimedOut => tx.fail(dag, plan, node, ns),
        Outcome::Lost => {
            tx.out.actions.push(Action::Bury { node });
            tx.fail(dag, plan, node, ns);
        }
    }
    true
}

fn cancel(tx: &mut Tx<'_>) {
    let live: Vec<(NodeIdx, NodeState)> = tx
        .state
        .nodes
        .iter()
        .filter(|(_, ns)| !ns.status.is_terminal())
        .map(|(&i, &ns)| (i, ns))
        .collect();
    for (idx, mut ns) in live {
        if ns.status == NodeStatus::Running {
            tx.out.actions.push(Action::Stop { node: idx });
        }
        ns.status = NodeStatus::Cancelled;
        tx.set(idx, ns);
    }
    tx.state.remaining = 0;
    tx.state.status = RunStatus::Cancelled;
    tx.out.actions.push(Action::FinishRun {
        status: RunStatus::Cancelled,
    });
}

fn retry(tx: &mut Tx<'_>, dag: &ValidatedDag, plan: &Plan) -> bool {
    if !matches!(tx.state.status, RunStatus::Failed | RunStatus::Cancelled) {
        return false;
    }
    let reset: Vec<NodeIdx> = tx
        .state
        .nodes
        .iter()
        .filter(|(_, ns)| {
            matches!(
                ns.status,
                NodeStatus::Failed | NodeStatus::Cancelled | NodeStatus::Skipped
            )
        })
        .map(|(&i, _)| i)
        .collect();
    if reset.is_empty() {
        return false;
    }
    // Failed and cancelled instances start again (from their map node's
    // resume, below); succeeded ones keep their output.
    for &slot in reset.iter().filter(|&&i| is_instance(i)) {
        if let Some(mut ns) = tx.get(slot) {
            ns.status = NodeStatus::Pending;
            ns.tries = 0;
            tx.set(slot, ns);
        }
    }
    let mut is_reset = vec![false; dag.len()];
    for &idx in &reset {
        if let Some(flag) = is_reset.get_mut(idx as usize) {
            *flag = true;
        }
    }
    // Waiting counts come from the old statuses of parents: a reset node's
    // parents are either succeeded (kept, finished) or reset themselves.
    for &idx in &reset {
        if idx as usize >= dag.len() {
            continue;
        }
        let waiting_on = dag
            .parents(idx)
            .iter()
            .filter(|&&p| is_reset.get(p as usize).copied().unwrap_or(true))
            .count();
        if let Some(mut ns) = tx.get(idx) {
            ns.status = NodeStatus::Pending;
            ns.tries = 0;
            ns.waiting_on = u32::try_from(waiting_on).unwrap_or(u32::MAX);
            ns.failed_parents = 0;
            ns.skipped_parents = 0;
            ns.skip_reason = None;
            tx.set(idx, ns);
        }
    }
    // The run's counters first: deciding below counts what it finishes.
    tx.state.remaining = tx
        .state
        .remaining
        .saturating_add(u32::try_from(reset.len()).unwrap_or(u32::MAX));
    for &idx in dag.topo() {
        if !is_reset[idx as usize] {
            continue;
        }
        if let Some(ns) = tx.get(idx) {
            if ns.status == NodeStatus::Pending
                && ns.waiting_on == 0
                && tx.decide(dag, plan, idx, ns)
            {
                tx.settle(dag, plan, idx);
            }
        }
    }
    let nodes = || {
        tx.state
            .nodes
            .iter()
            .filter(|(&i, _)| !is_instance(i))
            .map(|(_, ns)| ns)
    };
    let failed = nodes().filter(|ns| ns.status == NodeStatus::Failed).count();
    tx.state.failed = u32::try_from(failed).unwrap_or(u32::MAX);
    let remaining = nodes().filter(|ns| !ns.status.is_terminal()).count();
    tx.state.remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
    tx.state.status = RunStatus::Running;
    true
}
