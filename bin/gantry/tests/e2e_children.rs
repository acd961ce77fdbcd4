//! `workflow` nodes through the real `gantry dev` process (SPEC 2.1): the
//! node's output is the child run's output and the child names its parent;
//! a child's failure fails the node; cancelling the parent cancels its
//! children; nesting past the depth bound fails clearly; a `for_each` over
//! a workflow starts one child per item; retrying the parent re-runs only
//! the failed children; and registration refuses unknown children.

mod common;

use common::{eventually, node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// `inner` echoes `repo` and outputs `{"got": REPO}`.
fn inner() -> Value {
    json!({"name": "inner", "output": {"got": "{{a.output.repo}}"}, "nodes": [
        {"id": "a", "agent": "echo", "input": {"repo": "{{run.input.repo}}"}},
    ]})
}

async fn children(env: &Env, parent: &str) -> Vec<Value> {
    let (status, body) = env.get(&format!("/v1/runs?parent={parent}")).await;
    assert_eq!(status, 200, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_runs_output_is_the_nodes_output_and_names_its_parent() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(inner()).await;
    env.workflow(json!({"name": "outer", "nodes": [
        {"id": "kid", "workflow": "inner", "input": {"repo": "{{run.input.repo}}"}},
        {"id": "after", "agent": "echo", "depends_on": ["kid"], "input": {"k": "{{kid.output}}"}},
    ]}))
    .await;
    let id = env.start("outer", json!({"repo": "x/y"})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "kid")["output"], json!({"got": "x/y"}));
    assert_eq!(
        node_of(&run, "after")["output"],
        json!({"k": {"got": "x/y"}})
    );
    assert_eq!(run["parent"], Value::Null);

    let kids = children(&env, &id).await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    let child_id = kids[0]["id"].as_str().unwrap().to_owned();
    let child = env.run(&child_id).await;
    assert_eq!(child["status"], "succeeded");
    assert_eq!(child["workflow"], "inner");
    assert_eq!(child["output"], json!({"got": "x/y"}));
    assert_eq!(child["input"], json!({"repo": "x/y"}));
    assert_eq!(
        child["parent"],
        json!({"run": id, "node": "kid", "index": null})
    );
    let kid = env.node(&id, "kid").await;
    assert_eq!(kid["child_runs"], json!([child_id]), "{kid:#}");
    assert_eq!(kid["attempts_detail"][0]["worker"], "workflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_child_fails_its_node_and_the_run() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "breaks", "nodes": [
        {"id": "boom", "agent": "fail", "input": {"exit_code": 78}},
    ]}))
    .await;
    env.workflow(json!({"name": "calls-breaks", "nodes": [
        {"id": "kid", "workflow": "breaks"},
        {"id": "next", "agent": "echo", "depends_on": ["kid"]},
        {"id": "alert", "agent": "echo", "depends_on": ["kid"], "trigger_rule": "one_failed",
         "input": {"why": "{{kid.error}}"}},
    ]}))
    .await;
    let id = env.start("calls-breaks", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let kid = node_of(&run, "kid");
    assert_eq!(kid["status"], "failed");
    let error = kid["error"].as_str().unwrap();
    let child_id = children(&env, &id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with(&format!(
            "child run {child_id} failed: node \"boom\" failed:"
        )),
        "{error}"
    );
    assert_eq!(node_of(&run, "next")["skip_reason"], "upstream_failed");
    assert_eq!(node_of(&run, "alert")["status"], "succeeded");
    assert_eq!(node_of(&run, "alert")["output"], json!({"why": error}));
    assert_eq!(env.run(&child_id).await["status"], "failed");

    // `gantry runs show` prints the skip reasons and the child runs.
    let (code, out, err) = env.cli(&["runs", "show", &id], RUN_TIMEOUT).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.contains("next")
            && l.contains("skipped")
            && l.contains("(upstream_failed)")),
        "{out}"
    );
    assert!(out.contains("child runs (1):"), "{out}");
    assert!(out.contains(&format!("{child_id} breaks failed")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_parent_cancels_its_children() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "slow", "nodes": [
        {"id": "nap", "agent": "sleep", "input": {"ms": 20000}},
        {"id": "then", "agent": "echo", "depends_on": ["nap"]},
    ]}))
    .await;
    env.workflow(json!({"name": "waits", "nodes": [
        {"id": "kid", "workflow": "slow"},
    ]}))
    .await;
    let id = env.start("waits", json!({})).await;
    let child_id = eventually("the child to start", RUN_TIMEOUT, || async {
        match children(&env, &id).await.first() {
            Some(c) => Ok(c["id"].as_str().unwrap().to_owned()),
            None => Err(json!("no child yet")),
        }
    })
    .await;
    env.wait_node(&child_id, "nap", "running", RUN_TIMEOUT)
        .await;
    let (status, body) = env.post(&format!("/v1/runs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let child = env.wait_run(&child_id, RUN_TIMEOUT).await;
    assert_eq!(child["status"], "cancelled", "{child:#}");
    assert_eq!(node_of(&child, "then")["status"], "cancelled");
    let run = env.run(&id).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(node_of(&run, "kid")["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_past_the_depth_bound_fails_the_node_clearly() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    // A workflow that starts itself: the bound stops it.
    env.workflow(json!({"name": "rec", "nodes": [{"id": "deeper", "workflow": "rec"}]}))
        .await;
    let id = env.start("rec", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    // Depths 0 (the top run) to 8; the run at 8 could not go on.
    let mut chain = vec![id.clone()];
    for _ in 0..8 {
        let kids = children(&env, chain.last().unwrap()).await;
        assert_eq!(kids.len(), 1, "one child per level: {kids:?}");
        chain.push(kids[0]["id"].as_str().unwrap().to_owned());
    }
    let deepest = chain.last().unwrap();
    assert!(children(&env, deepest).await.is_empty());
    let run = env.run(deepest).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(
        node_of(&run, "deeper")["error"],
        "child workflow \"rec\" not started: child runs nest at most 8 deep"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_for_each_over_a_workflow_starts_one_child_per_item() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(inner()).await;
    env.workflow(json!({"name": "fan", "nodes": [
        {"id": "each", "workflow": "inner", "version": 1, "for_each": "{{run.input.repos}}",
         "max_parallel": 2, "input": {"repo": "{{item}}"}},
    ]}))
    .await;
    let id = env
        .start("fan", json!({"repos": ["a", "b", "c", "d", "e"]}))
        .await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let want: Vec<Value> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|r| json!({"got": r}))
        .collect();
    assert_eq!(node_of(&run, "each")["output"], Value::Array(want));
    assert_eq!(
        run["output"],
        json!({"each": node_of(&run, "each")["output"]})
    );
    assert_eq!(children(&env, &id).await.len(), 5);
    let each = env.node(&id, "each").await;
    assert_eq!(each["instances"]["succeeded"], 5, "{each:#}");
    assert_eq!(each["child_runs"].as_array().map(Vec::len), Some(5));
    let (status, page) = env
        .get(&format!("/v1/runs/{id}/nodes/each/instances"))
        .await;
    assert_eq!(status, 200, "{page}");
    for (i, inst) in page["instances"].as_array().unwrap().iter().enumerate() {
        let child = inst["child_run"].as_str().expect("child run");
        let child = env.run(child).await;
        assert_eq!(
            child["parent"],
            json!({"run": id, "node": "each", "index": i})
        );
        let repo = ["a", "b", "c", "d", "e"][i];
        assert_eq!(child["input"], json!({ "repo": repo }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_the_parent_re_runs_only_the_failed_children() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "maybe", "nodes": [
        {"id": "check", "agent": "fail", "when": "input.bad", "input": {"exit_code": 78}},
    ]}))
    .await;
    env.workflow(json!({"name": "some-fail", "nodes": [
        {"id": "each", "workflow": "maybe", "for_each": "{{run.input.items}}", "input": "{{item}}"},
    ]}))
    .await;
    let id = env
        .start(
            "some-fail",
            json!({"items": [{"bad": false}, {"bad": true}, {"bad": false}]}),
        )
        .await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = node_of(&run, "each")["error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("instance 1 failed: child run "),
        "{error}"
    );
    let before: Vec<Value> = {
        let mut kids = children(&env, &id).await;
        kids.sort_by_key(|k| k["id"].as_str().unwrap().to_owned());
        kids
    };
    assert_eq!(before.len(), 3);

    let (status, body) = env.post(&format!("/v1/runs/{id}/retry"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let failed_child = eventually("the failed child to run again", RUN_TIMEOUT, || async {
        for k in &before {
            let id = k["id"].as_str().unwrap();
            let check = env.node(id, "check").await;
            if check["attempts_detail"].as_array().map_or(0, Vec::len) == 2 {
                return Ok(id.to_owned());
            }
        }
        Err(json!("no child has a second attempt"))
    })
    .await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed");
    let mut after = children(&env, &id).await;
    after.sort_by_key(|k| k["id"].as_str().unwrap().to_owned());
    assert_eq!(after.len(), 3, "retry made no new child run: {after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["id"], a["id"]);
        if b["id"] != failed_child.as_str() {
            // Succeeded children were left alone.
            assert_eq!(b["status"], "succeeded");
            assert_eq!(b["finished_at"], a["finished_at"], "{b} then {a}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_unknown_children_and_waits_with_for_each() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(inner()).await;
    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "bad", "nodes": [
                {"id": "a", "workflow": "nope"},
                {"id": "b", "workflow": "inner", "version": 2},
                {"id": "c", "agent": "echo", "workflow": "inner"},
                {"id": "d", "wait": {"event": "ci.finished"}, "for_each": "{{run.input.x}}"},
            ]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    common::assert_problems(
        &body,
        &[
            ("nodes[0].workflow", "unknown_workflow"),
            ("nodes[1].version", "unknown_workflow"),
            ("nodes[2]", "bad_value"),
            ("nodes[3].for_each", "bad_for_each"),
        ],
    );
}

/// A `workflow` slot committed as queued whose child start never happened
/// (the process died between commit and delivery) is started by the
/// reconciler. The lost start is made by hand: the first child is deleted
/// and the slot set back to queued, never claimed, an hour ago.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_slot_whose_start_was_lost_is_started_by_the_reconciler() {
    use sqlx::Connection;
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.agent(
        json!({"name": "gate", "runtime": "builtin", "builtin": "echo",
                     "approval": "required"}),
    )
    .await;
    env.workflow(json!({"name": "gated-inner", "nodes": [{"id": "g", "agent": "gate"}]}))
        .await;
    env.workflow(json!({"name": "outer-lost", "nodes": [
        {"id": "kid", "workflow": "gated-inner"},
    ]}))
    .await;
    let id = env.start("outer-lost", json!({})).await;
    let first = eventually("the first child", RUN_TIMEOUT, || async {
        match children(&env, &id).await.first() {
            Some(c) => Ok(c["id"].as_str().unwrap().to_owned()),
            None => Err(json!("no child yet")),
        }
    })
    .await;

    let mut db = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect to the test database");
    let parent: uuid::Uuid = id.parse().unwrap();
    let child: uuid::Uuid = first.parse().unwrap();
    sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(child)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM attempts WHERE run_id = $1")
        .bind(parent)
        .execute(&mut db)
        .await
        .unwrap();
    let reset = sqlx::query(
        "UPDATE nodes SET status = 'queued', attempt = 0, tries = 0, started_at = NULL,
                          queued_at = now() - interval '1 hour'
         WHERE run_id = $1 AND node_id = 'kid' AND status = 'running'",
    )
    .bind(parent)
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(
        reset.rows_affected(),
        1,
        "the slot was running its first child"
    );

    let second = eventually("a child started again", RUN_TIMEOUT, || async {
        let kids = children(&env, &id).await;
        match kids.first() {
            Some(c) if c["id"] != first.as_str() => Ok(c["id"].as_str().unwrap().to_owned()),
            _ => Err(json!(kids)),
        }
    })
    .await;
    env.wait_node(&second, "g", "waiting_approval", RUN_TIMEOUT)
        .await;
    let (status, body) = env
        .post(&format!("/v1/runs/{second}/nodes/g/approve"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "kid")["attempts"], 1, "{run:#}");
    assert_eq!(children(&env, &id).await.len(), 1, "exactly one child");
}
