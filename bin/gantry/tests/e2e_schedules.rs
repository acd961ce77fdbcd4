//! Cron triggers (SPEC section 9) through real `gantry api` and
//! `gantry coordinator` processes: an every-second trigger for 60 s under
//! three coordinators, one SIGKILLed halfway, starts one run per tick and
//! none twice; a coordinator stopped for 10 s starts exactly one run for
//! the ticks it missed; a paused workflow runs no tick, and the ticks of
//! the pause never run; `GET /v1/schedules` and `gantry schedules` show
//! the next and last tick.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use chrono::{DateTime, Utc};
use common::Env;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// The ticks of the runs `workflow`'s cron trigger 0 started, in order,
/// from their idempotency keys (`cron:WORKFLOW:0:TICK`; runs started
/// through the API have none).
async fn ticks(env: &Env, workflow: &str) -> Vec<DateTime<Utc>> {
    let mut conn = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect");
    let keys: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT idempotency_key FROM runs WHERE workflow_name = $1 ORDER BY created_at",
    )
    .bind(workflow)
    .fetch_all(&mut conn)
    .await
    .expect("runs");
    let prefix = format!("cron:{workflow}:0:");
    let mut out: Vec<DateTime<Utc>> = keys
        .into_iter()
        .filter_map(|(k,)| k.filter(|k| k.starts_with(&prefix)))
        .map(|k| {
            let tick = &k[prefix.len()..];
            DateTime::parse_from_rfc3339(tick)
                .unwrap_or_else(|e| panic!("{k}: {e}"))
                .with_timezone(&Utc)
        })
        .collect();
    out.sort();
    out
}

async fn every_second(env: &Env, name: &str) {
    env.workflow(
        json!({"name": name, "triggers": [{"cron": "* * * * * *", "input": {"from": "cron"}}],
                        "nodes": [{"id": "n", "agent": "noop"}]}),
    )
    .await;
}

/// Wait until `workflow` has at least `n` tick runs; returns them.
async fn wait_ticks(env: &Env, workflow: &str, n: usize, timeout: Duration) -> Vec<DateTime<Utc>> {
    common::eventually(&format!("{n} ticks of {workflow}"), timeout, || async {
        let t = ticks(env, workflow).await;
        if t.len() >= n {
            Ok(t)
        } else {
            Err(json!(t.len()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_one_killed_start_one_run_per_tick() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    env.builtin_agents().await;
    let mut coordinators = Vec::new();
    for i in 0..3 {
        coordinators.push(env.coordinator(&format!("coordinator-{i}"), &[]).await);
    }
    let _worker = env.worker("w1", &[]).await;
    every_second(&env, "tick").await;
    let began = Utc::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    coordinators[0].kill();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let ended = Utc::now();
    // Let a tick in flight at the end land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticks = ticks(&env, "tick").await;
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "a tick with two runs: {ticks:?}"
    );
    let in_window = ticks.iter().filter(|t| **t > began && **t <= ended).count();
    let seconds = (ended - began).num_seconds() as usize;
    assert!(
        in_window.abs_diff(seconds) <= 1,
        "{in_window} runs for {seconds} ticks: {ticks:?}"
    );
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_seconds(),
            1,
            "every tick ran, killed coordinator or not: {ticks:?}"
        );
    }
    // Each run started within a second of its tick.
    let mut conn = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect");
    let (late,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM runs WHERE workflow_name = 'tick'
           AND created_at - (split_part(idempotency_key, ':0:', 2))::timestamptz
               >= interval '1 second'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("late runs");
    assert_eq!(late, 0, "runs started a second or more after their tick");
    let (status, body) = env.get("/v1/schedules").await;
    assert_eq!(status, 200, "{body}");
    let s = &body["schedules"][0];
    assert_eq!(s["workflow"], "tick", "{body}");
    assert_eq!(s["cron"], "* * * * * *", "{body}");
    assert_eq!(s["timezone"], "UTC", "{body}");
    assert_eq!(s["paused"], false, "{body}");
    assert!(
        s["next_tick"].is_string() && s["last_run"].is_string(),
        "{body}"
    );
    let (_, runs) = env.get("/v1/runs?workflow=tick&limit=1").await;
    let last = runs["runs"][0]["id"].as_str().expect("a run").to_owned();
    let (_, detail) = env.get(&format!("/v1/runs/{last}")).await;
    assert_eq!(detail["input"], json!({"from": "cron"}), "{detail:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_back_after_ten_seconds_runs_only_the_latest_missed_tick() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    env.builtin_agents().await;
    let mut coordinator = env.coordinator("coordinator-a", &[]).await;
    every_second(&env, "gap").await;
    wait_ticks(&env, "gap", 2, T).await;
    coordinator.kill();
    let stopped = Utc::now();
    let before = ticks(&env, "gap").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let restarted = Utc::now();
    let _back = env.coordinator("coordinator-b", &[]).await;
    let after = wait_ticks(&env, "gap", before.len() + 3, T).await;
    let last_before = *before.last().expect("ticks before the stop");
    let missed: Vec<_> = after
        .iter()
        .filter(|t| **t > last_before && **t <= restarted)
        .collect();
    assert_eq!(
        missed.len(),
        1,
        "one run for the ticks missed between {stopped} and {restarted}: {after:?}"
    );
    assert!(
        (restarted - *missed[0]).num_milliseconds() < 2500,
        "the one that runs is the latest: {missed:?}, back at {restarted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_workflow_runs_no_tick_and_never_runs_the_pauses_ticks() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    every_second(&env, "paused").await;
    wait_ticks(&env, "paused", 1, T).await;
    let (code, out, err) = env.cli(&["workflows", "pause", "paused"], T).await;
    assert_eq!(code, 0, "{out}{err}");
    // A tick whose run was starting as the pause landed may still come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused_at = Utc::now();
    let during = ticks(&env, "paused").await;
    let (_, body) = env.get("/v1/schedules").await;
    assert_eq!(body["schedules"][0]["paused"], true, "{body}");
    assert!(body["schedules"][0]["next_tick"].is_null(), "{body}");
    let (code, out, _) = env.cli(&["schedules"], T).await;
    assert_eq!(code, 0);
    assert!(out.contains("paused") && out.contains("yes"), "{out}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ticks(&env, "paused").await, during, "no tick while paused");
    // API starts still work.
    env.start("paused", json!({})).await;
    let resumed_at = Utc::now();
    let (code, out, err) = env.cli(&["workflows", "resume", "paused"], T).await;
    assert_eq!(code, 0, "{out}{err}");
    let after = wait_ticks(&env, "paused", during.len() + 2, T).await;
    assert!(
        after
            .iter()
            .all(|t| *t <= paused_at || *t > resumed_at - chrono::Duration::milliseconds(1000)),
        "a tick of the pause ran later: {after:?} (paused {paused_at}, resumed {resumed_at})"
    );
    let (status, body) = env.post("/v1/workflows/nope/pause", &json!({})).await;
    assert_eq!(status, 404, "{body}");
}
