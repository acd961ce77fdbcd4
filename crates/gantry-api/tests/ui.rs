//! The dashboard against real Postgres and Redis: every page answering 200
//! with a session and the contract's ids and classes, bad input answering
//! 400/404 pages, cursor paging, the overview's counts, a for_each
//! instance approved alone from its instance page, (in `ui/triggers.rs`)
//! a workflow's triggers paused and resumed, and (in `ui/security.rs`)
//! sessions, CSRF and cross-site refusals.

mod common;
#[path = "ui/helpers.rs"]
mod helpers;
#[path = "ui/security.rs"]
mod security;
#[path = "ui/sessions.rs"]
mod sessions;
#[path = "ui/tags.rs"]
mod tags;
#[path = "ui/triggers.rs"]
mod triggers;

use axum::body::Body;
use axum::http::StatusCode;
use common::send;
use helpers::*;
use sqlx::PgPool;
use tower::ServiceExt;

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn every_page_answers_with_a_session(pool: PgPool) {
    let (app, st) = ui_app(pool).await;
    let run = seed(&app, "required").await;
    // A dead job (not a node's) and a delayed one, so those tabs have rows.
    let junk = gantry_queue::Job {
        id: "junk-1".into(),
        queue: "default".into(),
        payload: "x<y>".into(),
    };
    st.engine
        .bury_jobs(&[(junk.clone(), 3)], "boom <b>bad</b>")
        .await
        .unwrap();
    st.engine
        .schedule(&[(
            gantry_queue::Job {
                id: "later".into(),
                ..junk
            },
            std::time::Duration::from_secs(600),
        )])
        .await
        .unwrap();
    let worker = gantry_queue::WorkerInfo {
        id: "w-1".into(),
        queues: vec!["default".into()],
        concurrency: 4,
        running: vec![format!("{run}:0")],
        started_at_ms: gantry_queue::unix_ms(),
        last_heartbeat_ms: gantry_queue::unix_ms(),
        runtimes: Vec::new(),
        breakers: vec![gantry_queue::BreakerInfo {
            agent: "worker".into(),
            state: "open".into(),
            failures: 0,
        }],
    };
    st.engine
        .heartbeat(&worker, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let r = send(&app, "GET", "/v1/workers", None, &[BEARER]).await;
    assert_eq!(
        r.json["workers"][0]["breakers"][0]["state"], "open",
        "{}",
        r.json
    );
    let cookie = session(&app).await;
    for uri in [
        "/".to_owned(),
        "/queues".to_owned(),
        "/queues/default".to_owned(),
        "/queues/default?state=delayed".to_owned(),
        "/queues/default?state=in_flight".to_owned(),
        "/queues/default?state=dead".to_owned(),
        "/runs".to_owned(),
        "/runs?workflow=flow&status=running".to_owned(),
        format!("/runs/{run}"),
        "/workers".to_owned(),
        "/workflows".to_owned(),
        "/workflows/flow".to_owned(),
        "/workflows/flow?version=1".to_owned(),
        "/agents".to_owned(),
        "/agents/worker".to_owned(),
        "/ui/app.css".to_owned(),
    ] {
        let r = page(&app, &cookie, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", body(&r));
        let html = body(&r);
        if !uri.starts_with("/ui/") {
            for nav in ["/", "/queues", "/runs", "/workers", "/workflows", "/agents"] {
                assert!(
                    html.contains(&format!(r#"href="{nav}""#)),
                    "{uri} lacks nav {nav}"
                );
            }
            assert!(header(&r, "content-security-policy").contains("frame-ancestors 'none'"));
        }
    }
    let html = body(&page(&app, &cookie, "/runs").await);
    assert!(
        html.contains(&format!(r#"class="run" data-run="{run}""#)),
        "{html}"
    );
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    assert!(
        html.contains(r#"id="run-status""#) && html.contains(">running<"),
        "{html}"
    );
    assert!(
        html.contains(
            r#"class="node status-waiting_approval" data-node="a" data-status="waiting_approval""#
        ),
        "{html}"
    );
    assert!(html.contains(r#"class="node status-pending" data-node="b" data-status="pending""#));
    assert!(html.contains(r#"class="node-status""#));
    assert!(
        html.contains(r#"class="node-detail" data-node="a""#)
            || html.contains(r#"data-node="a" data-status="waiting_approval""#)
    );
    for button in [
        r#"id="cancel""#,
        r#"id="retry""#,
        r#"class="approve" type="submit" data-node="a""#,
        r#"class="reject" type="submit" data-node="a""#,
    ] {
        assert!(html.contains(button), "{button} missing");
    }
    let html = body(&page(&app, &cookie, "/workers").await);
    assert!(
        html.contains(r#"class="worker" data-worker="w-1""#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-agent="worker" data-state="open""#),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"href="/runs/{run}""#)),
        "running jobs link their run"
    );
    let html = body(&page(&app, &cookie, "/queues").await);
    assert!(
        html.contains(r#"class="queue" data-queue="default""#),
        "{html}"
    );
    let html = body(&page(&app, &cookie, "/queues/default?state=dead").await);
    assert!(
        html.contains(r#"class="dead-job" data-job="junk-1""#),
        "{html}"
    );
    assert!(
        html.contains("boom &lt;b&gt;bad&lt;/b&gt;"),
        "errors are shown, escaped"
    );
    assert!(
        html.contains(r#"action="/queues/default/dead/junk-1/replay""#)
            && html.contains(r#"class="replay""#)
    );
    // The event stream takes the session cookie (its body never ends while
    // the run runs: only the head is read).
    let req = axum::http::Request::get(format!("/runs/{run}/events"))
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(30), app.clone().oneshot(req))
        .await
        .expect("events answer")
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bad_input_answers_400_and_404_pages(pool: PgPool) {
    let (app, _) = ui_app(pool).await;
    let run = seed(&app, "auto").await;
    let cookie = session(&app).await;
    for (uri, status) in [
        ("/runs?cursor=zz".to_owned(), 400),
        (format!("/runs?cursor={}", "ab".repeat(300)), 400),
        ("/runs?status=sleeping".to_owned(), 400),
        ("/runs?workflow=Bad%20Name".to_owned(), 400),
        ("/queues/default?state=dead&cursor=abc".to_owned(), 400),
        ("/queues/default?state=ready&cursor=1-x".to_owned(), 400),
        ("/queues/default?state=delayed&cursor=-5".to_owned(), 400),
        ("/queues/default?state=lost".to_owned(), 400),
        ("/queues/BAD:NAME".to_owned(), 404),
        ("/queues/never-used".to_owned(), 404),
        ("/runs/not-a-uuid".to_owned(), 404),
        (format!("/runs/{}", uuid::Uuid::new_v4()), 404),
        ("/workflows/nope".to_owned(), 404),
        ("/workflows/flow?version=9".to_owned(), 404),
        ("/workflows/flow?version=x".to_owned(), 400),
        ("/agents/nope".to_owned(), 404),
    ] {
        let r = page(&app, &cookie, &uri).await;
        assert_eq!(r.status.as_u16(), status, "{uri}: {}", body(&r));
        assert!(
            body(&r).contains(r#"id="error-message""#),
            "{uri} answers an html page"
        );
    }
    // A valid cursor pages on.
    let r = page(&app, &cookie, &format!("/runs/{run}")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn runs_page_by_cursor_and_keep_their_filter(pool: PgPool) {
    let (app, _) = ui_app(pool).await;
    let first = seed(&app, "auto").await;
    for _ in 0..54 {
        let r = send(&app, "POST", "/v1/workflows/flow/runs", None, &[BEARER]).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let cookie = session(&app).await;
    let rows = |html: &str| html.matches(r#"<tr class="run" data-run=""#).count();
    let html = body(&page(&app, &cookie, "/runs?workflow=flow").await);
    assert_eq!(rows(&html), 50);
    assert!(
        !html.contains(&format!(r#"data-run="{first}""#)),
        "newest first"
    );
    let at = html.find(r#"id="next-page" href=""#).expect("a next page") + 21;
    let next = html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&");
    assert!(next.contains("workflow=flow"), "{next}");
    let html = body(&page(&app, &cookie, &next).await);
    assert_eq!(rows(&html), 5);
    assert!(
        html.contains(&format!(r#"data-run="{first}""#)),
        "the oldest is last"
    );
    assert!(!html.contains(r#"id="next-page""#));
    assert!(html.contains(r#"id="first-page""#));
    let html = body(&page(&app, &cookie, "/runs?status=failed").await);
    assert_eq!(rows(&html), 0);
    assert!(html.contains(r#"id="no-runs""#));
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn overview_counts_runs_by_status_and_the_last_hour(pool: PgPool) {
    let (app, st) = ui_app(pool).await;
    let template = seed(&app, "auto").await;
    let template = uuid::Uuid::parse_str(&template).unwrap();
    // 99 copies created over the last two hours (copy g, 1..=99, g * 7200 / 99
    // seconds ago, finished 3 s later), statuses by g % 4: running,
    // succeeded, failed, cancelled.
    let written = st.engine.seed_runs_like(template, 99).await.unwrap();
    assert_eq!(written, 99);
    let counts = st.engine.reads().run_counts().await.unwrap();
    let count = |s: &str| {
        counts
            .iter()
            .find(|(st, _)| st.as_str() == s)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (
            count("running"),
            count("succeeded"),
            count("failed"),
            count("cancelled")
        ),
        (24 + 1, 25, 25, 25)
    );
    // Finished within the hour: copies 1..=49 less the running ones (4, 8, ... 48).
    let a = st.engine.reads().run_activity(12, 300).await.unwrap();
    let finished: i64 = a
        .finished
        .iter()
        .map(|b| b.succeeded + b.failed + b.cancelled)
        .sum();
    let failed: i64 = a.finished.iter().map(|b| b.failed).sum();
    assert_eq!((finished, failed), (37, 12));
    assert_eq!(a.started, 49 + 1, "the template was created now");
    assert!(a.finished[0].succeeded + a.finished[0].failed + a.finished[0].cancelled > 0);

    let cookie = session(&app).await;
    let html = body(&page(&app, &cookie, "/").await);
    assert!(html.contains(r#"id="runs-total">100<"#), "{html}");
    assert!(html.contains(r#"id="finished-last-hour">37<"#), "{html}");
    assert!(html.contains(r#"id="failed-last-hour">12<"#), "{html}");
    let html = body(&page(&app, &cookie, "/runs?status=failed").await);
    assert_eq!(html.matches(r#"<tr class="run""#).count(), 25);
    // A failed copy's page shows the node error.
    let at = html.find(r#"data-run=""#).unwrap() + 10;
    let failed_run = &html[at..at + 36];
    let html = body(&page(&app, &cookie, &format!("/runs/{failed_run}")).await);
    assert!(
        html.contains(">failed<") && html.contains("seeded failure: exit code 1"),
        "{html}"
    );
    assert!(
        html.contains(r#"data-node="b" data-status="skipped""#),
        "{html}"
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_gated_map_instance_is_approved_alone_from_its_instance_page(pool: PgPool) {
    let (app, _st) = ui_app(pool).await;
    let agent = serde_json::json!({"name": "gated", "runtime": "builtin", "builtin": "echo",
                                   "approval": "required"});
    create(&app, "/v1/agents", Some(agent)).await;
    let def = serde_json::json!({"name": "fan", "nodes": [
        {"id": "m", "agent": "gated", "for_each": "{{run.input.items}}", "input": "{{item}}"}
    ]});
    create(&app, "/v1/workflows", Some(def)).await;
    let start = serde_json::json!({"input": {"items": ["x", "y"]}});
    let run = create(&app, "/v1/workflows/fan/runs", Some(start)).await;
    let run = run["id"].as_str().unwrap().to_owned();

    let cookie = session(&app).await;
    let list = format!("/runs/{run}/nodes/m/instances");
    let html = body(&page(&app, &cookie, &list).await);
    for i in [0, 1] {
        for (class, verb) in [("approve", "approve"), ("reject", "reject")] {
            assert!(
                html.contains(&format!(r#"action="{list}/{i}/{verb}""#)),
                "{verb} form of instance {i}: {html}"
            );
            assert!(
                html.contains(&format!(
                    r#"class="{class}" type="submit" data-index="{i}""#
                )),
                "{html}"
            );
        }
    }
    let form = Some(Body::from(format!("csrf={}", csrf_of(&html))));
    let r = send(
        &app,
        "POST",
        &format!("{list}/1/approve"),
        form,
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    assert_eq!(header(&r, "location"), list);
    let r = send(
        &app,
        "GET",
        &format!("/v1/runs/{run}/nodes/m/instances"),
        None,
        &[BEARER],
    )
    .await;
    let statuses: Vec<&str> = r.json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["waiting_approval", "queued"], "{}", r.json);
    // The approved one has no buttons any more; the other keeps them.
    let html = body(&page(&app, &cookie, &list).await);
    assert!(html.contains(&format!(r#"action="{list}/0/approve""#)));
    assert!(!html.contains(&format!(r#"action="{list}/1/approve""#)));
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_gate_with_an_approval_timeout_shows_its_deadline_and_then_its_decider(pool: PgPool) {
    let (app, _st) = ui_app(pool).await;
    let agent = serde_json::json!({"name": "gated", "runtime": "builtin", "builtin": "echo",
                                   "approval": "required", "approval_timeout_s": 600});
    create(&app, "/v1/agents", Some(agent)).await;
    let def = serde_json::json!({"name": "timed", "nodes": [
        {"id": "g", "agent": "gated"},
        {"id": "m", "agent": "gated", "for_each": "{{run.input.items}}", "input": "{{item}}"}
    ]});
    create(&app, "/v1/workflows", Some(def)).await;
    let start = serde_json::json!({"input": {"items": ["x"]}});
    let run = create(&app, "/v1/workflows/timed/runs", Some(start)).await;
    let run = run["id"].as_str().unwrap().to_owned();

    let cookie = session(&app).await;
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    assert!(
        html.contains(r#"class="approval-deadline""#)
            && html.contains("decided by its approval timeout at"),
        "the waiting gate shows its deadline: {html}"
    );
    let list = format!("/runs/{run}/nodes/m/instances");
    let html = body(&page(&app, &cookie, &list).await);
    assert!(
        html.contains(r#"class="approval-deadline""#),
        "the waiting instance shows its deadline: {html}"
    );

    let r = send(
        &app,
        "POST",
        &format!("/v1/runs/{run}/nodes/g/approve"),
        None,
        &[BEARER],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    assert!(
        html.contains(r#"approval decided by <span class="mono decided-by">api</span>"#),
        "the answered gate names its decider: {html}"
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_waiting_node_shows_its_event_key_and_deadline_then_what_matched_it(pool: PgPool) {
    let (app, _st) = ui_app(pool).await;
    let def = serde_json::json!({"name": "gated", "nodes": [
        {"id": "ci", "wait": {"event": "ci.finished", "key": "{{run.id}}", "timeout_s": 600}}
    ]});
    create(&app, "/v1/workflows", Some(def)).await;
    let run = create(
        &app,
        "/v1/workflows/gated/runs",
        Some(serde_json::json!({"input": {}})),
    )
    .await;
    let run = run["id"].as_str().unwrap().to_owned();
    let cookie = session(&app).await;
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    for want in [
        "waits for event <span class=\"mono\">ci.finished</span>".to_owned(),
        format!(r#"<span class="mono wait-key">{run}</span>"#),
        r#"class="wait-deadline""#.to_owned(),
    ] {
        assert!(html.contains(&want), "{want} missing: {html}");
    }
    let ev = serde_json::json!({"name": "ci.finished", "key": run, "data": {}, "id": "ci-42"});
    let r = send(
        &app,
        "POST",
        "/v1/events",
        Some(Body::from(ev.to_string())),
        &[BEARER, ("content-type", "application/json")],
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["waits_matched"], 1, "{}", r.json);
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    assert!(
        html.contains(r#"matched by event <span class="mono wait-matched">ci-42</span>"#),
        "the matched wait names its event: {html}"
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn the_events_page_lists_events_newest_first_and_filters_by_name(pool: PgPool) {
    let (app, _st) = ui_app(pool).await;
    for (name, key) in [
        ("ci.finished", "r1"),
        ("repo.pushed", ""),
        ("ci.finished", "r2"),
    ] {
        let ev = serde_json::json!({"name": name, "key": key, "data": {"k": key}});
        let r = send(
            &app,
            "POST",
            "/v1/events",
            Some(Body::from(ev.to_string())),
            &[BEARER, ("content-type", "application/json")],
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    }
    let cookie = session(&app).await;
    let html = body(&page(&app, &cookie, "/events").await);
    assert_eq!(html.matches(r#"<tr class="event""#).count(), 3, "{html}");
    let first = html.find(r#"data-name="ci.finished""#).unwrap();
    let pushed = html.find(r#"data-name="repo.pushed""#).unwrap();
    assert!(first < pushed, "newest first: {html}");
    assert!(
        html.contains(r#"href="/events""#),
        "the nav links the page: {html}"
    );

    let html = body(&page(&app, &cookie, "/events?name=repo.pushed").await);
    assert_eq!(html.matches(r#"<tr class="event""#).count(), 1, "{html}");
    let html = body(&page(&app, &cookie, "/events?name=nothing.here").await);
    assert!(html.contains(r#"id="no-events""#), "{html}");
    let r = page(&app, &cookie, "/events?name=Bad%20Name").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
