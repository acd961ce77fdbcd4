//! A dead job on the queue pages and its replay by a click: a process agent
//! that kills its worker on every try (as in e2e_faults.rs) ends in the
//! dead list of its queue; once the agent is fixed, the replay button
//! takes it off the list and its run finishes.

use super::{token, with_bearer, WAIT};
use crate::browser::Browser;
use crate::common::Env;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_replayed_from_its_queue_page() {
    let mut env = Env::new().await;
    let token = token();
    with_bearer(&mut env, &token);
    let hash = gantry_api::token_hash(&token);
    let lease = ("GANTRY_LEASE_MS", "1000");
    // The poison kills the process that runs it, so the API (with the
    // dashboard) and the coordinator run apart from the worker.
    let _api = env
        .serve("api", &[lease, ("GANTRY_API_TOKEN_SHA256", hash.as_str())])
        .await;
    let _coordinator = env.coordinator("coord-dash", &[lease]).await;
    let (id, fixed) = env.start_poisoned().await;
    let job = format!("{id}:0");

    // Keep a worker running until the run ends: each one the job reaches
    // dies (two tries, so two deaths; bounded). The agent runs as the
    // worker's user, or it could not kill it.
    let user = Env::own_user();
    let worker_env = [
        lease,
        ("GANTRY_DOCKER", "off"),
        ("GANTRY_PROCESS_USER", user.as_str()),
    ];
    let mut worker = env.worker("dash-w0", &worker_env).await;
    let mut deaths = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = env.run(&id).await;
        if run["status"] != "running" {
            assert_eq!(run["status"], "failed", "{run:#}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run never ended: {run:#}"
        );
        if worker.try_exit().is_some() {
            deaths += 1;
            assert!(deaths <= 5, "the job kept killing workers: {run:#}");
            worker = env.worker(&format!("dash-w{deaths}"), &worker_env).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let Some(b) = Browser::start(&env.base).await else {
        return;
    };
    b.login(&token).await;

    // The queue list counts it; the dead page shows it with why.
    b.goto("/queues").await;
    let row = "tr.queue[data-queue=\"default\"]";
    b.wait("the dead job to be counted", WAIT, || async {
        let text = b.try_text(row).await.unwrap_or_default();
        if text.split_whitespace().any(|w| w == "1") {
            Ok(())
        } else {
            b.goto("/queues").await;
            Err(text)
        }
    })
    .await;
    b.shot("queues").await;
    b.click(&format!("{row} a[href^=\"/queues/default\"]"))
        .await;
    b.wait("the default queue's page", WAIT, || async {
        let p = b.path().await;
        if p.starts_with("/queues/default") {
            Ok(())
        } else {
            Err(p)
        }
    })
    .await;
    let dead_page = "/queues/default?state=dead";
    b.goto(dead_page).await;
    let dead_row = format!("tr.dead-job[data-job=\"{job}\"]");
    let text = b.text(&dead_row).await;
    assert!(text.contains("lease expired"), "the error is shown: {text}");
    b.shot("queue-dead").await;

    std::fs::write(&fixed, "").expect("fix the agent");
    b.click(&format!("{dead_row} button.replay")).await;
    b.wait("the answer to the replay", WAIT, || async {
        let p = b.path().await;
        if p.contains("/replay") {
            Err(p)
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(
        b.page_status().await,
        200,
        "replay answered {}",
        b.path().await
    );
    b.goto(dead_page).await;
    assert_eq!(b.count(&dead_row).await, 0, "the job left the dead list");
    assert_eq!(b.count("tr.dead-job").await, 0);

    // The run proceeds: p now succeeds, and q after it.
    b.goto(&format!("/runs/{id}")).await;
    b.wait_text("#run-status", "succeeded", WAIT).await;
    b.wait_attr("g.node[data-node=\"q\"]", "data-status", "succeeded", WAIT)
        .await;
    b.close().await;
}
