//! The docker runtime against the real engine and `gantry/testbox`: protocol
//! outcomes, exit codes, timeouts, memory and pids limits, missing images,
//! and that every container is removed afterwards.

mod docker_support;

use docker_support::{containers_of, default_runtime, request, sh_agent, unique_run, SLOTS};
use gantry_executor::{ErrorKind, ExecOutcome, ExecResult, Runtime};
use serde_json::json;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn failure(result: &ExecResult) -> (ErrorKind, &str) {
    match &result.outcome {
        ExecOutcome::Failed { kind, error } => (*kind, error.as_str()),
        ExecOutcome::Succeeded(v) => panic!("expected a failure, got success {v}"),
    }
}

/// Runs `script` in a container and checks its container is gone afterwards.
async fn run_sh(script: &str, extra: serde_json::Value, timeout: Duration) -> ExecResult {
    let _slot = SLOTS.acquire().await.unwrap();
    let rt = default_runtime().await;
    let run = unique_run("t");
    let input = json!({"hello": "world", "n": [1, 2, 3]});
    let result = rt
        .execute(request(sh_agent(script, extra), input, timeout, &run))
        .await;
    let left = containers_of(rt.client(), &run).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
    result
}

#[tokio::test]
async fn cat_agent_echoes_its_input() {
    let result = run_sh("cat", json!({}), MINUTE).await;
    assert_eq!(
        result.outcome,
        ExecOutcome::Succeeded(json!({"hello": "world", "n": [1, 2, 3]})),
        "log: {}",
        result.log_tail
    );
    assert_eq!(result.exit_code, Some(0));
}

#[tokio::test]
async fn garbage_stdout_is_bad_output() {
    let result = run_sh("cat >/dev/null; echo 'this is not json'", json!({}), MINUTE).await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::BadOutput, "{error}");
    assert_eq!(result.exit_code, Some(0));
}

#[tokio::test]
async fn exit_3_is_a_retryable_exit_with_its_code_and_log() {
    let result = run_sh("echo 'something broke' >&2; exit 3", json!({}), MINUTE).await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::Exit);
    assert!(kind.is_retryable());
    assert_eq!(error, "agent exited with code 3");
    assert_eq!(result.exit_code, Some(3));
    assert_eq!(result.log_tail, "something broke\n");
}

#[tokio::test]
async fn exit_78_is_permanent() {
    let result = run_sh("echo 'bad config' >&2; exit 78", json!({}), MINUTE).await;
    let (kind, _) = failure(&result);
    assert_eq!(kind, ErrorKind::Permanent);
    assert!(!kind.is_retryable());
    assert_eq!(result.exit_code, Some(78));
}

#[tokio::test]
async fn oversized_output_fails_the_attempt() {
    // 2 MiB of stdout against the default 1 MiB cap.
    let result = run_sh("head -c 2097152 /dev/zero | tr '\\0' a", json!({}), MINUTE).await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::OutputTooLarge, "{error}");
}

#[tokio::test]
async fn a_hang_is_stopped_at_its_timeout_and_removed() {
    let started = Instant::now();
    let result = run_sh(
        "echo waiting >&2; sleep 60",
        json!({}),
        Duration::from_secs(2),
    )
    .await;
    let took = started.elapsed();
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::Timeout, "{error}");
    assert_eq!(error, "timed out after 2s");
    // Far below the agent's 60 s sleep, far above the 2 s timeout: a
    // container start and stop on a loaded 2-core machine took 4.4 s once,
    // so a tight bound tested the machine, not the timeout.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(result.log_tail, "waiting\n");
}

#[tokio::test]
async fn a_memory_hog_is_oom_killed() {
    // sort holds its whole input (one 200 MB line) in memory.
    let result = run_sh(
        "head -c 200000000 /dev/zero | sort >/dev/null",
        json!({"limits": {"memory_mb": 32, "cpus": 1.0, "pids": 64}}),
        MINUTE,
    )
    .await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::Oom, "{error} (log: {})", result.log_tail);
    assert_eq!(
        error,
        "agent was killed for exceeding its memory limit (32 MiB)"
    );
    assert!(kind.is_retryable());
}

/// Processes on the host right now.
fn host_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count()
}

#[tokio::test]
async fn a_fork_bomb_is_contained_by_the_pids_limit() {
    let before = host_processes();
    let sampling = tokio::spawn(async move {
        let mut max = 0;
        for _ in 0..80 {
            max = max.max(host_processes());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    });
    let started = Instant::now();
    let result = run_sh(
        r#"b() { b | b & }; b; sleep 2; echo "{\"procs\":$(ls -d /proc/[0-9]* | wc -l)}""#,
        json!({"limits": {"memory_mb": 64, "cpus": 0.5, "pids": 32}}),
        Duration::from_secs(5),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(8));
    let max = sampling.await.unwrap();
    // 32 pids in the container, plus whatever else the host runs meanwhile.
    assert!(
        max < before + 150,
        "host process count went from {before} to {max}"
    );
    // Whether the agent's shell can still fork to count is up to the
    // kernel; when it could, the count inside stays within the limit.
    match &result.outcome {
        ExecOutcome::Succeeded(v) => {
            let procs = v["procs"].as_u64().unwrap_or(u64::MAX);
            assert!(procs <= 32, "{procs} processes in the container");
        }
        ExecOutcome::Failed { kind, error } => assert!(
            matches!(
                kind,
                ErrorKind::Timeout | ErrorKind::Exit | ErrorKind::BadOutput
            ),
            "{kind:?}: {error}"
        ),
    }
}

#[tokio::test]
async fn a_missing_image_fails_with_how_to_build_it() {
    let rt = default_runtime().await;
    let mut agent = sh_agent("cat", json!({}));
    agent.image = Some("gantry/not-built-here:0.0.0".to_owned());
    let run = unique_run("noimage");
    let result = rt.execute(request(agent, json!({}), MINUTE, &run)).await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::Runtime);
    assert_eq!(
        error,
        "image gantry/not-built-here:0.0.0 is not present on this host; build it with scripts/build-images.sh"
    );
    assert!(containers_of(rt.client(), &run).await.is_empty());
}

#[tokio::test]
async fn a_cancelled_request_starts_nothing() {
    let rt = default_runtime().await;
    let run = unique_run("cancelled");
    let req = request(sh_agent("cat", json!({})), json!({}), MINUTE, &run);
    req.cancel.cancel();
    let result = rt.execute(req).await;
    assert_eq!(failure(&result).0, ErrorKind::Cancelled);
    assert!(containers_of(rt.client(), &run).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_daemon_is_a_clear_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = gantry_executor::DockerConfig::new("test-worker");
    cfg.socket = Some(dir.path().join("no-docker.sock"));
    let err = gantry_executor::DockerRuntime::connect(cfg)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to the docker daemon: "),
        "{text}"
    );
    assert!(text.contains("no-docker.sock"), "{text}");
}
