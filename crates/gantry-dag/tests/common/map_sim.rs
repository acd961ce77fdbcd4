//! A map run for `for_each` tests: `src` -> `m` (for_each) -> `j`, applied
//! both to the full state and, as the store would, to the partial view of
//! each event, which must decide the same.

use super::{agent, OK};
use gantry_dag::{
    advance, instance_slot, Action, Event, Fact, NodeFailure, NodeIdx, NodeState, NodeStatus,
    Outcome, Plan, RunState, Slot, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES,
};
use serde_json::{json, Value};

pub(crate) const SRC: NodeIdx = 0;
pub(crate) const MAP: NodeIdx = 1;
pub(crate) const JOIN: NodeIdx = 2;

/// `src` -> `m` (for_each over src's `items`) -> `j` (trigger rule `rule`).
fn map_dag(max_parallel: Option<u32>, rule: &str, gated: bool) -> (ValidatedDag, Plan) {
    let mut m = json!({"id": "m", "agent": "auto", "depends_on": ["src"],
                       "for_each": "{{src.output.items}}", "input": {"x": "{{item}}", "i": "{{index}}"}});
    if let Some(p) = max_parallel {
        m["max_parallel"] = json!(p);
    }
    let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": [
        {"id": "src", "agent": "auto"},
        m,
        {"id": "j", "agent": "auto", "depends_on": ["m"], "trigger_rule": rule},
    ]}))
    .unwrap();
    let dag = ValidatedDag::new(def, &|a| a == "auto", DEFAULT_MAX_NODES).unwrap();
    let plan = Plan::resolve(&dag, &|a| (a == "auto").then(|| agent("auto", false))).unwrap();
    if !gated {
        return (dag, plan);
    }
    // The map node alone runs an agent that needs approval.
    let def = dag.def().clone();
    let mut def = serde_json::to_value(def).unwrap();
    def["nodes"][1]["agent"] = json!("gate");
    let def: WorkflowDef = serde_json::from_value(def).unwrap();
    let known = |a: &str| a == "auto" || a == "gate";
    let dag = ValidatedDag::new(def, &known, DEFAULT_MAX_NODES).unwrap();
    let plan = Plan::resolve(&dag, &|a| known(a).then(|| agent(a, a == "gate"))).unwrap();
    (dag, plan)
}

/// A run that applies transitions as the store would: expansions insert
/// the pending instances, claims bump attempts.
pub(crate) struct Sim {
    pub(crate) dag: ValidatedDag,
    pub(crate) plan: Plan,
    pub(crate) state: RunState,
    /// Most instances active at once, seen after every transition.
    pub(crate) peak: u32,
    pub(crate) enqueued: Vec<NodeIdx>,
    /// Slots parked for approval, in order.
    pub(crate) parked: Vec<NodeIdx>,
    pub(crate) failures: Vec<(NodeIdx, NodeFailure)>,
}

impl Sim {
    pub(crate) fn new(max_parallel: Option<u32>, rule: &str) -> Self {
        Self::with(max_parallel, rule, false)
    }

    /// [`Sim::new`] where the map node's agent needs approval.
    pub(crate) fn gated(max_parallel: Option<u32>, rule: &str) -> Self {
        Self::with(max_parallel, rule, true)
    }

    fn with(max_parallel: Option<u32>, rule: &str, gated: bool) -> Self {
        let (dag, plan) = map_dag(max_parallel, rule, gated);
        let (state, actions) = RunState::start(&dag, &plan);
        let mut sim = Sim {
            dag,
            plan,
            state,
            peak: 0,
            enqueued: Vec::new(),
            parked: Vec::new(),
            failures: Vec::new(),
        };
        sim.note(&actions);
        sim
    }

    fn note(&mut self, actions: &[Action]) {
        for a in actions {
            match *a {
                Action::Enqueue { node } => self.enqueued.push(node),
                Action::Park { node } => self.parked.push(node),
                _ => {}
            }
        }
    }

    /// Apply `event` to the full state and, as the store would, to a
    /// scratch state holding only the event's view, the pending instances
    /// `instances_wanted` names and the facts `facts_view` names: both
    /// must decide the same.
    pub(crate) fn apply(&mut self, event: Event) -> bool {
        let partial = RunState::view(&self.dag, &event).map(|ids| {
            let mut scratch = RunState {
                status: self.state.status,
                remaining: self.state.remaining,
                failed: self.state.failed,
                nodes: ids
                    .iter()
                    .filter_map(|i| Some((*i, *self.state.nodes.get(i)?)))
                    .collect(),
                facts: Default::default(),
            };
            let wanted = RunState::instances_wanted(&self.dag, &self.plan, &scratch, &[event]);
            for w in wanted {
                let pending: Vec<(NodeIdx, NodeState)> = self
                    .state
                    .nodes
                    .range(w.from..w.to)
                    .filter(|(_, s)| s.status == w.status)
                    .take(w.limit as usize)
                    .map(|(&i, &s)| (i, s))
                    .collect();
                scratch.nodes.extend(pending);
            }
            let wanted = RunState::facts_view(&self.dag, &event);
            scratch.facts.nodes = wanted
                .iter()
                .filter_map(|i| Some((*i, self.state.facts.nodes.get(i)?.clone())))
                .collect();
            scratch.facts.input = self.state.facts.input.clone();
            let t = advance(&self.dag, &self.plan, &mut scratch, event, 0.5);
            (scratch, t)
        });
        let t = advance(&self.dag, &self.plan, &mut self.state, event, 0.5);
        if let Some((scratch, t_part)) = partial {
            assert_eq!(
                t_part, t,
                "a partial view decided otherwise than the full state"
            );
            for (i, s) in &scratch.nodes {
                assert_eq!(Some(s), self.state.nodes.get(i), "slot {i} after {event:?}");
            }
        }
        for e in &t.expansions {
            for item in e.queued..u32::try_from(e.items.len()).unwrap() {
                self.state.nodes.insert(
                    instance_slot(e.node, item),
                    NodeState::instance(NodeStatus::Pending),
                );
            }
        }
        self.note(&t.actions);
        self.failures.extend(t.failures);
        let active = self
            .state
            .nodes
            .iter()
            .filter(|(&i, s)| {
                matches!(Slot::of(i), Slot::Instance { .. })
                    && matches!(
                        s.status,
                        NodeStatus::Queued | NodeStatus::Running | NodeStatus::Retrying
                    )
            })
            .count() as u32;
        self.peak = self.peak.max(active);
        !t.changed.is_empty() || !t.actions.is_empty()
    }

    pub(crate) fn claim(&mut self, n: NodeIdx) -> u32 {
        super::claim(&mut self.state, n)
    }

    /// Finish `src` with `items` as its output's `items`.
    pub(crate) fn source(&mut self, items: Value) {
        let a = self.claim(SRC);
        self.state.facts.nodes.insert(
            SRC,
            Fact {
                status: NodeStatus::Succeeded,
                output: json!({ "items": items }),
                error: None,
            },
        );
        self.apply(Event::Finished {
            node: SRC,
            attempt: a,
            outcome: OK,
        });
    }

    pub(crate) fn status(&self, n: NodeIdx) -> NodeStatus {
        self.state.nodes[&n].status
    }

    pub(crate) fn queued_instances(&self) -> Vec<NodeIdx> {
        self.state
            .nodes
            .iter()
            .filter(|(&i, s)| {
                matches!(Slot::of(i), Slot::Instance { .. })
                    && matches!(s.status, NodeStatus::Queued | NodeStatus::Retrying)
            })
            .map(|(&i, _)| i)
            .collect()
    }
}

pub(crate) fn fin(node: NodeIdx, attempt: u32, outcome: Outcome) -> Event {
    Event::Finished {
        node,
        attempt,
        outcome,
    }
}
