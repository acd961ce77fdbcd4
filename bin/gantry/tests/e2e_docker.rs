//! End-to-end tests of the docker runtime through the real `gantry dev`
//! process (API, coordinator and a worker with `GANTRY_DOCKER=on`), real
//! Postgres, Redis and Docker: exit-code rules with every attempt recorded,
//! garbage output, secrets kept out of everything stored, and the approval
//! gate. They need `gantry/testbox:latest` (scripts/build-images.sh).

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const IMAGE: &str = "gantry/testbox:latest";
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const SECRET: &str = "gantry-e2e-secret-7f3a9c1d";

/// A docker agent running `sh -c SCRIPT` in the test image, quick retries.
fn sh_agent(name: &str, script: &str, extra: Value) -> Value {
    let mut def = json!({
        "name": name, "runtime": "docker", "image": IMAGE,
        "command": ["sh", "-c", script], "timeout_s": 30,
        "limits": {"memory_mb": 64, "cpus": 0.5, "pids": 32},
        "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 400, "multiplier": 2.0}
    });
    if let (Some(def), Value::Object(extra)) = (def.as_object_mut(), extra) {
        def.extend(extra);
    }
    def
}

/// `gantry dev` with the docker runtime required, a secrets directory, and
/// its secret bound to agent `d-secret`.
async fn docker_dev(env: &mut Env) -> common::Proc {
    let secrets = env.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets dir");
    std::fs::write(secrets.join("TOKEN"), SECRET).expect("secret file");
    let secrets = secrets.to_str().expect("utf-8 path").to_owned();
    env.dev(&[
        ("GANTRY_DOCKER", "on"),
        ("GANTRY_SECRETS_DIR", &secrets),
        ("GANTRY_SECRET_BINDINGS", "d-secret=TOKEN"),
    ])
    .await
}

/// Good output, a crash retried to the policy's end, exit 78 once, garbage
/// once, and a secret that the agent can read but nothing stored contains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_exit_rules_attempts_and_secrets() {
    let mut env = Env::new().await;
    let dev = docker_dev(&mut env).await;
    env.agent(sh_agent("d-good", "cat", json!({}))).await;
    env.agent(sh_agent(
        "d-crash",
        "cat >/dev/null; echo boom >&2; exit 3",
        json!({}),
    ))
    .await;
    env.agent(sh_agent(
        "d-perm",
        "cat >/dev/null; echo 'bad input' >&2; exit 78",
        json!({}),
    ))
    .await;
    env.agent(sh_agent(
        "d-garbage",
        "cat >/dev/null; echo 'this is not json'",
        json!({}),
    ))
    .await;
    // The agent prints the secret (plain and base64) to its log, reports
    // whether its environment holds the value, and outputs only its length.
    env.agent(sh_agent(
        "d-secret",
        "cat >/dev/null; v=$(cat /run/secrets/TOKEN); echo \"token=$v\" >&2; \
         printf %s \"$v\" | base64 >&2; \
         if env | grep -qF \"$v\"; then echo ENV-HOLDS-SECRET >&2; fi; \
         echo \"{\\\"len\\\": ${#v}}\"",
        json!({"secrets": ["TOKEN"]}),
    ))
    .await;
    env.workflow(json!({"name": "dock", "nodes": [
        {"id": "good", "agent": "d-good", "input": {"v": "{{run.input.v}}", "n": [1, 2]}},
        {"id": "crash", "agent": "d-crash"},
        {"id": "perm", "agent": "d-perm"},
        {"id": "garbage", "agent": "d-garbage"},
        {"id": "secret", "agent": "d-secret"}
    ]}))
    .await;
    let id = env.start("dock", json!({"v": "hello"})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");

    let good = node_of(&run, "good");
    assert_eq!(good["status"], "succeeded", "{run:#}");
    assert_eq!(good["output"], json!({"v": "hello", "n": [1, 2]}));

    let crash = node_of(&run, "crash");
    assert_eq!(crash["status"], "failed", "{run:#}");
    assert_eq!(crash["attempts"], 3, "retried to max_attempts: {run:#}");
    let detail = env.node(&id, "crash").await;
    let attempts = detail["attempts_detail"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{detail:#}");
    for a in attempts {
        assert_eq!(a["exit_code"], 3, "{detail:#}");
        assert!(
            a["worker"].as_str().is_some_and(|w| !w.is_empty()),
            "{detail:#}"
        );
        assert!(a["finished_at"].is_string(), "{detail:#}");
        assert!(
            a["log_tail"].as_str().is_some_and(|l| l.contains("boom")),
            "{detail:#}"
        );
    }

    let perm = node_of(&run, "perm");
    assert_eq!(perm["status"], "failed", "{run:#}");
    assert_eq!(perm["attempts"], 1, "exit 78 is never retried: {run:#}");
    assert_eq!(
        env.node(&id, "perm").await["attempts_detail"][0]["exit_code"],
        78
    );

    let garbage = node_of(&run, "garbage");
    assert_eq!(garbage["status"], "failed", "{run:#}");
    assert_eq!(
        garbage["attempts"], 1,
        "garbage output is permanent: {run:#}"
    );
    let error = garbage["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("stdout") && error.contains("JSON"),
        "the error says what was wrong: {error:?}"
    );

    let secret = node_of(&run, "secret");
    assert_eq!(secret["status"], "succeeded", "{run:#}");
    assert_eq!(
        secret["output"],
        json!({"len": SECRET.len()}),
        "the agent read the file"
    );
    let detail = env.node(&id, "secret").await;
    let log = detail["attempts_detail"][0]["log_tail"]
        .as_str()
        .unwrap_or_default();
    assert!(log.contains("token="), "the log was kept: {log:?}");
    assert!(
        !log.contains("ENV-HOLDS-SECRET"),
        "secret in the environment: {log:?}"
    );

    let encoded = common::base64(SECRET);
    let api_text = format!("{run}{detail}");
    let db_text = env.database_text().await;
    let process_log = dev.log_text();
    for (what, text) in [
        ("API answers", &api_text),
        ("database", &db_text),
        ("gantry process log", &process_log),
    ] {
        assert!(!text.contains(SECRET), "secret value found in the {what}");
        assert!(
            !text.contains(&encoded),
            "base64 secret found in the {what}"
        );
    }
    assert!(
        db_text.contains("token="),
        "the log tail is stored (redacted): the check above searched it"
    );
}

/// An approval-gated docker agent parks its node; approve runs it, reject
/// fails it and skips what depends on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_approval_gate() {
    let mut env = Env::new().await;
    let _dev = docker_dev(&mut env).await;
    env.agent(sh_agent("d-gated", "cat", json!({"approval": "required"})))
        .await;
    env.agent(sh_agent("d-after", "cat", json!({}))).await;
    env.workflow(json!({"name": "gated", "nodes": [
        {"id": "patch", "agent": "d-gated", "input": {"diff": "{{run.input.diff}}"}},
        {"id": "after", "agent": "d-after", "depends_on": ["patch"],
         "input": {"patched": "{{patch.output.diff}}"}}
    ]}))
    .await;

    let approved = env.start("gated", json!({"diff": "+a"})).await;
    let rejected = env.start("gated", json!({"diff": "+b"})).await;
    for id in [&approved, &rejected] {
        let run = env
            .wait_node(id, "patch", "waiting_approval", RUN_TIMEOUT)
            .await;
        assert_eq!(
            node_of(&run, "patch")["attempts"],
            0,
            "nothing ran: {run:#}"
        );
        assert_eq!(node_of(&run, "after")["status"], "pending", "{run:#}");
    }

    let (status, body) = env
        .post(
            &format!("/v1/runs/{approved}/nodes/patch/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "approve: {body}");
    let run = env.wait_run(&approved, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "patch")["output"], json!({"diff": "+a"}));
    assert_eq!(node_of(&run, "after")["output"], json!({"patched": "+a"}));

    let (status, body) = env
        .post(
            &format!("/v1/runs/{rejected}/nodes/patch/reject"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "reject: {body}");
    let run = env.wait_run(&rejected, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(node_of(&run, "patch")["status"], "failed", "{run:#}");
    assert_eq!(node_of(&run, "patch")["attempts"], 0, "{run:#}");
    assert_eq!(node_of(&run, "after")["status"], "skipped", "{run:#}");

    let (status, _) = env
        .post(
            &format!("/v1/runs/{rejected}/nodes/patch/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "a rejected node cannot be approved later");
}
