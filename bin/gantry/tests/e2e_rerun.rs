//! Re-run from a node (SPEC section 4) through the real `gantry dev`
//! process and the CLI: a finished diamond re-run from a middle node keeps
//! its upstream node and the other branch (`reused: true`, no attempt),
//! runs the chosen node and its descendants again with a new input, links
//! the runs both ways; a re-run of a running run is a 409, of an unknown
//! node a 422.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_rerun_from_a_middle_node_reuses_the_rest() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "diamond", "nodes": [
        {"id": "a", "agent": "echo", "input": {"v": "a"}},
        {"id": "b", "agent": "echo", "depends_on": ["a"], "input": {"v": "{{run.input.v}}", "a": "{{a.output.v}}"}},
        {"id": "c", "agent": "echo", "depends_on": ["a"], "input": {"v": "c"}},
        {"id": "d", "agent": "echo", "depends_on": ["b", "c"], "input": {"b": "{{b.output.v}}", "c": "{{c.output.v}}"}}
    ]}))
    .await;
    let (status, run) = env
        .post(
            "/v1/workflows/diamond/runs",
            &json!({"input": {"v": "old"}, "tags": {"team": "x"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let old = run["id"].as_str().expect("id").to_owned();
    let done = env.wait_run(&old, T).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");

    let (status, body) = env
        .post(&format!("/v1/runs/{old}/rerun"), &json!({"from": ["nope"]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "from[0]", "{body}");

    let (status, answer) = env
        .post(
            &format!("/v1/runs/{old}/rerun"),
            &json!({"from": ["b"], "input": {"v": "new"}}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["rerun_of"], old.as_str(), "{answer}");
    let new = answer["id"].as_str().expect("id").to_owned();
    let rerun = env.wait_run(&new, T).await;
    assert_eq!(rerun["status"], "succeeded", "{rerun:#}");
    assert_eq!(rerun["rerun_of"], old.as_str(), "{rerun:#}");
    assert_eq!(rerun["tags"], json!({"team": "x"}), "{rerun:#}");
    for id in ["a", "c"] {
        let n = node_of(&rerun, id);
        assert_eq!(n["reused"], true, "{id}: {rerun:#}");
        assert_eq!(n["attempts"], 0, "{id}: {rerun:#}");
        assert_eq!(n["status"], "succeeded", "{id}: {rerun:#}");
        assert_eq!(
            n["output"],
            node_of(&done, id)["output"],
            "{id} keeps its output"
        );
        let detail = env.node(&new, id).await;
        assert_eq!(detail["attempts_detail"], json!([]), "{detail:#}");
    }
    for id in ["b", "d"] {
        let n = node_of(&rerun, id);
        assert_eq!(n["reused"], false, "{id}: {rerun:#}");
        assert_eq!(n["attempts"], 1, "{id}: {rerun:#}");
    }
    assert_eq!(
        node_of(&rerun, "b")["output"],
        json!({"v": "new", "a": "a"}),
        "the new input reaches the re-run node; a's reused output too"
    );
    assert_eq!(
        node_of(&rerun, "d")["output"],
        json!({"b": "new", "c": "c"}),
        "{rerun:#}"
    );
    let old_run = env.run(&old).await;
    assert_eq!(old_run["reruns"], json!([new]), "{old_run:#}");

    // The CLI re-runs too, following the new run to its end.
    let (code, out, err) = env
        .cli(&["runs", "rerun", &old, "--from", "c", "--wait"], T)
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("(a re-run of {old})")), "{out}");

    env.workflow(
        json!({"name": "slow", "nodes": [{"id": "s", "agent": "sleep", "input": {"ms": 20000}}]}),
    )
    .await;
    let slow = env.start("slow", json!({})).await;
    let (status, body) = env
        .post(&format!("/v1/runs/{slow}/rerun"), &json!({"from": ["s"]}))
        .await;
    assert_eq!(status, 409, "{body}");
}
