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

/// A job whose agent kills its worker on every try goes dead after its
/// tries (no endless loop), is listed with why, and a replay (once the
/// agent is fixed) runs it to success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_kills_its_workers_goes_dead_and_replay_brings_it_back() {
    let mut env = Env::new().await;
    let lease = [("GANTRY_LEASE_MS", "1000")];
    let _api = env.serve("api", &lease).await;
    let _coordinator = env.coordinator("coord-poison", &lease).await;
    let (id, fixed) = env.start_poisoned().await;

    // Keep a worker running: each one the job reaches dies (bounded). The
    // agent runs as the worker's user, or it could not kill it.
    let user = Env::own_user();
    let worker_env = [
        ("GANTRY_LEASE_MS", "1000"),
        ("GANTRY_DOCKER", "off"),
        ("GANTRY_PROCESS_USER", user.as_str()),
    ];
    let mut worker = env.worker("poison-w0", &worker_env).await;
    let mut deaths = 0;
    let deadline = std::time::Instant::now() + TIMEOUT;
    let run = loop {
        let run = env.run(&id).await;
        if run["status"] != "running" {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run never ended: {run:#}"
        );
        if worker.try_exit().is_some() {
            deaths += 1;
            assert!(deaths <= 5, "the job kept killing workers: {run:#}");
            worker = env.worker(&format!("poison-w{deaths}"), &worker_env).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(deaths, 2, "one dead worker per try, two tries");
    assert_eq!(node_of(&run, "p")["attempts"], 2, "{run:#}");
    assert_eq!(node_of(&run, "q")["status"], "skipped", "{run:#}");

    let (status, dead) = env.get("/v1/queues/default/jobs?state=dead").await;
    assert_eq!(status, 200, "{dead}");
    let job = format!("{id}:0");
    let listed = dead["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["id"] == job.as_str()))
        .unwrap_or_else(|| panic!("{job} is not listed dead: {dead}"));
    assert_eq!(listed["deliveries"], 2, "{listed}");
    assert!(
        listed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("lease expired"),
        "{listed}"
    );

    std::fs::write(&fixed, "").expect("fix the agent");
    let (status, body) = env
        .post(&format!("/v1/queues/default/dead/{job}/replay"), &json!({}))
        .await;
    assert_eq!(status, 200, "replay: {body}");
    let run = env.wait_run(&id, TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "q")["output"], json!({"after": true}));
    let (_, dead) = env.get("/v1/queues/default/jobs?state=dead").await;
    assert_eq!(dead["jobs"], json!([]), "replayed jobs leave the dead list");
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// A worker frozen mid-attempt loses its lease; another worker runs the
/// node again; when the frozen one wakes, its late result is rejected
/// (fencing by attempt) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_workers_late_result_is_rejected() {
    let mut env = Env::new().await;
    let lease = [("GANTRY_LEASE_MS", "1000")];
    let _api = env.serve("api", &lease).await;
    let _coordinator = env.coordinator("coord-stale", &lease).await;
    let script = env.script(
        "slow.sh",
        "cat >/dev/null\nsleep 2\necho \"{\\\"attempt\\\": $GANTRY_ATTEMPT}\"",
    );
    env.builtin_agents().await;
    env.agent(json!({
        "name": "slow", "runtime": "process", "command": [script.to_str().unwrap()],
        "timeout_s": 20,
        "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 200, "multiplier": 2.0}
    }))
    .await;
    env.workflow(json!({"name": "stale", "nodes": [
        {"id": "s", "agent": "slow"},
        {"id": "t", "agent": "echo", "depends_on": ["s"], "input": {"got": "{{s.output.attempt}}"}}
    ]}))
    .await;
    let worker_env = [("GANTRY_LEASE_MS", "1000"), ("GANTRY_DOCKER", "off")];
    let mut frozen = env.worker("stale-a", &worker_env).await;
    let id = env.start("stale", json!({})).await;
    env.wait_node(&id, "s", "running", TIMEOUT).await;
    // Freeze the worker (not its agent): its lease renewals stop.
    signal(frozen.pid(), "-STOP");
    let _fresh = env.worker("stale-b", &worker_env).await;
    let run = env.wait_run(&id, TIMEOUT).await;
    signal(frozen.pid(), "-CONT");
    frozen.wait_log("late results rejected", TIMEOUT).await;

    let after = env.run(&id).await;
    assert_eq!(after["status"], "succeeded", "{after:#}");
    assert_eq!(after, run, "the late result changed nothing");
    assert_eq!(
        node_of(&after, "s")["output"],
        json!({"attempt": 2}),
        "{after:#}"
    );
    assert_eq!(
        node_of(&after, "t")["output"],
        json!({"got": 2}),
        "{after:#}"
    );
    let detail = env.node(&id, "s").await;
    let attempts = detail["attempts_detail"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{detail:#}");
    assert_eq!(attempts[0]["worker"], "stale-a", "{detail:#}");
    assert_eq!(attempts[0]["status"], "failed", "{detail:#}");
    assert_eq!(attempts[0]["error"], "lease expired", "{detail:#}");
    assert_eq!(attempts[1]["worker"], "stale-b", "{detail:#}");
    assert_eq!(attempts[1]["status"], "succeeded", "{detail:#}");
}
