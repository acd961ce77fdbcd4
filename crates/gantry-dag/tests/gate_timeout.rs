//! Approval timeouts (SPEC section 3): bounded at registration, resolved
//! node over agent into the plan, and decided as `on_approval_timeout` says.

use gantry_dag::{
    approval_timed_out, instance_slot, AgentDef, Event, OnApprovalTimeout, Plan, ValidatedDag,
    WorkflowDef, DEFAULT_MAX_NODES,
};
use serde_json::json;

fn gate(extra: serde_json::Value) -> AgentDef {
    let mut v = json!({"name": "gate", "runtime": "builtin", "builtin": "noop",
                       "approval": "required"});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn plan(agent: &AgentDef, nodes: serde_json::Value) -> Plan {
    let def: WorkflowDef = serde_json::from_value(json!({"name": "w", "nodes": nodes})).unwrap();
    let dag = ValidatedDag::new(def, &|n| n == "gate", DEFAULT_MAX_NODES).unwrap();
    Plan::resolve(&dag, &|_| Some(agent.clone())).unwrap()
}

#[test]
fn approval_timeouts_outside_their_bounds_are_named() {
    for bad in [0, 30 * 24 * 3600 + 1] {
        let fields: Vec<String> = gate(json!({"approval_timeout_s": bad}))
            .problems()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["approval_timeout_s"], "{bad}");
    }
    assert!(
        gate(json!({"approval_timeout_s": 60, "on_approval_timeout": "approve"}))
            .problems()
            .is_empty()
    );
    let def: WorkflowDef = serde_json::from_value(json!({"name": "w", "nodes": [
        {"id": "a", "agent": "gate", "approval_timeout_s": 0}
    ]}))
    .unwrap();
    let problems = ValidatedDag::new(def, &|_| true, DEFAULT_MAX_NODES).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["nodes[0].approval_timeout_s"]);
    // Only the two decisions exist.
    assert!(serde_json::from_value::<AgentDef>(json!({
        "name": "g", "runtime": "builtin", "builtin": "noop", "on_approval_timeout": "ignore"
    }))
    .is_err());
}

#[test]
fn a_node_overrides_its_agents_timeout_and_decision() {
    let agent = gate(json!({"approval_timeout_s": 600, "on_approval_timeout": "approve"}));
    let p = plan(
        &agent,
        json!([
            {"id": "plain", "agent": "gate"},
            {"id": "quick", "agent": "gate", "approval_timeout_s": 5, "on_approval_timeout": "reject"}
        ]),
    );
    assert_eq!(p.nodes[0].approval_timeout_s, Some(600));
    assert_eq!(p.nodes[0].on_approval_timeout, OnApprovalTimeout::Approve);
    assert_eq!(p.nodes[1].approval_timeout_s, Some(5));
    assert_eq!(p.nodes[1].on_approval_timeout, OnApprovalTimeout::Reject);
    // Without one anywhere, a gate waits until answered; reject is the default.
    let p = plan(&gate(json!({})), json!([{"id": "a", "agent": "gate"}]));
    assert_eq!(p.nodes[0].approval_timeout_s, None);
    assert_eq!(p.nodes[0].on_approval_timeout, OnApprovalTimeout::Reject);
}

#[test]
fn a_timed_out_gate_is_decided_as_its_node_says_also_for_an_instance() {
    let agent = gate(json!({"approval_timeout_s": 60}));
    let p = plan(
        &agent,
        json!([
            {"id": "no", "agent": "gate"},
            {"id": "yes", "agent": "gate", "on_approval_timeout": "approve",
             "for_each": "{{run.input.items}}"}
        ]),
    );
    assert_eq!(approval_timed_out(&p, 0), Event::Rejected { node: 0 });
    assert_eq!(approval_timed_out(&p, 1), Event::Approved { node: 1 });
    let slot = instance_slot(1, 3);
    assert_eq!(approval_timed_out(&p, slot), Event::Approved { node: slot });
}

#[test]
fn a_plan_without_timeouts_keeps_its_stored_form() {
    // Plans are stored under the hash of their JSON: the new fields are
    // left out when unset, so plans stored before them keep their hash.
    let p = plan(&gate(json!({})), json!([{"id": "a", "agent": "gate"}]));
    let json = p.canonical_json();
    assert!(!json.contains("approval_timeout_s"), "{json}");
    assert!(!json.contains("on_approval_timeout"), "{json}");
}
