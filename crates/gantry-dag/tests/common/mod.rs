//! Shared test helpers: building DAGs and plans from parent lists.
#![allow(dead_code)]

pub(crate) mod map_sim;
pub(crate) mod scenario;
pub(crate) mod sim;

use gantry_dag::{
    AgentDef, Event, NodeIdx, NodeStatus, Outcome, Plan, RunState, ValidatedDag, WorkflowDef,
    DEFAULT_MAX_NODES,
};
use serde_json::json;

/// Retry budget of every agent in these tests.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

pub(crate) fn agent(name: &str, approval: bool) -> AgentDef {
    serde_json::from_value(json!({
        "name": name, "runtime": "builtin", "builtin": "noop",
        "approval": if approval { "required" } else { "auto" },
        "retry": {"max_attempts": MAX_ATTEMPTS, "initial_delay_ms": 100, "max_delay_ms": 1000, "multiplier": 2.0}
    }))
    .unwrap()
}

/// Nodes `n0..`; `parents[i]` lists indices (duplicates allowed); nodes with
/// `gated[i]` use an agent that requires approval.
pub(crate) fn build(parents: &[Vec<usize>], gated: &[bool]) -> (ValidatedDag, Plan) {
    let nodes: Vec<_> = parents
        .iter()
        .enumerate()
        .map(|(i, ps)| {
            let deps: Vec<String> = ps.iter().map(|p| format!("n{p}")).collect();
            let agent = if gated.get(i).copied().unwrap_or(false) {
                "gate"
            } else {
                "auto"
            };
            json!({"id": format!("n{i}"), "agent": agent, "depends_on": deps})
        })
        .collect();
    let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": nodes})).unwrap();
    let dag = ValidatedDag::new(def, &|a| a == "auto" || a == "gate", DEFAULT_MAX_NODES).unwrap();
    let plan = Plan::resolve(&dag, &|a| match a {
        "auto" => Some(agent("auto", false)),
        "gate" => Some(agent("gate", true)),
        _ => None,
    })
    .unwrap();
    (dag, plan)
}

/// A worker's claim, decided by the state machine (`NodeState::claim`).
pub(crate) fn claim(state: &mut RunState, n: NodeIdx) -> u32 {
    let ns = state.nodes.get_mut(&n).unwrap();
    let before = *ns;
    ns.claim()
        .unwrap_or_else(|why| panic!("cannot claim {before:?}: {why}"))
}

pub(crate) fn status(state: &RunState, n: NodeIdx) -> NodeStatus {
    state.nodes[&n].status
}

pub(crate) const OK: Outcome = Outcome::Succeeded;
pub(crate) const FLAKY: Outcome = Outcome::Failed { retryable: true };
pub(crate) const FATAL: Outcome = Outcome::Failed { retryable: false };

pub(crate) fn fin(node: NodeIdx, attempt: u32, outcome: Outcome) -> Event {
    Event::Finished {
        node,
        attempt,
        outcome,
    }
}
