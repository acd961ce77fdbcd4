//! Map nodes in the state machine (SPEC 2.1 `for_each`): expanding a node
//! into instances, starting them under `max_parallel`, the fan-in of their
//! results, and resuming a retried map node. Instances are addressed by
//! slots (`instance.rs`); the node's [`MapState`] counts them.

use crate::advance_impl::{decided_by, Tx};
use crate::*;
use serde_json::Value;

impl Tx<'_> {
    /// Expand the ready map node `idx`: resolve its `for_each` against the
    /// facts, then one instance per item (the first `max_parallel` queued).
    /// A node that expanded before (a retry) resumes instead. Returns
    /// whether the node finished here (no items, or a bad `for_each`).
    pub(crate) fn expand(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        mut ns: NodeState,
    ) -> bool {
        let Some(fe) = dag.for_each(idx) else {
            return false;
        };
        if let Some(map) = ns.map {
            return self.resume(dag, plan, idx, ns, map);
        }
        let items = match self.items(dag, fe) {
            Ok(items) => items,
            Err(why) => {
                self.fail_node(idx, ns, why);
                return true;
            }
        };
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let queued = fe.max_parallel.map_or(n, |p| p.min(n));
        let map = MapState {
            items: n,
            next: queued,
            active: queued,
            succeeded: 0,
            failed_item: None,
        };
        ns.map = Some(map);
        for item in 0..queued {
            let slot = instance_slot(idx, item);
            // The row is inserted with this state (the expansion below).
            self.state
                .nodes
                .insert(slot, NodeState::instance(NodeStatus::Queued));
            self.out.actions.push(Action::Enqueue { node: slot });
        }
        self.out.expansions.push(Expansion {
            node: idx,
            items,
            queued,
        });
        self.map_settled(idx, ns, map)
    }

    /// The items `fe` resolves to in the loaded facts, or why not.
    fn items(&self, dag: &ValidatedDag, fe: &ForEach) -> Result<Vec<Value>, NodeFailure> {
        let facts = &self.state.facts;
        let nodes = |id: &str| {
            let idx = dag.idx(id)?;
            let fact = facts.nodes.get(&idx);
            debug_assert!(fact.is_some(), "facts of node {idx} missing from the view");
            let fact = fact?;
            let status = self.state.nodes.get(&idx).map_or(fact.status, |s| s.status);
            Some(NodeView {
                status,
                output: fact.output.clone(),
                error: fact.error.clone(),
            })
        };
        let scope = Scope {
            run_id: &facts.run_id,
            input: &facts.input,
            nodes: &nodes,
            item: None,
        };
        let value = render_in(&Value::String(fe.template.clone()), &scope)
            .map_err(NodeFailure::ForEachPath)?;
        let items = match value {
            Value::Array(items) => items,
            other => return Err(NodeFailure::NotAnArray { got: kind(&other) }),
        };
        if items.len() > fe.max_items as usize {
            return Err(NodeFailure::TooManyItems {
                items: items.len(),
                max: fe.max_items,
            });
        }
        Ok(items)
    }

    /// Resume a retried map node: its pending instances (the reset ones
    /// and those that never started) start again in item order, under
    /// `max_parallel`; succeeded ones keep their output.
    fn resume(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        ns: NodeState,
        map: MapState,
    ) -> bool {
        let lo = instance_slot(idx, 0);
        let hi = instance_slot(idx, map.items);
        let succeeded = self
            .state
            .nodes
            .range(lo..hi)
            .filter(|(_, s)| s.status == NodeStatus::Succeeded)
            .count();
        let map = MapState {
            items: map.items,
            next: 0,
            active: 0,
            succeeded: u32::try_from(succeeded).unwrap_or(u32::MAX),
            failed_item: None,
        };
        let map = self.start_instances(dag, plan, idx, map);
        self.map_settled(idx, ns, map)
    }

    /// Queue pending instances of `idx` from `map.next` on, lowest item
    /// first, while fewer than `max_parallel` are active. Only loaded
    /// instances are candidates (the store loads those
    /// [`RunState::instances_wanted`] names).
    fn start_instances(
        &mut self,
        dag: &ValidatedDag,
        _plan: &Plan,
        idx: NodeIdx,
        mut map: MapState,
    ) -> MapState {
        let bound = dag
            .for_each(idx)
            .and_then(|fe| fe.max_parallel)
            .unwrap_or(u32::MAX);
        while map.active < bound && map.next < map.items && map.failed_item.is_none() {
            let lo = instance_slot(idx, map.next);
            let hi = instance_slot(idx, map.items);
            let found = self
                .state
                .nodes
                .range(lo..hi)
                .find(|(_, s)| s.status == NodeStatus::Pending)
                .map(|(&slot, &s)| (slot, s));
            let Some((slot, mut is)) = found else {
                break;
            };
            is.status = NodeStatus::Queued;
            self.set(slot, is);
            self.out.actions.push(Action::Enqueue { node: slot });
            map.active += 1;
            map.next = Slot::of(slot).item().unwrap_or(map.items) + 1;
        }
        map
    }

    /// Store `map` on the map node and finish the node when its instances
    /// are done: succeeded when all succeeded, failed once none is active
    /// after one failed for good. Returns whether it finished.
    fn map_settled(&mut self, idx: NodeIdx, mut ns: NodeState, map: MapState) -> bool {
        ns.map = Some(map);
        if map.active > 0 {
            ns.status = NodeStatus::Running;
            self.set(idx, ns);
            return false;
        }
        if let Some(index) = map.failed_item {
            self.fail_node(idx, ns, NodeFailure::Instance { index });
            return true;
        }
        if map.succeeded >= map.items {
            ns.status = NodeStatus::Succeeded;
            self.set(idx, ns);
            self.state.remaining = self.state.remaining.saturating_sub(1);
            return true;
        }
        // Pending instances none of which is loaded: cannot happen while
        // the store loads what instances_wanted names; stay running.
        ns.status = NodeStatus::Running;
        self.set(idx, ns);
        false
    }

    /// Fail `idx` with a cause of the state machine's own (not settled).
    pub(crate) fn fail_node(&mut self, idx: NodeIdx, mut ns: NodeState, why: NodeFailure) {
        ns.status = NodeStatus::Failed;
        self.set(idx, ns);
        self.state.remaining = self.state.remaining.saturating_sub(1);
        self.state.failed = self.state.failed.saturating_add(1);
        self.out.failures.push((idx, why));
    }

    /// An attempt of instance `slot` ended.
    fn instance_finished(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        slot: NodeIdx,
        attempt: u32,
        outcome: Outcome,
        jitter: f64,
    ) -> bool {
        let Slot::Instance { node, item } = Slot::of(slot) else {
            return false;
        };
        if node as usize >= dag.len() || dag.for_each(node).is_none() {
            return false;
        }
        let (Some(mut is), Some(ns)) = (self.get(slot), self.get(node)) else {
            return false;
        };
        let Some(mut map) = ns.map else {
            return false;
        };
        if is.status != NodeStatus::Running
            || is.attempt != attempt
            || ns.status != NodeStatus::Running
        {
            return false;
        }
        let policy = plan.node(node).retry.clamped();
        match outcome {
            Outcome::Succeeded => {
                is.status = NodeStatus::Succeeded;
                map.succeeded = map.succeeded.saturating_add(1);
            }
            Outcome::Failed { retryable: true } | Outcome::Lost
                if is.tries < policy.max_attempts =>
            {
                is.status = NodeStatus::Retrying;
                self.set(slot, is);
                let delay = Backoff::delay_after(&policy, is.tries, jitter);
                self.out
                    .actions
                    .push(Action::Schedule { node: slot, delay });
                return true;
            }
            Outcome::Failed { .. } | Outcome::Lost => {
                if outcome == Outcome::Lost {
                    self.out.actions.push(Action::Bury { node: slot });
                }
                is.status = NodeStatus::Failed;
                map.failed_item = Some(map.failed_item.map_or(item, |f| f.min(item)));
            }
        }
        self.set(slot, is);
        map.active = map.active.saturating_sub(1);
        let map = self.start_instances(dag, plan, node, map);
        if self.map_settled(node, ns, map) {
            self.settle(dag, plan, node);
        }
        true
    }
}

/// The JSON kind of `v`, for errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Apply an event that names an instance; `None` for any other event.
pub(crate) fn advance(
    tx: &mut Tx<'_>,
    dag: &ValidatedDag,
    plan: &Plan,
    event: Event,
    jitter: f64,
) -> Option<bool> {
    match event {
        Event::Finished {
            node,
            attempt,
            outcome,
        } if is_instance(node) => {
            Some(tx.instance_finished(dag, plan, node, attempt, outcome, jitter))
        }
        Event::LeaseExpired { node, attempt } if is_instance(node) => {
            Some(tx.instance_finished(dag, plan, node, attempt, Outcome::Lost, jitter))
        }
        // Approval gates the map node as a whole, before it expands.
        Event::Approved { node } | Event::Rejected { node } if is_instance(node) => Some(false),
        _ => None,
    }
}

/// The view of an event that names an instance: the instance, its node,
/// and what the node finishing either way may decide.
pub(crate) fn view(dag: &ValidatedDag, event: &Event) -> Option<Vec<NodeIdx>> {
    let slot = match *event {
        Event::Finished { node, .. }
        | Event::LeaseExpired { node, .. }
        | Event::Approved { node }
        | Event::Rejected { node } => node,
        _ => return None,
    };
    if !is_instance(slot) {
        return None;
    }
    let node = owner(slot);
    if node as usize >= dag.len() {
        return Some(Vec::new());
    }
    let mut out = vec![node, slot];
    out.extend(decided_by(dag, node, true));
    out.extend(decided_by(dag, node, false));
    out.sort_unstable();
    out.dedup();
    Some(out)
}

pub(crate) fn instances_wanted(
    dag: &ValidatedDag,
    state: &RunState,
    events: &[Event],
) -> Vec<(NodeIdx, NodeIdx, u32)> {
    let mut per_node: std::collections::BTreeMap<NodeIdx, u32> = Default::default();
    for e in events {
        if let Event::Finished { node, .. } | Event::LeaseExpired { node, .. } = *e {
            if is_instance(node) {
                *per_node.entry(owner(node)).or_default() += 1;
            }
        }
    }
    per_node
        .into_iter()
        .filter(|(n, _)| dag.for_each(*n).is_some_and(|fe| fe.max_parallel.is_some()))
        .filter_map(|(n, count)| {
            let map = state.nodes.get(&n)?.map?;
            (map.next < map.items).then(|| {
                (
                    instance_slot(n, map.next),
                    instance_slot(n, map.items),
                    count,
                )
            })
        })
        .collect()
}
