//! Map nodes in the state machine (SPEC 2.1 `for_each`): expanding a node
//! into instances, starting them under `max_parallel`, the fan-in of their
//! results, and resuming a retried map node. Instances are addressed by
//! slots (`instance.rs`); the node's [`MapState`] counts them.

use crate::advance_impl::{decided_by, needs_approval, Tx};
use crate::map_gate::is_open;
use crate::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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
        let parked = needs_approval(plan, idx);
        let map = MapState {
            items: n,
            next: queued,
            active: queued,
            parked: if parked { queued } else { 0 },
            succeeded: 0,
            failed_item: None,
        };
        ns.map = Some(map);
        let status = if parked {
            NodeStatus::WaitingApproval
        } else {
            NodeStatus::Queued
        };
        for item in 0..queued {
            let slot = instance_slot(idx, item);
            // The row is inserted with this state (the expansion below).
            self.state.nodes.insert(slot, NodeState::instance(status));
            self.out.actions.push(if parked {
                Action::Park { node: slot }
            } else {
                Action::Enqueue { node: slot }
            });
        }
        self.out.expansions.push(Expansion {
            node: idx,
            items,
            queued,
            parked,
        });
        self.map_settled(idx, ns, map)
    }

    /// The items `fe` resolves to in the loaded facts, or why not.
    fn items(&self, dag: &ValidatedDag, fe: &ForEach) -> Result<Vec<Value>, NodeFailure> {
        let value = self
            .render_over_facts(dag, &fe.template)
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

    /// `template` rendered over the loaded facts (the run's id and input,
    /// and the ancestors [`RunState::facts_view`] named).
    pub(crate) fn render_over_facts(
        &self,
        dag: &ValidatedDag,
        template: &str,
    ) -> Result<Value, TemplateError> {
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
        render_in(&Value::String(template.to_owned()), &scope)
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
            parked: 0,
            succeeded: u32::try_from(succeeded).unwrap_or(u32::MAX),
            failed_item: None,
        };
        let map = self.start_instances(dag, plan, idx, map);
        self.map_settled(idx, ns, map)
    }

    /// Start pending instances of `idx` from `map.next` on, lowest item
    /// first, while fewer than `max_parallel` are active: queue them, or
    /// park them when the node's agent needs approval. Only loaded
    /// instances are candidates (the store loads those
    /// [`RunState::instances_wanted`] names).
    fn start_instances(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
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
            if needs_approval(plan, idx) {
                is.status = NodeStatus::WaitingApproval;
                self.out.actions.push(Action::Park { node: slot });
                map.parked += 1;
            } else {
                is.status = NodeStatus::Queued;
                self.out.actions.push(Action::Enqueue { node: slot });
            }
            self.set(slot, is);
            map.active += 1;
            map.next = Slot::of(slot).item().unwrap_or(map.items) + 1;
        }
        map
    }

    /// Store `map` on the map node and finish the node when its instances
    /// are done: succeeded when all succeeded, failed once none is active
    /// after one failed for good. While some are active it is running, or
    /// waiting for approval when every active one waits for its own.
    /// Returns whether it finished.
    pub(crate) fn map_settled(&mut self, idx: NodeIdx, mut ns: NodeState, map: MapState) -> bool {
        ns.map = Some(map);
        if map.active > 0 {
            ns.status = if map.parked >= map.active {
                NodeStatus::WaitingApproval
            } else {
                NodeStatus::Running
            };
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
        if is.status != NodeStatus::Running || is.attempt != attempt || !is_open(ns) {
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
            Outcome::Failed { .. } | Outcome::Lost | Outcome::TimedOut => {
                if outcome == Outcome::Lost {
                    self.out.actions.push(Action::Bury { node: slot });
                }
                is.status = NodeStatus::Failed;
                map.fail_item(item);
                // No new instance starts: those waiting for approval end.
                self.cancel_parked(node, &mut map);
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
pub(crate) fn kind(v: &Value) -> &'static str {
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
        Event::Approved { node } if is_instance(node) => {
            Some(tx.instance_gate(dag, plan, node, true))
        }
        Event::Rejected { node } if is_instance(node) => {
            Some(tx.instance_gate(dag, plan, node, false))
        }
        // A map node that expanded gates each of its instances; one parked
        // as a whole (stored before instances had their own gates) is
        // approved or rejected as a node.
        Event::Approved { node } if has_map(tx, dag, node) => {
            Some(tx.node_gate(dag, plan, node, true))
        }
        Event::Rejected { node } if has_map(tx, dag, node) => {
            Some(tx.node_gate(dag, plan, node, false))
        }
        _ => None,
    }
}

/// Whether `node` is a map node that expanded.
pub(crate) fn has_map(tx: &Tx<'_>, dag: &ValidatedDag, node: NodeIdx) -> bool {
    dag.for_each(node).is_some() && tx.state.nodes.get(&node).is_some_and(|s| s.map.is_some())
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
    plan: &Plan,
    state: &RunState,
    events: &[Event],
) -> Vec<Wanted> {
    let mut started: BTreeMap<NodeIdx, u32> = BTreeMap::new();
    let mut gated: BTreeSet<NodeIdx> = BTreeSet::new();
    for e in events {
        match *e {
            Event::Finished { node, outcome, .. } if is_instance(node) => {
                *started.entry(owner(node)).or_default() += 1;
                if outcome != Outcome::Succeeded {
                    gated.insert(owner(node));
                }
            }
            Event::LeaseExpired { node, .. } if is_instance(node) => {
                *started.entry(owner(node)).or_default() += 1;
                gated.insert(owner(node));
            }
            Event::Rejected { node } => {
                gated.insert(owner(node));
            }
            Event::Approved { node } if !is_instance(node) => {
                gated.insert(node);
            }
            _ => {}
        }
    }
    let map_of = |n: NodeIdx| state.nodes.get(&n).and_then(|s| s.map);
    let mut out: Vec<Wanted> = started
        .into_iter()
        .filter(|(n, _)| dag.for_each(*n).is_some_and(|fe| fe.max_parallel.is_some()))
        .filter_map(|(n, count)| {
            let map = map_of(n)?;
            (map.next < map.items).then(|| Wanted {
                from: instance_slot(n, map.next),
                to: instance_slot(n, map.items),
                status: NodeStatus::Pending,
                limit: count,
            })
        })
        .collect();
    out.extend(
        gated
            .into_iter()
            .filter(|&n| dag.for_each(n).is_some() && needs_approval(plan, n))
            .filter_map(|n| {
                let map = map_of(n)?;
                (map.parked > 0).then(|| Wanted {
                    from: instance_slot(n, 0),
                    to: instance_slot(n, map.items),
                    status: NodeStatus::WaitingApproval,
                    limit: map.parked,
                })
            }),
    );
    out
}
