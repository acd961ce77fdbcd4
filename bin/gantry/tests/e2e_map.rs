//! `for_each` through the real `gantry dev` process (SPEC 2.1): sizes 0,
//! 1 and 1,000, too many items, the output in item order although
//! instances finish out of order, `max_parallel` measured from the stored
//! attempts, a failing instance named by index and retried alone, the
//! instances route, the registration 422s, and each instance's own
//! approval gate.

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// `src` echoes the run input; `m` maps over its `items` with `agent`;
/// `j` echoes the array.
fn mapped(name: &str, agent: &str, extra: Value) -> Value {
    let mut m = json!({"id": "m", "agent": agent, "depends_on": ["src"],
                       "for_each": "{{src.output.items}}", "input": "{{item}}"});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    json!({"name": name, "nodes": [
        {"id": "src", "agent": "echo", "input": {"items": "{{run.input.items}}"}},
        m,
        {"id": "j", "agent": "echo", "depends_on": ["m"], "input": {"all": "{{m.output}}"}},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_of_0_1_and_1000_items_output_their_instances_in_order() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(mapped(
        "mapped",
        "echo",
        json!({"input": {"v": "{{item}}", "i": "{{index}}"}}),
    ))
    .await;
    for n in [0usize, 1, 1000] {
        let items: Vec<Value> = (0..n).map(|i| json!(format!("x{i}"))).collect();
        let id = env.start("mapped", json!({ "items": items })).await;
        let run = env.wait_run(&id, RUN_TIMEOUT).await;
        assert_eq!(run["status"], "succeeded", "{n} items: {run:#}");
        let want: Vec<Value> = (0..n)
            .map(|i| json!({"v": format!("x{i}"), "i": i}))
            .collect();
        let m = node_of(&run, "m");
        assert_eq!(m["output"], Value::Array(want.clone()), "{n} items");
        assert_eq!(m["instances"]["total"], json!(n), "{m:#}");
        if n > 0 {
            assert_eq!(m["instances"]["succeeded"], json!(n), "{m:#}");
        }
        // The node detail counts the same, from that node's slots alone.
        let (status, detail) = env.get(&format!("/v1/runs/{id}/nodes/m")).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["instances"], m["instances"], "{n} items: {detail:#}");
        assert_eq!(node_of(&run, "j")["output"], json!({ "all": want }));
        // Instances are not nodes of the run.
        assert_eq!(run["nodes"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_items_or_not_an_array_fails_the_node_clearly() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(mapped("big", "noop", json!({"max_items": 10000})))
        .await;
    let id = env.start("big", json!({ "items": vec![0; 10_001] })).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed");
    let m = node_of(&run, "m");
    assert_eq!(m["status"], "failed");
    assert_eq!(
        m["error"],
        "for_each resolved to 10001 items, more than max_items (10000)"
    );
    assert_eq!(node_of(&run, "j")["skip_reason"], "upstream_failed");

    let id = env.start("big", json!({ "items": {"a": 1} })).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(
        node_of(&run, "m")["error"],
        "for_each resolved to an object, not an array"
    );
}

/// Sleeps of decreasing length finish in the reverse of item order; at
/// most two at a time run, by the stored attempt times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_keeps_item_order_and_max_parallel_holds() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(mapped("ordered", "sleep", json!({}))).await;
    env.workflow(mapped("narrow", "sleep", json!({"max_parallel": 2})))
        .await;
    let items: Vec<Value> = (0..8).map(|i| json!({"ms": 40 * (8 - i)})).collect();
    for wf in ["ordered", "narrow"] {
        let id = env.start(wf, json!({ "items": items })).await;
        let run = env.wait_run(&id, RUN_TIMEOUT).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        let want: Vec<Value> = (0..8).map(|i| json!({"slept_ms": 40 * (8 - i)})).collect();
        assert_eq!(node_of(&run, "m")["output"], Value::Array(want), "{wf}");
        let peak = peak_overlap(&env, &id).await;
        if wf == "narrow" {
            assert!(peak <= 2, "max_parallel 2 exceeded: {peak} at once");
        } else {
            assert!(peak > 2, "without a bound instances overlap: {peak}");
        }
    }
}

/// Most instance attempts of run `id` whose stored [start, finish]
/// intervals overlap at one instant.
async fn peak_overlap(env: &Env, id: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(&env.db_url).await.unwrap();
    let rows: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8
         FROM attempts WHERE run_id = $1::uuid AND idx >= $2",
    )
    .bind(id)
    .bind(gantry_dag::FIRST_SLOT as i32)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    rows.iter()
        .map(|(s, _)| rows.iter().filter(|(s2, f2)| s2 <= s && s < f2).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_fails_the_node_by_index_and_retry_reruns_only_it() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(mapped("flaky", "sleep", json!({}))).await;
    let items = json!([{"ms": 1}, {"ms": "bad"}, {"ms": 1}]);
    let id = env.start("flaky", json!({ "items": items })).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let m = node_of(&run, "m");
    let error = m["error"].as_str().unwrap();
    assert!(
        error.starts_with("instance 1 failed: sleep: input field ms"),
        "{error}"
    );
    assert_eq!(m["instances"]["failed"], 1, "{m:#}");
    assert_eq!(m["instances"]["succeeded"], 2, "{m:#}");

    // The instances route: index order, status filter, paging.
    let (status, page) = env
        .get(&format!("/v1/runs/{id}/nodes/m/instances?limit=2"))
        .await;
    assert_eq!(status, 200, "{page}");
    let indexes: Vec<&Value> = page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["index"])
        .collect();
    assert_eq!(indexes, [&json!(0), &json!(1)]);
    assert_eq!(page["instances"][1]["item"], json!({"ms": "bad"}));
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = env
        .get(&format!(
            "/v1/runs/{id}/nodes/m/instances?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(page["instances"][0]["index"], 2);
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, failed) = env
        .get(&format!("/v1/runs/{id}/nodes/m/instances?status=failed"))
        .await;
    assert_eq!(failed["instances"].as_array().unwrap().len(), 1);
    assert_eq!(failed["instances"][0]["index"], 1);
    for bad in ["status=sideways", "limit=0", "cursor=zz"] {
        let (status, body) = env
            .get(&format!("/v1/runs/{id}/nodes/m/instances?{bad}"))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = env.get(&format!("/v1/runs/{id}/nodes/src/instances")).await;
    assert_eq!(status, 404, "src is not a for_each node");

    // Retry runs instance 1 again, and only it.
    let (status, body) = env.post(&format!("/v1/runs/{id}/retry"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed");
    let (_, all) = env.get(&format!("/v1/runs/{id}/nodes/m/instances")).await;
    let attempts: Vec<&Value> = all["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["attempts"])
        .collect();
    assert_eq!(attempts, [&json!(1), &json!(2), &json!(1)], "{all:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_for_each_definitions_are_422s_naming_each_field() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    let (status, body) = env
        .post("/v1/workflows", &json!({"name": "bad", "nodes": [
            {"id": "a", "agent": "echo"},
            {"id": "b", "agent": "echo", "depends_on": ["a"], "for_each": "items: {{a.output}}"},
            {"id": "c", "agent": "echo", "for_each": "{{b.output}}", "max_items": 10001},
            {"id": "d", "agent": "echo", "max_parallel": 2, "input": {"x": "{{item.k}}"}},
            {"id": "e", "agent": "echo", "for_each": "{{run.input.xs}}", "max_parallel": 0}
        ]}))
        .await;
    assert_eq!(status, 422, "{body}");
    common::assert_problems(
        &body,
        &[
            ("nodes[1].for_each", "bad_for_each"),
            ("nodes[2].max_items", "bad_value"),
            ("nodes[2].for_each", "template_not_ancestor"),
            ("nodes[3].max_parallel", "bad_value"),
            ("nodes[3].input.x", "bad_template"),
            ("nodes[4].max_parallel", "bad_value"),
        ],
    );
}

/// The indexes of `m`'s instances of run `id` in `status`.
async fn indexes_in(env: &Env, id: &str, status: &str) -> Vec<u64> {
    let (code, page) = env
        .get(&format!("/v1/runs/{id}/nodes/m/instances?status={status}"))
        .await;
    assert_eq!(code, 200, "{page}");
    page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_u64().unwrap())
        .collect()
}

/// A workflow whose map node runs `echo` behind an approval gate.
async fn gated_env(env: &Env) {
    env.builtin_agents().await;
    env.agent(
        json!({"name": "gated-echo", "runtime": "builtin", "builtin": "echo",
                     "approval": "required", "timeout_s": 30}),
    )
    .await;
    env.workflow(mapped("gated", "gated-echo", json!({}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_of_a_gated_map_waits_for_its_own_approval() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    gated_env(&env).await;
    let id = env.start("gated", json!({"items": ["a", "b", "c"]})).await;
    let run = env
        .wait_node(&id, "m", "waiting_approval", RUN_TIMEOUT)
        .await;
    let m = node_of(&run, "m");
    assert_eq!(m["instances"]["waiting_approval"], 3, "{m:#}");
    assert_eq!(indexes_in(&env, &id, "waiting_approval").await, [0, 1, 2]);

    // Bad indexes name the field; a node without for_each takes none.
    for (path, code) in [
        ("m/approve?index=abc", 422),
        ("m/approve?index=-1", 422),
        ("src/approve?index=0", 422),
        ("m/approve?index=7", 409),
    ] {
        let (status, body) = env
            .post(&format!("/v1/runs/{id}/nodes/{path}"), &json!({}))
            .await;
        assert_eq!(status, code, "{path}: {body}");
    }
    let (_, body) = env
        .post(
            &format!("/v1/runs/{id}/nodes/m/approve?index=abc"),
            &json!({}),
        )
        .await;
    assert_eq!(body["error"]["details"][0]["field"], "index", "{body}");

    // Approving instance 1 runs it alone.
    let (status, body) = env
        .post(
            &format!("/v1/runs/{id}/nodes/m/approve?index=1"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    common::eventually("instance 1 to succeed", RUN_TIMEOUT, || async {
        let done = indexes_in(&env, &id, "succeeded").await;
        if done == [1] {
            Ok(())
        } else {
            Err(json!(done))
        }
    })
    .await;
    assert_eq!(indexes_in(&env, &id, "waiting_approval").await, [0, 2]);
    let (status, body) = env
        .post(
            &format!("/v1/runs/{id}/nodes/m/approve?index=1"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "instance 1 no longer waits: {body}");

    // Approving the node approves every instance still waiting.
    let (status, body) = env
        .post(&format!("/v1/runs/{id}/nodes/m/approve"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "m")["output"], json!(["a", "b", "c"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_one_instance_fails_the_node_by_its_index_and_cancels_the_waiting_ones() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    gated_env(&env).await;
    let id = env.start("gated", json!({"items": [1, 2, 3]})).await;
    env.wait_node(&id, "m", "waiting_approval", RUN_TIMEOUT)
        .await;
    let (status, body) = env
        .post(&format!("/v1/runs/{id}/nodes/m/reject?index=2"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let m = node_of(&run, "m");
    assert_eq!(m["error"], "instance 2 failed: rejected", "{m:#}");
    assert_eq!(indexes_in(&env, &id, "failed").await, [2]);
    assert_eq!(indexes_in(&env, &id, "cancelled").await, [0, 1]);
    assert_eq!(node_of(&run, "j")["status"], "skipped");
}
