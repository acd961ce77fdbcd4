//! The process runtime against real tiny `/bin/sh` agents: protocol outcomes,
//! limits, timeouts, cancellation and process-group cleanup.

mod common;

use common::{failure, process, request, success, Scripts};
use gantry_executor::{ErrorKind, ExecLimits, ExecRequest, ExecResult, Executor};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

const SCRIPTS: &[(&str, &str)] = &[
    ("cat", "exec cat"),
    ("garbage", "cat >/dev/null; echo 'this is not json'"),
    ("two_values", "echo '{\"a\":1} {\"b\":2}'"),
    ("empty", "exit 0"),
    ("exit3", "echo 'something broke' >&2; exit 3"),
    ("exit78", "echo 'bad config' >&2; exit 78"),
    ("sigterm", "kill -TERM $$; sleep 5"),
    // Leaves a grandchild in its group; $1 is where its pid goes.
    (
        "hang",
        "sleep 30 & echo $! > \"$1\"; echo started >&2; wait",
    ),
    (
        "straggler",
        "sleep 30 & echo $! > \"$1\"; echo '{\"ok\":true}'",
    ),
    ("infinite_stdout", "exec yes"),
    // A JSON string of exactly $1 bytes: quote, $1 - 2 letters, quote.
    (
        "sized_stdout",
        "printf '\"'; head -c $(($1 - 2)) /dev/zero | tr '\\0' a; printf '\"'",
    ),
    (
        "huge_stderr",
        "yes 'log line' | head -c 5000000 >&2; echo 'tail end' >&2; echo '{\"done\":1}'",
    ),
    ("ignores_stdin", "echo '{}'"),
];

fn scripts() -> &'static Scripts {
    common::scripts(SCRIPTS)
}

fn script(name: &str) -> String {
    scripts().path(name)
}

async fn run(req: ExecRequest) -> ExecResult {
    scripts().executor(ExecLimits::default()).execute(req).await
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet), polling up to 2 s.
async fn wait_dead(pid: u32) -> bool {
    for _ in 0..40 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            // The state follows the parenthesised command name.
            Ok(stat) if stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')) => {
                return true
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn cat_echoes_its_input_and_succeeds() {
    let input = json!({"repo": "gantry", "n": [1, 2.5, null], "s": "héllo"});
    let res = run(request(process(&[&script("cat")]), input.clone(), MINUTE)).await;
    assert_eq!(success(&res), &input);
    assert_eq!(res.exit_code, Some(0));
}

#[tokio::test]
async fn garbage_empty_and_two_values_are_bad_output() {
    for name in ["garbage", "empty", "two_values"] {
        let res = run(request(process(&[&script(name)]), json!({}), MINUTE)).await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::BadOutput, "{name}: {error}");
        assert!(
            error.starts_with("agent stdout is not one JSON value: "),
            "{name}: {error}"
        );
        assert!(!error.contains("this is not json"), "{error}");
        assert_eq!(res.exit_code, Some(0));
    }
}

#[tokio::test]
async fn exit_3_is_a_retryable_exit_with_the_log() {
    let res = run(request(process(&[&script("exit3")]), json!({}), MINUTE)).await;
    assert_eq!(failure(&res), (ErrorKind::Exit, "agent exited with code 3"));
    assert_eq!(res.exit_code, Some(3));
    assert_eq!(res.log_tail, "something broke\n");
}

#[tokio::test]
async fn exit_78_is_permanent() {
    let res = run(request(process(&[&script("exit78")]), json!({}), MINUTE)).await;
    assert_eq!(
        failure(&res),
        (ErrorKind::Permanent, "agent exited with code 78")
    );
    assert_eq!(res.exit_code, Some(78));
    assert_eq!(res.log_tail, "bad config\n");
}

#[tokio::test]
async fn killed_by_a_signal_names_the_signal() {
    let res = run(request(process(&[&script("sigterm")]), json!({}), MINUTE)).await;
    assert_eq!(
        failure(&res),
        (ErrorKind::Exit, "agent was killed by signal SIGTERM (15)")
    );
    assert_eq!(res.exit_code, None);
}

#[tokio::test]
async fn a_hang_is_killed_at_the_timeout_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let agent = process(&[&script("hang"), pidfile.to_str().unwrap()]);
    let start = Instant::now();
    let res = run(request(agent, json!({}), Duration::from_secs(1))).await;
    let took = start.elapsed();
    assert_eq!(failure(&res), (ErrorKind::Timeout, "timed out after 1s"));
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(res.exit_code, None);
    assert_eq!(res.log_tail, "started\n");
    let grandchild = read_pid(&pidfile);
    assert!(
        wait_dead(grandchild).await,
        "grandchild {grandchild} lives on"
    );
}

#[tokio::test]
async fn a_straggler_does_not_hold_up_a_finished_agent_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let agent = process(&[&script("straggler"), pidfile.to_str().unwrap()]);
    let start = Instant::now();
    let res = run(request(agent, json!({}), MINUTE)).await;
    assert_eq!(success(&res), &json!({"ok": true}));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let straggler = read_pid(&pidfile);
    assert!(wait_dead(straggler).await, "straggler {straggler} lives on");
}

#[tokio::test]
async fn cancel_kills_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let req = request(
        process(&[&script("hang"), pidfile.to_str().unwrap()]),
        json!({}),
        MINUTE,
    );
    let cancel = req.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let start = Instant::now();
    let res = run(req).await;
    assert_eq!(failure(&res), (ErrorKind::Cancelled, "cancelled"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let grandchild = read_pid(&pidfile);
    assert!(
        wait_dead(grandchild).await,
        "grandchild {grandchild} lives on"
    );
}

#[tokio::test]
async fn endless_stdout_is_cut_off_at_the_limit() {
    // `yes` never stops: finishing at all shows stdout is not buffered whole.
    let start = Instant::now();
    let res = run(request(
        process(&[&script("infinite_stdout")]),
        json!({}),
        Duration::from_secs(20),
    ))
    .await;
    assert_eq!(
        failure(&res),
        (ErrorKind::OutputTooLarge, "output exceeds 1048576 bytes")
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(res.exit_code, None);
}

#[tokio::test]
async fn stdout_of_exactly_the_limit_is_accepted_and_one_more_byte_is_not() {
    let limit = 1 << 20;
    let at = run(request(
        process(&[&script("sized_stdout"), &limit.to_string()]),
        json!({}),
        MINUTE,
    ))
    .await;
    assert_eq!(success(&at).as_str().map(str::len), Some(limit - 2));

    let over = run(request(
        process(&[&script("sized_stdout"), &(limit + 1).to_string()]),
        json!({}),
        MINUTE,
    ))
    .await;
    assert_eq!(failure(&over).0, ErrorKind::OutputTooLarge);
}

#[tokio::test]
async fn huge_stderr_keeps_only_the_tail() {
    let res = run(request(
        process(&[&script("huge_stderr")]),
        json!({}),
        MINUTE,
    ))
    .await;
    assert_eq!(success(&res), &json!({"done": 1}));
    assert!(res.log_tail.len() <= 64 << 10, "{}", res.log_tail.len());
    assert!(res.log_tail.len() > 60 << 10, "{}", res.log_tail.len());
    // 5,000,000 is not a multiple of 9: the last "log line" is cut short.
    assert!(
        res.log_tail.ends_with("\nlog ltail end\n"),
        "{:?}",
        &res.log_tail[60 << 10..]
    );
    assert!(res.log_tail.contains("log line\nlog line\n"));
}

#[tokio::test]
async fn a_small_log_limit_is_honoured() {
    let exec = scripts().executor(ExecLimits {
        max_output_bytes: 1 << 20,
        max_log_bytes: 100,
    });
    let res = exec
        .execute(request(
            process(&[&script("huge_stderr")]),
            json!({}),
            MINUTE,
        ))
        .await;
    assert!(res.log_tail.len() <= 100, "{}", res.log_tail.len());
    assert!(res.log_tail.ends_with("tail end\n"), "{:?}", res.log_tail);
}

#[tokio::test]
async fn an_agent_that_ignores_a_large_input_still_succeeds() {
    // Far more than a pipe buffer: the writer must not block the attempt.
    let input = json!({"blob": "x".repeat(4 << 20)});
    let res = run(request(process(&[&script("ignores_stdin")]), input, MINUTE)).await;
    assert_eq!(success(&res), &json!({}));
}

#[tokio::test]
async fn a_command_off_the_allow_list_is_permanent_and_named() {
    let missing_inside = format!("{}/gantry-agent-xyz", scripts().dir().display());
    for argv0 in [
        "/bin/sh",
        "/nonexistent/gantry-agent-xyz",
        missing_inside.as_str(),
    ] {
        let res = run(request(process(&[argv0, "--flag"]), json!({}), MINUTE)).await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::Permanent, "{argv0}: {error}");
        assert_eq!(
            error,
            format!(
                "process command {argv0:?} is not allowed on this worker (GANTRY_PROCESS_COMMANDS)"
            ),
            "a missing command reads like an unlisted one"
        );
    }
    let res = run(request(process(&["cat"]), json!({}), MINUTE)).await;
    let (kind, error) = failure(&res);
    assert_eq!(kind, ErrorKind::Permanent);
    assert!(error.contains("\"cat\" is not an absolute path"), "{error}");
}

#[tokio::test]
async fn without_an_allow_list_there_is_no_process_runtime() {
    let exec = Executor::new(ExecLimits::default());
    assert!(!exec.supports(gantry_dag::Runtime::Process));
    let res = exec
        .execute(request(process(&[&script("cat")]), json!({}), MINUTE))
        .await;
    let (kind, error) = failure(&res);
    assert_eq!(kind, ErrorKind::Runtime);
    assert!(error.contains("GANTRY_PROCESS_COMMANDS"), "{error}");
    let exec = scripts().executor(ExecLimits::default());
    assert!(exec.supports(gantry_dag::Runtime::Process));
    assert_eq!(exec.runtimes(), ["builtin", "process"]);
}

#[tokio::test]
async fn a_process_agent_without_a_command_is_permanent() {
    let agent = common::agent(gantry_dag::Runtime::Process, json!({}));
    let res = run(request(agent, json!({}), MINUTE)).await;
    assert_eq!(failure(&res).0, ErrorKind::Permanent);
}

#[tokio::test]
async fn a_timeout_of_u64_max_seconds_is_clamped_not_overflowed() {
    let req = request(
        process(&[&script("cat")]),
        json!({"x": 1}),
        Duration::from_secs(u64::MAX),
    );
    let res = run(req).await;
    assert_eq!(success(&res), &json!({"x": 1}));
}
