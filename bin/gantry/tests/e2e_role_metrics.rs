//! `/metrics` on every role: a standalone worker and a standalone
//! coordinator serve their own Prometheus text on `GANTRY_METRICS_LISTEN`,
//! so each replica is scraped, and the worker's holds the agent metrics of
//! the attempts it ran.

mod common;

use common::{free_port, node_of, Env};
use serde_json::json;
use std::time::Duration;

async fn scrape(env: &Env, addr: &str) -> String {
    let res = env
        .http
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {addr}/metrics: {e}"));
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "content-type {ct}");
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_coordinator_serve_their_own_metrics() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    let coord_addr = format!("127.0.0.1:{}", free_port());
    let _coord = env
        .coordinator("coordinator", &[("GANTRY_METRICS_LISTEN", &coord_addr)])
        .await;
    let worker_addr = format!("127.0.0.1:{}", free_port());
    let _worker = env
        .worker("w1", &[("GANTRY_METRICS_LISTEN", &worker_addr)])
        .await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "scraped", "nodes": [
        {"id": "a", "agent": "echo", "input": {"x": 1}},
        {"id": "b", "agent": "noop", "depends_on": ["a"]}
    ]}))
    .await;
    let id = env.start("scraped", json!({})).await;
    let run = env.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(node_of(&run, "b")["status"], "succeeded", "{run:#}");

    let worker = scrape(&env, &worker_addr).await;
    for line in [
        "gantry_agent_runs_total{agent=\"echo\",status=\"succeeded\"} 1",
        "gantry_agent_runs_total{agent=\"noop\",status=\"succeeded\"} 1",
    ] {
        assert!(
            worker.contains(line),
            "worker /metrics lacks {line}:\n{worker}"
        );
    }
    assert!(
        worker.contains("gantry_node_dispatch_latency_seconds_bucket"),
        "worker /metrics lacks dispatch latency:\n{worker}"
    );
    let coord = scrape(&env, &coord_addr).await;
    assert!(
        coord.contains("# TYPE gantry_"),
        "coordinator /metrics is not gantry's:\n{coord}"
    );
    let health = env
        .http
        .get(format!("http://{worker_addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
