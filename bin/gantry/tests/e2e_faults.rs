//! Guarantees of SPEC section 5 under injected faults, on real processes:
//! Redis losing every delivery mid-run, and a coordinator SIGKILLed mid-run.
//! Each checks the outcome: every run finishes with the right outputs and
//! no node ran twice.

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A chain a -> b -> c -> d and a fan e, f, g joining into h, each a
/// `sleep` of `ms`, with h's input built from upstream outputs.
fn workflow(name: &str, ms: u64) -> Value {
    let sleep = |id: &str, deps: &[&str]| json!({"id": id, "agent": "sleep", "depends_on": deps, "input": {"ms": ms}});
    json!({"name": name, "nodes": [
        sleep("a", &[]), sleep("b", &["a"]), sleep("c", &["b"]), sleep("d", &["c"]),
        sleep("e", &[]), sleep("f", &[]), sleep("g", &[]),
        {"id": "h", "agent": "echo", "depends_on": ["d", "e", "f", "g"],
         "input": {"d": "{{d.output.slept_ms}}", "sum": "{{e.output.slept_ms}}+{{f.output.slept_ms}}"}}
    ]})
}

/// Every node succeeded exactly once, with the output its agent computes.
fn assert_finished_right(run: &Value, ms: u64) {
    assert_eq!(run["status"], "succeeded", "{run:#}");
    for id in ["a", "b", "c", "d", "e", "f", "g"] {
        let n = node_of(run, id);
        assert_eq!(n["output"], json!({"slept_ms": ms}), "{id}: {run:#}");
        assert_eq!(n["attempts"], 1, "{id} ran more than once: {run:#}");
    }
    let h = node_of(run, "h");
    assert_eq!(
        h["output"],
        json!({"d": ms, "sum": format!("{ms}+{ms}")}),
        "{run:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_finish_right_after_redis_loses_every_delivery() {
    let mut env = Env::new().await;
    // Two slots for twelve roots: most jobs wait in Redis when it is wiped.
    let _dev = env.dev(&[("GANTRY_CONCURRENCY", "2")]).await;
    env.builtin_agents().await;
    env.workflow(workflow("flushed", 400)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(env.start("flushed", json!({})).await);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, queues) = env.get("/v1/queues").await;
    assert_eq!(status, 200, "{queues}");
    let waiting = queues["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == "default"))
        .map_or(0, |q| q["ready"].as_u64().unwrap_or(0));
    assert!(waiting >= 4, "jobs were waiting to be lost: {queues}");
    let flushed = env.flush_redis().await;
    assert!(flushed > 0, "there were deliveries to lose");
    for id in &ids {
        let run = env.wait_run(id, TIMEOUT).await;
        assert_finished_right(&run, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_finishes_after_its_coordinator_is_killed() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    // Workers leave every result to the coordinators, so the kill matters.
    let _worker = env
        .worker(
            "w-fault",
            &[("GANTRY_INLINE_ADVANCE", "false"), ("GANTRY_DOCKER", "off")],
        )
        .await;
    let mut first = env.coordinator("coord-a", &[]).await;
    env.builtin_agents().await;
    env.workflow(workflow("orphaned", 300)).await;
    let id = env.start("orphaned", json!({})).await;
    env.wait_node(&id, "b", "succeeded", TIMEOUT).await;
    first.kill();
    // Results land while no coordinator runs; nothing advances them.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stalled = env.run(&id).await;
    assert_eq!(stalled["status"], "running", "{stalled:#}");
    let _second = env.coordinator("coord-b", &[]).await;
    let run = env.wait_run(&id, TIMEOUT).await;
    assert_finished_right(&run, 300);
}
