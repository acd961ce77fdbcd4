//! The examples README command 1 runs, through the real `gantry dev` with
//! the docker runtime and the five agent images (scripts/build-images.sh):
//! the security review, then the triage with its `when`, its `for_each`
//! patch (approved once), a child security review per repository, the
//! `one_failed` alert skipped and the `all_done` report.

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn example(name: &str) -> Value {
    let path = common::repo_root().join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `gantry dev` with the docker runtime and the notifier's secret, and the
/// five example agents registered.
async fn docker_dev(env: &mut Env) -> common::Proc {
    let secrets = env.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets dir");
    std::fs::write(secrets.join("SLACK_WEBHOOK_URL"), "http://hooks.invalid/x").expect("secret");
    let secrets = secrets.to_str().expect("utf-8 path").to_owned();
    let dev = env
        .dev(&[
            ("GANTRY_DOCKER", "on"),
            ("GANTRY_SECRETS_DIR", &secrets),
            ("GANTRY_SECRET_BINDINGS", "notifier=SLACK_WEBHOOK_URL"),
        ])
        .await;
    for agent in example("agents-docker.json").as_array().expect("agents") {
        env.agent(agent.clone()).await;
    }
    dev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_triage_example_succeeds_with_its_children() {
    let mut env = Env::new().await;
    let _dev = docker_dev(&mut env).await;
    env.workflow(example("security-review.json")).await;
    env.workflow(example("security-triage.json")).await;
    let input = example("security-triage-input.json");
    let repos = input["repos"].as_array().map_or(0, Vec::len);
    let id = env.start("security-triage", input).await;

    // The patcher needs approval, and each instance has its own gate: with
    // max_parallel 4, the next instances park as earlier ones finish.
    // Approving the node approves every instance that waits at the time.
    let approvals = std::cell::Cell::new(0);
    let run = common::eventually("the fix node to finish", RUN_TIMEOUT, || async {
        let run = env.run(&id).await;
        match node_of(&run, "fix")["status"].as_str() {
            Some("succeeded" | "failed" | "skipped" | "cancelled") => return Ok(run),
            Some("waiting_approval") => {
                let (status, body) = env
                    .post(&format!("/v1/runs/{id}/nodes/fix/approve"), &json!({}))
                    .await;
                // 409: the instances started or ended since the read.
                assert!(status == 200 || status == 409, "{status} {body}");
                approvals.set(approvals.get() + 1);
            }
            _ => {}
        }
        Err(run)
    })
    .await;
    assert!(
        approvals.get() >= 1,
        "the fix node never waited for approval"
    );
    assert_eq!(node_of(&run, "fix")["status"], "succeeded", "{run:#}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let findings = node_of(&run, "scan")["output"]["summary"]["total"]
        .as_u64()
        .expect("findings");
    assert!(findings > 0, "the example input has findings");
    let fix = node_of(&run, "fix");
    assert_eq!(fix["instances"]["succeeded"], json!(findings), "{fix:#}");
    assert_eq!(
        fix["output"].as_array().map(Vec::len),
        Some(findings as usize)
    );
    let reviews = node_of(&run, "repos");
    assert_eq!(
        reviews["instances"]["succeeded"],
        json!(repos),
        "{reviews:#}"
    );
    assert_eq!(node_of(&run, "alert")["skip_reason"], "condition_false");
    assert_eq!(node_of(&run, "report")["status"], "succeeded");
    assert_eq!(run["output"]["findings"], json!(findings));
    assert_eq!(run["output"]["reviews"], reviews["output"]);

    let (_, children) = env.get(&format!("/v1/runs?parent={id}")).await;
    let children = children["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(children.len(), repos);
    for child in &children {
        assert_eq!(child["workflow"], "security-review");
        assert_eq!(child["status"], "succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ci_gate_example_waits_for_its_event_then_notifies() {
    let mut env = Env::new().await;
    let _dev = docker_dev(&mut env).await;
    env.workflow(example("ci-gate.json")).await;
    let id = env.start("ci-gate", json!({})).await;
    let waiting = env.wait_node(&id, "ci", "waiting", RUN_TIMEOUT).await;
    assert_eq!(
        node_of(&waiting, "ci")["wait"]["key"],
        id.as_str(),
        "{waiting:#}"
    );
    assert_eq!(
        node_of(&waiting, "notify")["status"],
        "pending",
        "{waiting:#}"
    );
    let (code, out, err) = env
        .cli(
            &[
                "events",
                "send",
                "ci.finished",
                "--key",
                &id,
                "--data",
                r#"{"status": "green", "passed": 128}"#,
            ],
            RUN_TIMEOUT,
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 waits matched"), "{out}");
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let message = node_of(&run, "notify")["output"].to_string();
    assert!(
        message.contains(&format!(
            "CI for run {id} finished: green (128 tests passed)"
        )),
        "{message}"
    );
}
