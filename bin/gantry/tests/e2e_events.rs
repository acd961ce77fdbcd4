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
