//! The builtin agents through the `Executor`, and the router's docker fallback.

mod common;

use common::{agent, builtin, failure, request, success};
use gantry_dag::Runtime;
use gantry_executor::{ErrorKind, ExecLimits, Executor};
use serde_json::json;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn executor() -> Executor {
    Executor::new(ExecLimits::default())
}

#[tokio::test]
async fn noop_outputs_an_empty_object() {
    let res = executor()
        .execute(request(builtin("noop"), json!({"ignored": 1}), MINUTE))
        .await;
    assert_eq!(success(&res), &json!({}));
    assert_eq!(res.exit_code, None);
    assert_eq!(res.log_tail, "");
}

#[tokio::test]
async fn echo_outputs_its_input() {
    let input = json!({"a": [1, 2, {"b": null}], "s": "héllo"});
    let res = executor()
        .execute(request(builtin("echo"), input.clone(), MINUTE))
        .await;
    assert_eq!(success(&res), &input);
}

#[tokio::test]
async fn echo_is_held_to_the_output_limit() {
    let exec = Executor::new(ExecLimits {
        max_output_bytes: 16,
        max_log_bytes: 16,
    });
    let res = exec
        .execute(request(
            builtin("echo"),
            json!({"s": "x".repeat(20)}),
            MINUTE,
        ))
        .await;
    assert_eq!(
        failure(&res),
        (ErrorKind::OutputTooLarge, "output exceeds 16 bytes")
    );
}

#[tokio::test(start_paused = true)]
async fn sleep_sleeps_and_reports_it() {
    let start = tokio::time::Instant::now();
    let res = executor()
        .execute(request(builtin("sleep"), json!({"ms": 1500}), MINUTE))
        .await;
    assert_eq!(success(&res), &json!({"slept_ms": 1500}));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn sleep_longer_than_the_timeout_times_out_at_the_deadline() {
    let start = tokio::time::Instant::now();
    let res = executor()
        .execute(request(
            builtin("sleep"),
            json!({"ms": 600_000}),
            Duration::from_secs(2),
        ))
        .await;
    assert_eq!(failure(&res), (ErrorKind::Timeout, "timed out after 2s"));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn sleep_is_cancellable() {
    let req = request(builtin("sleep"), json!({"ms": 50_000}), MINUTE);
    let cancel = req.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let start = tokio::time::Instant::now();
    let res = executor().execute(req).await;
    assert_eq!(failure(&res).0, ErrorKind::Cancelled);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn an_already_cancelled_request_does_not_run() {
    let req = request(builtin("noop"), json!({}), MINUTE);
    req.cancel.cancel();
    let res = executor().execute(req).await;
    assert_eq!(failure(&res).0, ErrorKind::Cancelled);
}

#[tokio::test]
async fn sleep_with_bad_input_fails_permanently_naming_the_field() {
    for input in [
        json!({"ms": "ten"}),
        json!({"ms": -5}),
        json!({"ms": 1.5}),
        json!({}),
        json!(null),
        json!([1]),
    ] {
        let res = executor()
            .execute(request(builtin("sleep"), input.clone(), MINUTE))
            .await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::Permanent, "{input}");
        if input.is_array() {
            assert!(error.contains("must be an object"), "{error}");
        } else {
            assert!(error.contains("ms"), "{input}: {error}");
        }
    }
}

#[tokio::test]
async fn fail_defaults_to_exit_code_one() {
    for input in [json!({}), json!(null), json!({"exit_code": null})] {
        let res = executor()
            .execute(request(builtin("fail"), input, MINUTE))
            .await;
        assert_eq!(failure(&res), (ErrorKind::Exit, "agent exited with code 1"));
        assert_eq!(res.exit_code, Some(1));
    }
}

#[tokio::test]
async fn fail_with_a_code_exits_with_it() {
    let res = executor()
        .execute(request(builtin("fail"), json!({"exit_code": 3}), MINUTE))
        .await;
    assert_eq!(failure(&res), (ErrorKind::Exit, "agent exited with code 3"));
    assert_eq!(res.exit_code, Some(3));
    assert!(failure(&res).0.is_retryable());
}

#[tokio::test]
async fn fail_with_78_is_permanent() {
    let res = executor()
        .execute(request(builtin("fail"), json!({"exit_code": 78}), MINUTE))
        .await;
    assert_eq!(
        failure(&res),
        (ErrorKind::Permanent, "agent exited with code 78")
    );
    assert_eq!(res.exit_code, Some(78));
    assert!(!failure(&res).0.is_retryable());
}

#[tokio::test]
async fn fail_with_a_bad_code_names_the_field() {
    for input in [
        json!({"exit_code": "3"}),
        json!({"exit_code": 0}),
        json!({"exit_code": 1u64 << 40}),
    ] {
        let res = executor()
            .execute(request(builtin("fail"), input.clone(), MINUTE))
            .await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::Permanent, "{input}");
        assert!(error.contains("exit_code"), "{input}: {error}");
        assert_eq!(res.exit_code, None);
    }
}

#[tokio::test]
async fn unknown_builtin_is_permanent() {
    let res = executor()
        .execute(request(builtin("teleport"), json!({}), MINUTE))
        .await;
    let (kind, error) = failure(&res);
    assert_eq!(kind, ErrorKind::Permanent);
    assert!(error.contains("teleport"), "{error}");
}

#[tokio::test]
async fn docker_agents_fail_until_a_docker_runtime_is_added() {
    let exec = executor();
    assert!(!exec.supports(Runtime::Docker));
    assert!(exec.supports(Runtime::Builtin) && !exec.supports(Runtime::Process));
    let docker = agent(Runtime::Docker, json!({"image": "alpine:3"}));
    let res = exec.execute(request(docker, json!({}), MINUTE)).await;
    assert_eq!(
        failure(&res),
        (
            ErrorKind::Runtime,
            "docker runtime is not enabled on this worker"
        )
    );
}

#[tokio::test]
async fn a_docker_runtime_plugs_in_behind_the_router() {
    // Any `Runtime` can stand in; here the builtin one, proving the route.
    let stand_in = std::sync::Arc::new(gantry_executor::BuiltinRuntime::new(ExecLimits::default()));
    let exec = executor().with_docker(stand_in);
    assert!(exec.supports(Runtime::Docker));
    let docker = agent(Runtime::Docker, json!({"image": "x", "builtin": "echo"}));
    let res = exec.execute(request(docker, json!({"v": 7}), MINUTE)).await;
    assert_eq!(success(&res), &json!({"v": 7}));
}
