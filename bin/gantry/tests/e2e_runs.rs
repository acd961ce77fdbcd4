//! End-to-end tests of runs through the real `gantry dev` process: the CLI
//! example, cancel, retry, idempotency, a missing template path and bad
//! requests on the real socket.

mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The README example through the CLI: apply agents and the diamond, start
/// with `--wait`, see the rendered report; a failing run exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_example_diamond_and_failing_wait() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    let examples = common::repo_root().join("examples");
    let agents = examples.join("agents.json");
    let diamond = examples.join("diamond.json");
    let t = Duration::from_secs(30);

    let (code, out, err) = env
        .cli(&["agents", "apply", "-f", agents.to_str().unwrap()], t)
        .await;
    assert_eq!(code, 0, "agents apply: {out}{err}");
    assert!(out.contains("agents/echo"), "agents apply output: {out}");
    let (code, out, err) = env
        .cli(&["workflows", "apply", "-f", diamond.to_str().unwrap()], t)
        .await;
    assert_eq!(code, 0, "workflows apply: {out}{err}");
    assert!(
        out.contains("workflows/diamond version 1"),
        "workflows apply output: {out}"
    );

    let (code, out, err) = env
        .cli(
            &[
                "runs",
                "start",
                "diamond",
                "--input",
                r#"{"repo":"x/y"}"#,
                "--wait",
            ],
            t,
        )
        .await;
    assert_eq!(code, 0, "runs start --wait: stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("succeeded"), "stdout: {out}");
    assert!(
        out.contains("x/y: 2 findings after linting for 50 ms"),
        "report message missing from stdout: {out}"
    );

    // The run is stored as the CLI said.
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.strip_suffix(" started"))
        .expect("`run ID started` line")
        .to_owned();
    let run = env.run(&id).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        node_of(&run, "report")["output"]["message"],
        "x/y: 2 findings after linting for 50 ms"
    );

    // A workflow that fails permanently: --wait exits non-zero.
    env.agent(json!({"name": "fail", "runtime": "builtin", "builtin": "fail"}))
        .await;
    env.workflow(json!({"name": "broken", "nodes": [
        {"id": "boom", "agent": "fail", "input": {"exit_code": 78}}
    ]}))
    .await;
    let (code, out, err) = env.cli(&["runs", "start", "broken", "--wait"], t).await;
    assert_ne!(code, 0, "a failed run must exit non-zero: {out}{err}");
    assert!(out.contains("failed"), "stdout: {out}");
}

/// Cancel while the root runs: the run, the running node and its pending
/// dependent all end `cancelled`; nothing starts afterwards; a second
/// cancel is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_running_and_pending_nodes() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "slow", "nodes": [
        {"id": "a", "agent": "sleep", "input": {"ms": 5000}},
        {"id": "b", "agent": "echo", "depends_on": ["a"], "input": {"after": "{{a.output}}"}}
    ]}))
    .await;
    let id = env.start("slow", json!({})).await;
    env.wait_node(&id, "a", "running", Duration::from_secs(15))
        .await;

    let (status, body) = env.post(&format!("/v1/runs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "cancel: {body}");
    assert_eq!(body["status"], "cancelled", "cancel answer: {body:#}");

    // Past the point where `a` would have been stopped and `b` started.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let run = env.run(&id).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let a = node_of(&run, "a");
    assert_eq!(a["status"], "cancelled", "{run:#}");
    let b = node_of(&run, "b");
    assert_eq!(b["status"], "cancelled", "{run:#}");
    assert_eq!(b["attempts"], 0, "b must never start: {run:#}");
    let b_detail = env.node(&id, "b").await;
    assert_eq!(b_detail["attempts_detail"], json!([]), "{b_detail:#}");

    let (status, body) = env.post(&format!("/v1/runs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "second cancel: {body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert_eq!(env.run(&id).await["status"], "cancelled");
}

/// Retry re-runs only failed, cancelled and skipped nodes; succeeded nodes
/// keep their single attempt and output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_reruns_only_unsuccessful_nodes() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    let marker = env.dir.path().join("fixed");
    let script = env.script(
        "gate.sh",
        &format!(
            "cat >/dev/null\nif [ -f '{}' ]; then echo '{{\"fixed\": true, \"n\": 7}}'; exit 0; fi\n\
             echo 'marker missing' >&2\nexit 78",
            marker.display()
        ),
    );
    env.agent(json!({
        "name": "gate", "runtime": "process", "command": [script.to_str().unwrap()],
        "timeout_s": 10,
        "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 500, "multiplier": 2.0}
    }))
    .await;
    env.workflow(json!({"name": "gated", "nodes": [
        {"id": "a", "agent": "echo", "input": {"v": "{{run.input.v}}"}},
        {"id": "b", "agent": "gate", "depends_on": ["a"], "input": {"from_a": "{{a.output}}"}},
        {"id": "c", "agent": "echo", "depends_on": ["b"], "input": {"got": "{{b.output}}", "text": "n={{b.output.n}}"}},
        {"id": "d", "agent": "echo", "input": {"alone": true}}
    ]}))
    .await;
    let id = env.start("gated", json!({"v": 42})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let status_attempts = |run: &serde_json::Value, n: &str| {
        let node = node_of(run, n);
        (node["status"].clone(), node["attempts"].clone())
    };
    assert_eq!(status_attempts(&run, "a"), (json!("succeeded"), json!(1)));
    assert_eq!(
        status_attempts(&run, "b"),
        (json!("failed"), json!(1)),
        "exit 78 is never retried: {run:#}"
    );
    assert_eq!(status_attempts(&run, "c").0, json!("skipped"));
    assert_eq!(status_attempts(&run, "d"), (json!("succeeded"), json!(1)));
    let b = env.node(&id, "b").await;
    assert_eq!(b["attempts_detail"][0]["exit_code"], 78, "{b:#}");
    let a_output = node_of(&run, "a")["output"].clone();
    let d_output = node_of(&run, "d")["output"].clone();
    assert_eq!(a_output, json!({"v": 42}));

    std::fs::write(&marker, "").expect("create marker");
    let (status, body) = env.post(&format!("/v1/runs/{id}/retry"), &json!({})).await;
    assert_eq!(status, 200, "retry: {body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(status_attempts(&run, "a"), (json!("succeeded"), json!(1)));
    assert_eq!(status_attempts(&run, "d"), (json!("succeeded"), json!(1)));
    assert_eq!(node_of(&run, "a")["output"], a_output);
    assert_eq!(node_of(&run, "d")["output"], d_output);
    assert_eq!(status_attempts(&run, "b"), (json!("succeeded"), json!(2)));
    assert_eq!(
        node_of(&run, "c")["output"],
        json!({"got": {"fixed": true, "n": 7}, "text": "n=7"})
    );
    // A succeeded run cannot be retried.
    let (status, _) = env.post(&format!("/v1/runs/{id}/retry"), &json!({})).await;
    assert_eq!(status, 409);
}

/// Idempotency-Key over real HTTP: same key and body give the same run
/// (201 then 200); the same key with another body is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_over_http() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "once", "nodes": [{"id": "a", "agent": "noop"}]}))
        .await;
    let path = "/v1/workflows/once/runs";
    let key = [("Idempotency-Key", "order-1234")];
    let body = br#"{"input": {"order": 1234}}"#.to_vec();
    let (s1, first) = env.post_raw(path, body.clone(), &key).await;
    assert_eq!(s1, 201, "{first}");
    let (s2, second) = env.post_raw(path, body, &key).await;
    assert_eq!(s2, 200, "{second}");
    assert_eq!(first["id"], second["id"]);
    assert!(first["id"].is_string(), "{first}");
    let (s3, third) = env
        .post_raw(path, br#"{"input": {"order": 9999}}"#.to_vec(), &key)
        .await;
    assert_eq!(s3, 409, "{third}");
    assert_eq!(third["error"]["code"], "conflict", "{third}");

    // Exactly one run exists, and it ran.
    let run = env
        .wait_run(first["id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(run["status"], "succeeded");
    let (status, list) = env.get("/v1/runs?workflow=once").await;
    assert_eq!(status, 200);
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(1), "{list:#}");
}

/// A template path missing at run time fails the node once, naming the
/// path, and fails the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_template_path_fails_node_without_retry() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "holes", "nodes": [
        {"id": "a", "agent": "echo", "input": {"x": "{{run.input.nope}}"}},
        {"id": "b", "agent": "echo", "depends_on": ["a"]}
    ]}))
    .await;
    let id = env.start("holes", json!({"yes": 1})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let a = node_of(&run, "a");
    assert_eq!(a["status"], "failed", "{run:#}");
    assert_eq!(a["attempts"], 1, "a missing path is not retried: {run:#}");
    let error = a["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("run.input.nope"),
        "the error should name the path: {error:?}"
    );
    assert_eq!(node_of(&run, "b")["status"], "skipped");
}

/// Bad requests through the real socket: malformed JSON, an oversized body,
/// a cycle with its details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_on_the_socket() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;

    let (status, body) = env
        .post_raw(
            "/v1/workflows",
            b"{\"name\": \"x\", \"nodes\": [".to_vec(),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");

    let big = format!(
        "{{\"name\": \"big\", \"description\": \"{}\", \"nodes\": []}}",
        "x".repeat((1 << 20) + 1)
    );
    let (status, body) = env.post_raw("/v1/workflows", big.into_bytes(), &[]).await;
    assert_eq!(status, 413, "{body}");

    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "loop", "nodes": [
                {"id": "a", "agent": "noop", "depends_on": ["b"]},
                {"id": "b", "agent": "noop", "depends_on": ["a"]},
                {"id": "c", "agent": "no-such-agent"}
            ]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let details = body["error"]["details"].as_array().expect("details");
    let text = serde_json::to_string(details).unwrap();
    assert!(text.contains("cycle"), "a cycle must be listed: {text}");
    assert!(
        text.contains("no-such-agent"),
        "every problem listed: {text}"
    );
    // Nothing was registered.
    let (status, _) = env.get("/v1/workflows/loop").await;
    assert_eq!(status, 404);
}
