//! `/metrics` of a real `gantry dev` after a run that exercises every path
//! SPEC section 6 names: success, a failure with a retry, an approval, the
//! queues and the HTTP layer.

mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every metric of SPEC section 6, as Prometheus names them.
const SPEC_METRICS: &[&str] = &[
    "gantry_workflow_runs_total",
    "gantry_workflow_run_duration_seconds",
    "gantry_workflow_runs_active",
    "gantry_approval_wait_seconds",
    "gantry_agent_runs_total",
    "gantry_agent_duration_seconds",
    "gantry_agent_errors_total",
    "gantry_agent_retries_total",
    "gantry_queue_jobs",
    "gantry_node_dispatch_latency_seconds",
    "gantry_circuit_breaker_open",
    "gantry_http_requests_total",
    "gantry_http_request_duration_seconds",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_run_name_every_spec_metric_with_bounded_labels() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.register_observed().await;
    let id = env.start("observed", json!({})).await;
    env.wait_node(&id, "g", "waiting_approval", RUN_TIMEOUT)
        .await;
    let (status, body) = env
        .post(&format!("/v1/runs/{id}/nodes/g/approve"), &json!({}))
        .await;
    assert_eq!(status, 200, "approve: {body}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(node_of(&run, "g")["status"], "succeeded", "{run:#}");

    let res = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.expect("metrics body");

    for name in SPEC_METRICS {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "{name} has no sample in /metrics:\n{text}"
        );
    }
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {prefix}:\n{text}"))
    };
    assert_eq!(
        sample(r#"gantry_workflow_runs_total{workflow="observed",status="failed"}"#),
        1.0
    );
    // `fail` has max_attempts 3: two retries scheduled, three errors.
    assert_eq!(sample(r#"gantry_agent_retries_total{agent="fail"}"#), 2.0);
    assert_eq!(
        sample(r#"gantry_agent_errors_total{agent="fail",kind="exit"}"#),
        3.0
    );
    assert_eq!(
        sample(r#"gantry_agent_runs_total{agent="echo",status="succeeded"}"#),
        1.0
    );
    assert_eq!(sample("gantry_approval_wait_seconds_count"), 1.0);
    assert_eq!(sample("gantry_workflow_runs_active"), 0.0);
    assert!(
        text.contains(r#"route="/v1/runs/{id}/nodes/{node}/approve""#),
        "HTTP metrics label the route template:\n{text}"
    );
    assert!(!text.contains(&id), "a run id leaked into a label");
}

/// A run that ends in the transaction that starts it (its only node's
/// `when` is false) and a child run that does the same are counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_end_as_they_start_are_counted() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "nothing-to-do", "nodes": [
        {"id": "a", "agent": "echo", "when": "false"},
    ]}))
    .await;
    env.workflow(json!({"name": "calls-nothing", "nodes": [
        {"id": "kid", "workflow": "nothing-to-do"},
    ]}))
    .await;
    let id = env.start("nothing-to-do", json!({})).await;
    assert_eq!(env.run(&id).await["status"], "succeeded");
    let id = env.start("calls-nothing", json!({})).await;
    assert_eq!(env.wait_run(&id, RUN_TIMEOUT).await["status"], "succeeded");
    let text = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    let line = r#"gantry_workflow_runs_total{workflow="nothing-to-do",status="succeeded"} "#;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .unwrap_or_else(|| panic!("no {line}in:\n{text}"));
    assert_eq!(value, "2", "the top-level run and the child run");
}
