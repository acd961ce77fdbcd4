//! Postgres stopped and started again mid-run (SPEC section 5): `/readyz`
//! says 503 naming postgres while it is down, every role reconnects, runs
//! finish with the right outputs, no node runs twice, and `/readyz` is 200
//! again. Its own test binary: cargo runs test binaries one at a time, so
//! stopping the shared server disturbs no other test.

mod common;

use common::{node_of, Env};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_finish_right_across_a_postgres_restart() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    let chain: Vec<_> = (0..8)
        .map(|i| {
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("n{}", i - 1)] };
            json!({"id": format!("n{i}"), "agent": "sleep", "depends_on": deps, "input": {"ms": 250}})
        })
        .collect();
    env.workflow(json!({"name": "through-restart", "nodes": chain}))
        .await;
    let ids = [
        env.start("through-restart", json!({})).await,
        env.start("through-restart", json!({})).await,
    ];
    env.wait_node(&ids[0], "n1", "succeeded", TIMEOUT).await;
    // Down for a while, not just restarted: /readyz must say so.
    tokio::task::spawn_blocking(common::stop_postgres)
        .await
        .expect("stop");
    let down = common::eventually("/readyz to report postgres down", TIMEOUT, || async {
        let (status, body) = env.get("/readyz").await;
        if status == 503 {
            Ok(body)
        } else {
            Err(body)
        }
    })
    .await;
    assert!(
        down.to_string().contains("postgres"),
        "503 names the dependency: {down}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::spawn_blocking(common::start_services)
        .await
        .expect("start");

    for id in &ids {
        let run = env.wait_run(id, TIMEOUT).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        for i in 0..8 {
            let n = node_of(&run, &format!("n{i}"));
            assert_eq!(n["output"], json!({"slept_ms": 250}), "{run:#}");
            // A result recorded while the server was down is retried, not
            // re-run: the attempt stays the same one.
            assert_eq!(n["attempts"], 1, "n{i} ran more than once: {run:#}");
        }
    }
    let (status, body) = env.get("/readyz").await;
    assert_eq!(status, 200, "ready again after the restart: {body}");
}
