//! Approval timeouts (SPEC section 3) through the real `gantry dev`
//! process: a gate nobody answers is decided by its `on_approval_timeout`
//! once its `approval_timeout_s` runs out (reject by default, or approve),
//! for a node and for each instance of a `for_each` node, and the decision
//! is recorded as made by `timeout`; a gate answered in time is recorded as
//! made through the API and never times out.

mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_gates_are_decided_by_their_timeout_and_say_so() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.agent(json!({
        "name": "gate", "runtime": "builtin", "builtin": "echo",
        "approval": "required", "approval_timeout_s": 1
    }))
    .await;
    env.workflow(json!({"name": "gated", "nodes": [
        {"id": "rejected", "agent": "gate"},
        {"id": "approved", "agent": "gate", "on_approval_timeout": "approve",
         "input": {"v": "ok"}},
        {"id": "each", "agent": "gate", "on_approval_timeout": "approve",
         "for_each": "{{run.input.items}}", "input": {"item": "{{item}}"}},
        {"id": "after", "agent": "gate", "depends_on": ["rejected"]}
    ]}))
    .await;
    let run = env.start("gated", json!({"items": [1, 2, 3]})).await;
    let (_, detail) = env.get(&format!("/v1/runs/{run}")).await;
    let deadline = node_of(&detail, "rejected")["approval_deadline"].clone();
    assert!(
        deadline.is_string(),
        "a parked gate shows its deadline: {detail:#}"
    );

    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let rejected = node_of(&done, "rejected");
    assert_eq!(rejected["status"], "failed", "{done:#}");
    assert_eq!(rejected["approval_decided_by"], "timeout", "{done:#}");
    assert_eq!(node_of(&done, "after")["status"], "skipped", "{done:#}");
    let approved = node_of(&done, "approved");
    assert_eq!(approved["status"], "succeeded", "{done:#}");
    assert_eq!(approved["approval_decided_by"], "timeout", "{done:#}");
    assert_eq!(approved["output"], json!({"v": "ok"}), "{done:#}");
    let each = node_of(&done, "each");
    assert_eq!(each["status"], "succeeded", "{done:#}");
    assert_eq!(
        each["output"],
        json!([{"item": 1}, {"item": 2}, {"item": 3}]),
        "every instance's gate timed out into an approval: {done:#}"
    );
    let (status, list) = env
        .get(&format!("/v1/runs/{run}/nodes/each/instances"))
        .await;
    assert_eq!(status, 200, "{list}");
    let instances = list["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3, "{list}");
    for i in instances {
        assert_eq!(i["approval_decided_by"], "timeout", "{list}");
        assert!(i.get("approval_deadline").is_none(), "decided: {list}");
    }
    assert!(
        rejected.get("approval_deadline").is_none(),
        "a decided gate shows no deadline: {done:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_answered_in_time_is_the_apis_decision_and_never_times_out() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.agent(json!({
        "name": "gate", "runtime": "builtin", "builtin": "noop",
        "approval": "required", "approval_timeout_s": 600
    }))
    .await;
    env.workflow(json!({"name": "answered", "nodes": [{"id": "g", "agent": "gate"}]}))
        .await;
    let run = env.start("answered", json!({})).await;
    env.wait_node(&run, "g", "waiting_approval", T).await;
    let (status, body) = env
        .post(&format!("/v1/runs/{run}/nodes/g/approve"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        node_of(&done, "g")["approval_decided_by"],
        "api",
        "{done:#}"
    );
}
