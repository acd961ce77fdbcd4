//! Queue and worker inspection and backpressure through real processes:
//! `GET /v1/workers` shows live workers and what they run, a stopped worker
//! leaves the list; `GET /v1/queues/{queue}/jobs` pages through waiting
//! jobs; a full queue answers 429 with `Retry-After` and drops nothing.

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn worker_ids(env: &Env) -> Vec<Value> {
    let (status, body) = env.get("/v1/workers").await;
    assert_eq!(status, 200, "{body}");
    body["workers"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_listed_with_what_they_run_and_leave_when_stopped() {
    let mut env = Env::new().await;
    // An API and coordinator without a worker, then one worker of our own.
    let _api = env.serve("api", &[]).await;
    let _coordinator = env.coordinator("coord-1", &[]).await;
    let mut worker = env
        .worker(
            "lister-1",
            &[("GANTRY_CONCURRENCY", "3"), ("GANTRY_DOCKER", "off")],
        )
        .await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "nap", "nodes": [
        {"id": "s", "agent": "sleep", "input": {"ms": 3000}}
    ]}))
    .await;
    let id = env.start("nap", json!({})).await;
    env.wait_node(&id, "s", "running", TIMEOUT).await;

    let listed = common::eventually("the worker to report its job", TIMEOUT, || async {
        let workers = worker_ids(&env).await;
        let me = workers.iter().find(|w| w["id"] == "lister-1").cloned();
        match me {
            Some(w) if w["running_count"] == 1 => Ok(w),
            _ => Err(json!(workers)),
        }
    })
    .await;
    assert_eq!(listed["queues"], json!(["default"]));
    assert_eq!(listed["concurrency"], 3);
    assert_eq!(listed["running"], json!([format!("{id}:0")]));
    assert!(listed["last_heartbeat"].is_string(), "{listed}");

    let run = env.wait_run(&id, TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    worker.term();
    worker
        .wait_exit(TIMEOUT)
        .await
        .expect("worker exits on SIGTERM");
    let workers = worker_ids(&env).await;
    assert!(
        workers.iter().all(|w| w["id"] != "lister-1"),
        "a stopped worker leaves the list: {workers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_runs_with_429_and_keeps_accepted_ones() {
    let mut env = Env::new().await;
    // Nothing pulls `parked`: its jobs wait, which is what fills it.
    let _dev = env.dev(&[("GANTRY_MAX_QUEUE_DEPTH", "3")]).await;
    env.builtin_agents().await;
    env.agent(
        json!({"name": "parked", "runtime": "builtin", "builtin": "noop", "queue": "parked"}),
    )
    .await;
    env.workflow(json!({"name": "park", "nodes": [{"id": "p", "agent": "parked"}]}))
        .await;
    env.workflow(
        json!({"name": "quick", "nodes": [{"id": "e", "agent": "echo", "input": {"x": 1}}]}),
    )
    .await;
    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push(env.start("park", json!({})).await);
    }

    let res = env
        .http
        .post(format!("{}/v1/workflows/park/runs", env.base))
        .json(&json!({"input": {}}))
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("parked"),
        "the message names the queue: {body}"
    );

    // Another queue is not affected.
    let quick = env.start("quick", json!({})).await;
    assert_eq!(env.wait_run(&quick, TIMEOUT).await["status"], "succeeded");

    // The accepted runs are all there, waiting, page by page.
    let (status, page) = env.get("/v1/queues/parked/jobs?state=ready&limit=2").await;
    assert_eq!(status, 200, "{page}");
    let mut ids: Vec<String> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["payload"]["run_id"].as_str().unwrap().to_owned())
        .collect();
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (status, page) = env
        .get(&format!(
            "/v1/queues/parked/jobs?state=ready&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    ids.extend(
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["payload"]["run_id"].as_str().unwrap().to_owned()),
    );
    assert_eq!(page["next_cursor"], Value::Null);
    ids.sort();
    accepted.sort();
    assert_eq!(ids, accepted);
    for id in &accepted {
        let run = env.run(id).await;
        assert_eq!(node_of(&run, "p")["status"], "queued", "{run:#}");
    }

    let (status, body) = env.get("/v1/queues/parked/jobs?state=sideways").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "state", "{body}");
    let (status, body) = env.get("/v1/queues/parked/jobs?state=dead").await;
    assert_eq!((status, body["jobs"].clone()), (200, json!([])), "{body}");
    let (status, body) = env
        .post("/v1/queues/parked/dead/nothing-here/replay", &json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
}
