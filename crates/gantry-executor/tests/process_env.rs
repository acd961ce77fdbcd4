//! The process runtime's environment: only PATH and the GANTRY_* attempt
//! variables reach the agent. Its own binary, because it sets a variable in
//! the test process before anything is spawned.

mod common;

use common::{process, request, success};
use gantry_executor::{ExecLimits, Executor};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const SCRIPTS: &[(&str, &str)] = &[(
    "env",
    r#"printf '{"run":"%s","node":"%s","attempt":"%s","key":"%s","path":"%s","secret":"%s","names":"%s"}' \
  "$GANTRY_RUN_ID" "$GANTRY_NODE_ID" "$GANTRY_ATTEMPT" "$GANTRY_IDEMPOTENCY_KEY" "$PATH" \
  "${FOO_SECRET-unset}" "$(env | cut -d= -f1 | sort | tr '\n' ' ')""#,
)];

#[tokio::test]
async fn only_path_and_attempt_variables_reach_the_agent() {
    // Set before any process is spawned (this binary has one test).
    std::env::set_var("FOO_SECRET", "hunter2");
    let script = common::scripts(SCRIPTS).path("env");
    let res = Executor::new(ExecLimits::default())
        .execute(request(
            process(&[&script]),
            json!({}),
            Duration::from_secs(60),
        ))
        .await;
    let out = success(&res);
    assert_eq!(out["run"], "run-1");
    assert_eq!(out["node"], "node-a");
    assert_eq!(out["attempt"], "3");
    assert_eq!(out["key"], "run-1:node-a");
    assert_eq!(out["path"], std::env::var("PATH").unwrap().as_str());
    assert_eq!(out["secret"], "unset");

    let names: BTreeSet<&str> = out["names"].as_str().unwrap().split_whitespace().collect();
    for expected in [
        "PATH",
        "GANTRY_RUN_ID",
        "GANTRY_NODE_ID",
        "GANTRY_ATTEMPT",
        "GANTRY_IDEMPOTENCY_KEY",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    // The shell itself may add PWD, SHLVL, OLDPWD or _; nothing else may appear.
    let shell_own = ["PWD", "OLDPWD", "SHLVL", "_"];
    let leaked: Vec<_> = names
        .iter()
        .filter(|n| !n.starts_with("GANTRY_") && **n != "PATH" && !shell_own.contains(n))
        .collect();
    assert!(leaked.is_empty(), "parent variables leaked: {leaked:?}");
}
