//! `wait` nodes (SPEC 2.1 and 9) through the real `gantry dev` process: an
//! event sent after the node began to wait completes it, so does one sent
//! after the run started but before the node waited, a wrong key or an
//! event from before the run does not; `on_timeout` `fail` and `skip`; an
//! event sent three times under one `id` has its effect once; and 1,000
//! parked runs resumed by 1,000 events from 20 concurrent clients lose none
//! and resume none twice.

mod common;

use common::{node_of, Env};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// `gate` waits for `ci.finished` keyed by its run's id, then `notify`
/// echoes the event's data. `slow` before the wait makes room for an event
/// sent while the node does not wait yet.
async fn setup(env: &mut Env) -> common::Proc {
    let dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "ci-gate", "nodes": [
        {"id": "slow", "agent": "sleep", "input": {"ms": "{{run.input.ms}}"}},
        {"id": "gate", "depends_on": ["slow"],
         "wait": {"event": "ci.finished", "key": "{{run.id}}", "timeout_s": 600}},
        {"id": "notify", "agent": "echo", "depends_on": ["gate"],
         "input": {"ci": "{{gate.output}}"}}
    ]}))
    .await;
    dev
}

async fn send(env: &Env, event: &Value) -> (u16, Value) {
    env.post("/v1/events", event).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_completes_the_wait_for_its_name_and_key_only() {
    let mut env = Env::new().await;
    let _dev = setup(&mut env).await;
    let run = env.start("ci-gate", json!({"ms": 0})).await;
    let waiting = env.wait_node(&run, "gate", "waiting", T).await;
    let gate = node_of(&waiting, "gate");
    assert_eq!(gate["wait"]["event"], "ci.finished", "{waiting:#}");
    assert_eq!(gate["wait"]["key"], run.as_str(), "{waiting:#}");
    assert!(gate["wait"]["deadline"].is_string(), "{waiting:#}");

    for wrong in [
        json!({"name": "ci.finished", "key": "another-run", "data": {"n": 1}}),
        json!({"name": "ci.started", "key": run, "data": {"n": 2}}),
    ] {
        let (status, body) = send(&env, &wrong).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["waits_matched"], 0, "{wrong} matched: {body}");
    }
    let (status, body) = send(
        &env,
        &json!({"name": "ci.finished", "key": run, "data": {"passed": true}, "id": "ci-1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["waits_matched"], 1, "{body}");

    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let gate = node_of(&done, "gate");
    assert_eq!(gate["output"], json!({"passed": true}), "{done:#}");
    assert_eq!(gate["attempts"], 1, "{done:#}");
    assert_eq!(gate["wait"]["matched_event"], "ci-1", "{done:#}");
    assert_eq!(
        node_of(&done, "notify")["output"],
        json!({"ci": {"passed": true}}),
        "{done:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_before_the_node_waits_still_matches_but_not_one_from_before_the_run() {
    let mut env = Env::new().await;
    let _dev = setup(&mut env).await;
    env.workflow(json!({"name": "keyed", "nodes": [
        {"id": "gate", "wait": {"event": "deploy.done", "key": "{{run.input.key}}",
                                "timeout_s": 2, "on_timeout": "skip"}}
    ]}))
    .await;
    // Sent before the run started: it must not match.
    let (status, body) = send(
        &env,
        &json!({"name": "deploy.done", "key": "k1", "data": {"old": true}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let old = env.start("keyed", json!({"key": "k1"})).await;

    // `slow` sleeps while the event arrives: the node is still pending.
    let run = env.start("ci-gate", json!({"ms": 1500})).await;
    let (_, detail) = env.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(node_of(&detail, "gate")["status"], "pending", "{detail:#}");
    let (status, body) = send(
        &env,
        &json!({"name": "ci.finished", "key": run, "data": {"early": true}, "id": "early"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["waits_matched"], 0, "nothing waits yet: {body}");

    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let gate = node_of(&done, "gate");
    assert_eq!(gate["output"], json!({"early": true}), "{done:#}");
    assert_eq!(gate["wait"]["matched_event"], "early", "{done:#}");
    let (_, events) = env.get("/v1/events?name=ci.finished").await;
    assert_eq!(
        events["events"][0]["waits_matched"], 1,
        "the event counts the wait it completed later: {events}"
    );
    let (status, again) = send(
        &env,
        &json!({"name": "ci.finished", "key": run, "data": {"early": true}, "id": "early"}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body, "a repeat gets the first answer");

    let old = env.wait_run(&old, T).await;
    let gate = node_of(&old, "gate");
    assert_eq!(gate["status"], "skipped", "{old:#}");
    assert_eq!(gate["skip_reason"], "timed_out", "{old:#}");
    assert_eq!(old["status"], "succeeded", "{old:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_fails_or_is_skipped_as_its_on_timeout_says() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "timeouts", "nodes": [
        {"id": "failing", "wait": {"event": "never.sent", "key": "{{run.id}}", "timeout_s": 1}},
        {"id": "skipping", "wait": {"event": "never.sent", "key": "{{run.id}}", "timeout_s": 1,
                                    "on_timeout": "skip"}},
        {"id": "after-fail", "agent": "noop", "depends_on": ["failing"]},
        {"id": "after-skip", "agent": "noop", "depends_on": ["skipping"],
         "trigger_rule": "none_failed"},
        {"id": "cleanup", "agent": "noop", "depends_on": ["failing"], "trigger_rule": "one_failed"}
    ]}))
    .await;
    let run = env.start("timeouts", json!({})).await;
    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let failing = node_of(&done, "failing");
    assert_eq!(failing["status"], "failed", "{done:#}");
    assert_eq!(
        failing["error"], "timed out waiting for event never.sent",
        "{done:#}"
    );
    assert_eq!(
        node_of(&done, "after-fail")["status"],
        "skipped",
        "{done:#}"
    );
    assert_eq!(node_of(&done, "cleanup")["status"], "succeeded", "{done:#}");
    let skipping = node_of(&done, "skipping");
    assert_eq!(skipping["status"], "skipped", "{done:#}");
    assert_eq!(skipping["skip_reason"], "timed_out", "{done:#}");
    assert_eq!(
        node_of(&done, "after-skip")["status"],
        "succeeded",
        "{done:#}"
    );
    // Too late: the wait is over, and the event matches nothing.
    let (status, body) = send(&env, &json!({"name": "never.sent", "key": run, "data": {}})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["waits_matched"], 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_three_times_under_one_id_has_its_effect_once() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "shared", "nodes": [
        {"id": "gate", "wait": {"event": "release.cut", "key": "v1"}},
        {"id": "after", "agent": "echo", "depends_on": ["gate"], "input": {"v": "{{gate.output}}"}}
    ]}))
    .await;
    let first = env.start("shared", json!({})).await;
    env.wait_node(&first, "gate", "waiting", T).await;
    let event = json!({"name": "release.cut", "key": "v1", "data": {"tag": "v1"}, "id": "cut-1"});
    let (status, answer) = send(&env, &event).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["waits_matched"], 1, "{answer}");
    env.wait_run(&first, T).await;
    // A run started after the event: a repeat must not complete it.
    let second = env.start("shared", json!({})).await;
    env.wait_node(&second, "gate", "waiting", T).await;
    for _ in 0..2 {
        let (status, again) = send(&env, &event).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, answer, "a repeat answers as the first time");
    }
    let first = env.run(&first).await;
    assert_eq!(first["status"], "succeeded", "{first:#}");
    assert_eq!(node_of(&first, "after")["attempts"], 1, "{first:#}");
    let second = env.run(&second).await;
    assert_eq!(
        node_of(&second, "gate")["status"],
        "waiting",
        "a repeat has no new effect: {second:#}"
    );
    let (_, events) = env.get("/v1/events?name=release.cut").await;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parked_runs_resumed_by_concurrent_clients_lose_none_and_resume_none_twice() {
    const RUNS: usize = 1000;
    const CLIENTS: usize = 20;
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "parked", "nodes": [
        {"id": "gate", "wait": {"event": "job.done", "key": "{{run.id}}"}},
        {"id": "after", "agent": "echo", "depends_on": ["gate"], "input": {"got": "{{gate.output.n}}"}}
    ]}))
    .await;
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(env.start("parked", json!({})).await);
    }
    // Every run parked (the last one started last).
    for run in runs.iter().rev().take(5) {
        env.wait_node(run, "gate", "waiting", T).await;
    }
    let env = std::sync::Arc::new(env);
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let env = env.clone();
        let mine: Vec<(usize, String)> = runs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % CLIENTS == c)
            .map(|(i, r)| (i, r.clone()))
            .collect();
        clients.spawn(async move {
            let mut matched = 0;
            for (n, run) in mine {
                let event = json!({"name": "job.done", "key": run, "data": {"n": n}});
                let (status, body) = env.post("/v1/events", &event).await;
                assert_eq!(status, 202, "{body}");
                matched += body["waits_matched"].as_u64().unwrap_or(0);
            }
            matched
        });
    }
    let mut matched = 0;
    while let Some(m) = clients.join_next().await {
        matched += m.expect("client");
    }
    assert_eq!(matched, RUNS as u64, "every event matched exactly its run");
    for (n, run) in runs.iter().enumerate() {
        let done = env.wait_run(run, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "succeeded", "{done:#}");
        assert_eq!(node_of(&done, "gate")["attempts"], 1, "{done:#}");
        let after = node_of(&done, "after");
        assert_eq!(after["attempts"], 1, "resumed once: {done:#}");
        assert_eq!(after["output"], json!({"got": n}), "{done:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_waiting_and_its_event_matches_nothing() {
    let mut env = Env::new().await;
    let _dev = setup(&mut env).await;
    let run = env.start("ci-gate", json!({"ms": 0})).await;
    env.wait_node(&run, "gate", "waiting", T).await;
    let (status, body) = env
        .post(&format!("/v1/runs/{run}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let done = env.wait_run(&run, T).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert_eq!(node_of(&done, "gate")["status"], "cancelled", "{done:#}");
    let (status, body) = send(
        &env,
        &json!({"name": "ci.finished", "key": run, "data": {}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["waits_matched"], 0, "{body}");
    assert_eq!(node_of(&env.run(&run).await, "gate")["status"], "cancelled");
}
