//! Dynamic workflows through the real `gantry dev` process (SPEC section
//! 2.1): trigger rules, `when`, skip reasons, the `status`/`error`/`run.id`
//! templates, and their 422s at registration.

mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The triage shape: a `when` that is false skips its node and what needs
/// it, a `none_failed` join runs after the skipped branch, an on-failure
/// handler that had nothing to handle is skipped, and the run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_condition_skips_a_branch_and_the_join_still_runs() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "triage", "nodes": [
        {"id": "scan", "agent": "echo", "input": {"summary": {"total": "{{run.input.found}}"}}},
        {"id": "fix", "agent": "echo", "depends_on": ["scan"],
         "when": "nodes.scan.output.summary.total > 0", "input": {"n": "{{scan.output.summary.total}}"}},
        {"id": "verify", "agent": "echo", "depends_on": ["fix"]},
        {"id": "ci", "agent": "echo", "depends_on": ["fix"], "trigger_rule": "none_failed",
         "input": {"fix": "{{fix.status}}", "run": "{{run.id}}", "out": "[{{fix.output}}]"}},
        {"id": "alert", "agent": "echo", "depends_on": ["ci"], "trigger_rule": "one_failed"}
    ]}))
    .await;

    let id = env.start("triage", json!({"found": 0})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(
        run["status"], "succeeded",
        "skips do not fail a run: {run:#}"
    );
    let fix = node_of(&run, "fix");
    assert_eq!(fix["status"], "skipped", "{run:#}");
    assert_eq!(fix["skip_reason"], "condition_false");
    assert_eq!(fix["attempts"], 0, "a skipped node never runs");
    assert_eq!(node_of(&run, "verify")["skip_reason"], "upstream_skipped");
    let ci = node_of(&run, "ci");
    assert_eq!(ci["status"], "succeeded", "{run:#}");
    assert_eq!(ci["skip_reason"], serde_json::Value::Null);
    assert_eq!(
        ci["output"],
        json!({"fix": "skipped", "run": id, "out": "[]"}),
        "a skipped node's output reads as empty inside a longer string"
    );
    assert_eq!(node_of(&run, "alert")["skip_reason"], "condition_false");

    // The same workflow with something found runs the fix.
    let id = env.start("triage", json!({"found": 2})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "fix")["output"], json!({"n": 2}));
    assert_eq!(node_of(&run, "verify")["status"], "succeeded");
}

/// A failure does not stop unrelated branches, `one_failed` handles it
/// with the failed node's status and error, `all_done` reports after a
/// skip, and the run is failed even though the handler ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_runs_its_handler_and_unrelated_branches() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "handled", "nodes": [
        {"id": "review", "agent": "fail", "input": {"exit_code": 78}},
        {"id": "other", "agent": "echo", "input": {"ok": true}},
        {"id": "publish", "agent": "echo", "depends_on": ["review"]},
        {"id": "alert", "agent": "echo", "depends_on": ["review"], "trigger_rule": "one_failed",
         "input": {"message": "review {{review.status}}: {{review.error}}", "out": "{{review.output}}"}},
        {"id": "report", "agent": "echo", "depends_on": ["publish", "alert"], "trigger_rule": "all_done",
         "when": "nodes.alert.status == 'succeeded' && nodes.publish.status == 'skipped'"}
    ]}))
    .await;
    let id = env.start("handled", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(
        run["status"], "failed",
        "a failed node fails the run: {run:#}"
    );
    assert_eq!(
        node_of(&run, "review")["attempts"],
        1,
        "exit 78 is permanent"
    );
    assert_eq!(node_of(&run, "other")["status"], "succeeded");
    assert_eq!(node_of(&run, "publish")["skip_reason"], "upstream_failed");
    let alert = node_of(&run, "alert");
    assert_eq!(alert["status"], "succeeded", "{run:#}");
    let message = alert["output"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("review failed: ") && message.len() > "review failed: ".len(),
        "the handler reads the failed node's status and error: {message:?}"
    );
    assert_eq!(alert["output"]["out"], serde_json::Value::Null);
    assert_eq!(node_of(&run, "report")["status"], "succeeded", "{run:#}");
}

/// A condition that is not a bool fails its node once with the message;
/// its dependents are skipped; retrying the run decides them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_that_is_not_a_bool_fails_the_node() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "typo", "nodes": [
        {"id": "scan", "agent": "echo", "input": {"count": 3}},
        {"id": "fix", "agent": "echo", "depends_on": ["scan"], "when": "nodes.scan.output.count"},
        {"id": "after", "agent": "echo", "depends_on": ["fix"]}
    ]}))
    .await;
    let id = env.start("typo", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let fix = node_of(&run, "fix");
    assert_eq!(fix["status"], "failed");
    assert_eq!(fix["attempts"], 0);
    assert_eq!(fix["error"], "when evaluated to a number, not a bool");
    assert_eq!(node_of(&run, "after")["skip_reason"], "upstream_failed");

    let (status, body) = env.post(&format!("/v1/runs/{id}/retry"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(
        node_of(&run, "fix")["error"],
        "when evaluated to a number, not a bool"
    );
    assert_eq!(
        node_of(&run, "scan")["attempts"],
        1,
        "succeeded outputs are kept"
    );
}

/// Registration refuses, with every problem and its path, a `when` that
/// does not parse, one that reads a node that is not an ancestor, a
/// template naming a non-ancestor's status, and an unknown trigger rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_conditions_and_rules_are_422() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "bad", "nodes": [
                {"id": "a", "agent": "echo"},
                {"id": "b", "agent": "echo", "depends_on": ["a"], "when": "nodes.a.status =="},
                {"id": "c", "agent": "echo", "when": "nodes.a.output.x == 1"},
                {"id": "d", "agent": "echo", "input": {"s": "{{a.status}}"}},
                {"id": "e", "agent": "echo", "depends_on": ["a"], "when": "((((((((((true))))))))))"}
            ]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    for field in [
        "nodes[1].when",
        "nodes[2].when",
        "nodes[3].input.s",
        "nodes[4].when",
    ] {
        assert!(fields.contains(&field), "{field} missing from {body:#}");
    }

    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "bad", "nodes": [
                {"id": "a", "agent": "echo", "trigger_rule": "most_failed"}
            ]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("trigger_rule"), "{body}");
}

/// A workflow's `input_schema`: a schema that does not compile is a 422 at
/// registration; a run input that violates it is a 422 naming each error,
/// and starts nothing; a good input starts the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_schema_guards_run_starts() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "typed", "input_schema": {"type": "bogus"},
                    "nodes": [{"id": "a", "agent": "echo"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "input_schema",
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["code"], "bad_schema", "{body}");

    env.workflow(json!({"name": "typed",
        "input_schema": {"type": "object", "required": ["repo"],
                         "properties": {"repo": {"type": "string"}, "n": {"type": "integer"}}},
        "nodes": [{"id": "a", "agent": "echo", "input": {"repo": "{{run.input.repo}}"}}]}))
        .await;
    let (status, body) = env
        .post("/v1/workflows/typed/runs", &json!({"input": {"n": "x"}}))
        .await;
    assert_eq!(status, 422, "{body}");
    let details = body["error"]["details"].as_array().expect("details");
    assert!(
        details.iter().all(|d| d["code"] == "schema_violation"),
        "{body}"
    );
    let fields: Vec<&str> = details.iter().filter_map(|d| d["field"].as_str()).collect();
    assert!(fields.contains(&"input"), "the missing repo: {body}");
    assert!(fields.contains(&"input.n"), "n is not an integer: {body}");
    let (_, runs) = env.get("/v1/runs?workflow=typed").await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");

    let id = env.start("typed", json!({"repo": "x/y"})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
}

/// A run's output: the workflow's `output` template once the run succeeds
/// (a skipped node's output reads as null); without one, each leaf node's
/// output by id; nothing while the run has not succeeded; a template naming
/// an unknown node is a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_output_is_rendered_when_it_succeeds() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "shaped",
        "output": {"fixed": "{{fix.output}}", "verdict": "{{review.status}}", "repo": "{{run.input.repo}}"},
        "nodes": [
            {"id": "review", "agent": "echo", "input": {"ok": true}},
            {"id": "fix", "agent": "echo", "depends_on": ["review"], "when": "input.fix"}
        ]}))
    .await;
    let id = env
        .start("shaped", json!({"repo": "x/y", "fix": false}))
        .await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["output"],
        json!({"fixed": null, "verdict": "succeeded", "repo": "x/y"}),
        "{run:#}"
    );

    env.workflow(json!({"name": "leaves", "nodes": [
        {"id": "a", "agent": "echo", "input": {"n": 1}},
        {"id": "b", "agent": "echo", "depends_on": ["a"], "input": {"n": 2}},
        {"id": "c", "agent": "echo", "depends_on": ["a"], "input": {"n": 3}}
    ]}))
    .await;
    let id = env.start("leaves", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(
        run["output"],
        json!({"b": {"n": 2}, "c": {"n": 3}}),
        "{run:#}"
    );

    env.workflow(json!({"name": "broken-out", "nodes": [
        {"id": "a", "agent": "fail", "input": {"exit_code": 78}}
    ]}))
    .await;
    let id = env.start("broken-out", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["output"], serde_json::Value::Null, "{run:#}");

    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "bad-out", "output": {"x": "{{ghost.output}}"},
                    "nodes": [{"id": "a", "agent": "echo"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "output.x", "{body}");
}
