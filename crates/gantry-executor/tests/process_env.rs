//! The process runtime's environment: the GANTRY_* attempt variables and
//! nothing else of the worker's, not even PATH. Its own binary, because it
//! sets a variable in the test process before anything is spawned.

mod common;

use common::{process, request, success};
use gantry_executor::ExecLimits;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// Prints the variables the shell was started with (`/proc/$$/environ`, so
/// the shell's own additions such as PWD do not count) and two of them.
const SCRIPTS: &[(&str, &str)] = &[(
    "env",
    r#"names=$(tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sort | tr '\n' ' ')
printf '{"run":"%s","node":"%s","attempt":"%s","key":"%s","path":"%s","secret":"%s","names":"%s","cwd":"%s"}' \
  "$GANTRY_RUN_ID" "$GANTRY_NODE_ID" "$GANTRY_ATTEMPT" "$GANTRY_IDEMPOTENCY_KEY" "${PATH-unset}" \
  "${FOO_SECRET-unset}" "$names" "$(pwd)""#,
)];

#[tokio::test]
async fn only_the_attempt_variables_reach_the_agent() {
    // Set before any process is spawned (this binary has one test).
    std::env::set_var("FOO_SECRET", "hunter2");
    let scripts = common::scripts(SCRIPTS);
    let res = scripts
        .executor(ExecLimits::default())
        .execute(request(
            process(&[&scripts.path("env")]),
            json!({}),
            Duration::from_secs(60),
        ))
        .await;
    let out = success(&res);
    assert_eq!(out["run"], "run-1");
    assert_eq!(out["node"], "node-a");
    assert_eq!(out["attempt"], "3");
    assert_eq!(out["key"], "run-1:node-a");
    assert_eq!(out["secret"], "unset");
    let names: BTreeSet<&str> = out["names"].as_str().unwrap().split_whitespace().collect();
    let expected = BTreeSet::from([
        "GANTRY_RUN_ID",
        "GANTRY_NODE_ID",
        "GANTRY_ATTEMPT",
        "GANTRY_IDEMPOTENCY_KEY",
    ]);
    assert_eq!(names, expected, "exactly the attempt variables, no PATH");
    // A fresh private working directory, gone after the attempt.
    let cwd = std::path::PathBuf::from(out["cwd"].as_str().unwrap());
    assert!(
        cwd.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("gantry-work-"),
        "{cwd:?}"
    );
    assert!(!cwd.exists(), "{cwd:?} was not removed");
}
