//! NUL bytes (issue 10 item 3): against one real worker process, an agent
//! whose stdout holds `{"x": "\u0000"}` fails only its own node (once, for
//! good, with a clear error), one whose stderr holds a raw 0x00 byte
//! succeeds with the byte escaped in its log tail, and ten other runs on
//! the same worker finish meanwhile. The worker's `/readyz` and `/healthz`
//! are 200 afterwards.

use super::pool::Pool;
use serde_json::json;
use std::time::Duration;

/// Reads its input (with shell builtins only: no PATH, no other file).
const DRAIN_STDIN: &str = "while read -r _; do :; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_fails_or_escapes_only_its_own_node() {
    let pool = Pool::start("4").await;
    let env = &pool.env;
    let out = env.script(
        "nul-out.sh",
        &format!("{DRAIN_STDIN}\nprintf '{{\"x\": \"\\\\u0000\"}}'\nexit 0"),
    );
    let key = env.script(
        "nul-key.sh",
        &format!("{DRAIN_STDIN}\nprintf '{{\"a\\\\u0000b\": 1}}'\nexit 0"),
    );
    let err = env.script(
        "nul-err.sh",
        &format!(
            "{DRAIN_STDIN}\nprintf 'before\\000after\\n' >&2\nprintf '{{\"ok\": true}}'\nexit 0"
        ),
    );
    for (name, path) in [("nul-out", &out), ("nul-key", &key), ("nul-err", &err)] {
        env.agent(json!({
            "name": name, "runtime": "process", "command": [path.to_str().unwrap()],
            "timeout_s": 30,
            "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 200, "multiplier": 2.0}
        }))
        .await;
        env.workflow(json!({"name": name, "nodes": [
            {"id": "bad", "agent": name},
            {"id": "after", "agent": "echo", "depends_on": ["bad"]},
            {"id": "beside", "agent": "echo", "input": {"ok": 1}}
        ]}))
        .await;
    }

    let out_run = env.start("nul-out", json!({})).await;
    let key_run = env.start("nul-key", json!({})).await;
    let err_run = env.start("nul-err", json!({})).await;
    let plain = pool.plain_runs(10).await;
    pool.all_succeed(&plain, Duration::from_secs(60)).await;

    for id in [&out_run, &key_run] {
        let run = env.wait_run(id, Duration::from_secs(30)).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        assert_eq!(Pool::status(&run, "bad"), "failed", "{run:#}");
        assert_eq!(Pool::status(&run, "after"), "skipped", "{run:#}");
        assert_eq!(
            Pool::status(&run, "beside"),
            "succeeded",
            "an unrelated branch of the same run still runs: {run:#}"
        );
        let attempts = pool.attempts(id, "bad").await;
        assert_eq!(
            attempts.len(),
            1,
            "a NUL output is permanent: {attempts:#?}"
        );
        let error = attempts[0]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("output contains a NUL character"),
            "clear error: {error}"
        );
    }

    let run = env.wait_run(&err_run, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let attempts = pool.attempts(&err_run, "bad").await;
    let tail = attempts[0]["log_tail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("before\u{FFFD}after"),
        "the NUL byte is escaped in the stored log: {tail:?}"
    );

    // Ten more after the bad ones: the worker is not stuck on anything.
    let more = pool.plain_runs(10).await;
    pool.all_succeed(&more, Duration::from_secs(60)).await;
    assert_eq!(pool.probe("/healthz").await, 200);
    assert_eq!(
        pool.probe("/readyz").await,
        200,
        "worker log:\n{}",
        pool.worker.log_text()
    );
    let log = pool.worker.log_text();
    assert!(
        !log.contains("giving up recording results"),
        "no batch was given up:\n{log}"
    );
}
