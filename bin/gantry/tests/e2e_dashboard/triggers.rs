//! A workflow's triggers on its page, clicked through in the browser: an
//! every-second cron trigger (with its time zone, next tick and the run
//! its last tick started, linked) and an event trigger, paused by its
//! button (the page and `GET /v1/schedules` say paused) and resumed.

use super::{dev_with_token, logged_in, token, WAIT};
use crate::browser::Browser;
use crate::common::Env;
use serde_json::json;

const CRON: &str = "section#triggers tr.trigger[data-kind=\"cron\"]";

/// Whether `GET /v1/schedules` has `workflow`'s cron trigger paused.
async fn paused_in_api(env: &Env, workflow: &str) -> bool {
    let (status, body) = env.get("/v1/schedules").await;
    assert_eq!(status, 200, "{body}");
    let s = body["schedules"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["workflow"] == workflow))
        .unwrap_or_else(|| panic!("no schedule of {workflow}: {body}"));
    s["paused"].as_bool().expect("paused is a bool")
}

/// Wait until the page (reloaded each try) shows a link to the run the
/// cron trigger's last tick started.
async fn last_run_link(b: &Browser, page: &str) {
    let css = format!("{CRON} td.last-run a");
    b.wait("a last run of the cron trigger", WAIT, || async {
        if b.count(&css).await == 1 {
            Ok(())
        } else {
            b.goto(page).await;
            Err("no last run yet".to_owned())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_triggers_are_listed_paused_and_resumed() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(
        json!({"name": "ticker", "nodes": [{"id": "n", "agent": "noop"}],
        "triggers": [
            {"cron": "* * * * * *", "timezone": "Europe/Berlin"},
            {"event": "repo.pushed", "filter": "event.data.branch == 'main'"}
        ]}),
    )
    .await;
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };

    // From the nav to the workflow's page.
    b.click("nav a[href=\"/workflows\"]").await;
    b.wait_path("/workflows", WAIT).await;
    b.click("tr.workflow[data-workflow=\"ticker\"] a[href=\"/workflows/ticker\"]")
        .await;
    let page = "/workflows/ticker";
    b.wait_path(page, WAIT).await;
    assert_eq!(b.count("section#triggers tr.trigger").await, 2);
    assert_eq!(
        b.text(&format!("{CRON} td.cron")).await.trim(),
        "* * * * * *"
    );
    assert_eq!(
        b.text(&format!("{CRON} td.timezone")).await.trim(),
        "Europe/Berlin"
    );
    let tick = b
        .try_attr(&format!("{CRON} td.next-tick"), "data-tick")
        .await
        .expect("a next tick");
    chrono::DateTime::parse_from_rfc3339(&tick).unwrap_or_else(|e| panic!("{tick}: {e}"));
    let event = b
        .text("section#triggers tr.trigger[data-kind=\"event\"]")
        .await;
    assert!(
        event.contains("repo.pushed") && event.contains("event.data.branch == 'main'"),
        "the event trigger names its event and filter: {event}"
    );
    assert_eq!(b.text("span.paused-state").await.trim(), "active");

    // The last tick's run is linked; its page links back.
    last_run_link(&b, page).await;
    b.shot("workflow-triggers").await;
    b.click(&format!("{CRON} td.last-run a")).await;
    b.wait("the last tick's run", WAIT, || async {
        let p = b.path().await;
        if p.starts_with("/runs/") {
            Ok(())
        } else {
            Err(p)
        }
    })
    .await;
    assert_eq!(b.page_status().await, 200);
    b.click("a[href=\"/workflows/ticker?version=1\"]").await;
    b.wait_path("/workflows/ticker?version=1", WAIT).await;

    // Pause: the page says so, and so does the API; no next tick.
    b.click("section#triggers button.pause").await;
    b.wait_path(page, WAIT).await;
    b.wait_text("span.paused-state", "paused", WAIT).await;
    assert!(paused_in_api(&env, "ticker").await, "the API says paused");
    assert_eq!(b.text(&format!("{CRON} td.next-tick")).await.trim(), "–");
    assert_eq!(b.count("section#triggers button.pause").await, 0);

    // Resume: active again, with a next tick.
    b.click("section#triggers button.resume").await;
    b.wait_text("span.paused-state", "active", WAIT).await;
    assert!(!paused_in_api(&env, "ticker").await, "the API says active");
    assert!(
        b.try_attr(&format!("{CRON} td.next-tick"), "data-tick")
            .await
            .is_some(),
        "a next tick again"
    );
    assert_eq!(b.count("section#triggers button.resume").await, 0);
    b.close().await;
}
