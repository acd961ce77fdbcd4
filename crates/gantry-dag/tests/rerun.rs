//! A re-run's state in the pure core: the chosen nodes and everything
//! downstream of them run again, so does every node that did not succeed;
//! the rest are reused; `Event::Retry` then queues exactly the re-run
//! nodes whose parents are all reused.

use gantry_dag::{
    advance, rerun_state, AgentDef, Event, NodeStatus, Plan, RunStatus, ValidatedDag, WorkflowDef,
    DEFAULT_MAX_NODES,
};
use serde_json::json;

#[test]
fn a_rerun_reuses_what_is_upstream_and_aside_and_queues_the_chosen_node() {
    // a -> b -> d, a -> c -> d, e alone (failed in the old run).
    let def: WorkflowDef = serde_json::from_value(json!({"name": "w", "nodes": [
        {"id": "a", "agent": "x"},
        {"id": "b", "agent": "x", "depends_on": ["a"]},
        {"id": "c", "agent": "x", "depends_on": ["a"]},
        {"id": "d", "agent": "x", "depends_on": ["b", "c"]},
        {"id": "e", "agent": "x"}
    ]}))
    .unwrap();
    let dag = ValidatedDag::new(def, &|_| true, DEFAULT_MAX_NODES).unwrap();
    let agent: AgentDef =
        serde_json::from_value(json!({"name": "x", "runtime": "builtin", "builtin": "noop"}))
            .unwrap();
    let plan = Plan::resolve(&dag, &|_| Some(agent.clone())).unwrap();
    use NodeStatus::*;
    let old = [Succeeded, Succeeded, Succeeded, Succeeded, Failed];
    let (mut state, reused) = rerun_state(&dag, &old, &[1]);
    assert_eq!(reused, [true, false, true, false, false]);
    let t = advance(&dag, &plan, &mut state, Event::Retry, 0.5);
    let status = |i: u32| state.nodes[&i].status;
    assert_eq!(
        [status(0), status(1), status(2), status(3), status(4)],
        [Succeeded, Queued, Succeeded, Pending, Queued]
    );
    assert_eq!(state.status, RunStatus::Running);
    assert_eq!((state.remaining, state.failed), (3, 0));
    assert_eq!(state.nodes[&3].waiting_on, 1, "d waits for b only");
    assert_eq!(t.actions.len(), 2, "{t:?}");
    // From the root: everything runs again.
    let (_, reused) = rerun_state(&dag, &old, &[0]);
    assert_eq!(reused, [false, false, false, false, false]);
}
