//! Events sent from outside (SPEC section 9) through the real `gantry dev`
//! process and the CLI: `gantry events send` stores the event before it
//! answers, a repeat with the same `id` has no new effect, and a bad event
//! exits non-zero naming its field.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::Env;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_events_once_per_id_and_names_a_bad_field() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;

    let send = ["events", "send", "ci.finished", "--key", "run-1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        send.iter().chain(extra).copied().collect()
    };
    let (code, out, err) = env
        .cli(&with(&["--data", r#"{"ok":true}"#, "--id", "evt-1"]), T)
        .await;
    assert_eq!(code, 0, "events send: {out}{err}");
    assert!(
        out.contains("event evt-1: 0 waits matched, 0 runs started"),
        "{out}"
    );
    let (code, out, err) = env
        .cli(&with(&["--data", r#"{"ok":true}"#, "--id", "evt-1"]), T)
        .await;
    assert_eq!(code, 0, "events send again: {out}{err}");
    assert!(out.contains("(sent before)"), "{out}");
    let (code, out, err) = env
        .cli(&with(&["--data", r#"{"ok":false}"#, "--id", "evt-1"]), T)
        .await;
    assert_ne!(code, 0, "another event under a used id: {out}{err}");
    assert!(err.contains("409"), "{err}");

    let (code, out, err) = env
        .cli(&["events", "send", "Bad Name", "--data", "{}"], T)
        .await;
    assert_ne!(code, 0, "a bad name: {out}{err}");
    assert!(err.contains("422") && err.contains("name"), "{err}");

    let (status, body) = env.get("/v1/events?name=ci.finished&key=run-1").await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "one event for the id: {body}");
    assert_eq!(events[0]["data"]["ok"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_triggers_start_one_run_per_matching_event_and_none_while_paused() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(serde_json::json!({"name": "on-push",
        "triggers": [
            {"event": "repo.pushed", "filter": "event.data.branch == 'main'"},
            {"event": "repo.pushed", "filter": "event.key == 'app'"}
        ],
        "nodes": [{"id": "build", "agent": "echo", "input": {"sha": "{{run.input.sha}}"}}]}))
        .await;
    let send = |body: serde_json::Value| {
        let env = &env;
        async move { env.post("/v1/events", &body).await }
    };
    let (status, answer) = send(serde_json::json!({"name": "repo.pushed", "key": "lib",
        "data": {"branch": "dev", "sha": "d1"}}))
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["runs_started"], 0, "the filter refuses it: {answer}");
    let main = serde_json::json!({"name": "repo.pushed", "key": "app", "id": "push-1",
        "data": {"branch": "main", "sha": "m1"}});
    let (status, answer) = send(main.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["runs_started"], 1,
        "both triggers match, one run: {answer}"
    );
    let (status, again) = send(main).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answer);
    let (_, runs) = env.get("/v1/runs?workflow=on-push").await;
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let id = runs[0]["id"].as_str().expect("id");
    let done = env.wait_run(id, T).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["input"]["sha"], "m1", "the event's data is the input");

    let (status, body) = env
        .post("/v1/workflows/on-push/pause", &serde_json::json!({}))
        .await;
    assert_eq!(
        (status, body["paused"].clone()),
        (200, serde_json::json!(true)),
        "{body}"
    );
    let (_, answer) = send(serde_json::json!({"name": "repo.pushed", "key": "app",
        "data": {"branch": "main", "sha": "m2"}}))
    .await;
    assert_eq!(answer["runs_started"], 0, "paused: {answer}");
    let (status, _) = env
        .post("/v1/workflows/on-push/resume", &serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, runs) = env.get("/v1/runs?workflow=on-push").await;
    assert_eq!(
        runs["runs"].as_array().map(Vec::len),
        Some(1),
        "the paused event never runs later: {runs}"
    );
    let (_, events) = env.get("/v1/events?name=repo.pushed").await;
    let started: Vec<i64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["runs_started"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(started, [0, 1, 0], "newest first: {events}");
}
