//! The triggers section of a workflow page: each trigger of the latest
//! version with the next tick `GET /v1/schedules` gives, the last tick
//! linked to its run, and the Pause and Resume forms (CSRF-checked) that
//! pause and resume the workflow's triggers.

use super::common::send;
use super::helpers::*;
use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The HTML of the trigger row `index` of a workflow page.
fn row(html: &str, index: usize) -> &str {
    let start = html
        .find(&format!(r#"<tr class="trigger" data-index="{index}""#))
        .unwrap_or_else(|| panic!("no trigger row {index}: {html}"));
    let len = html[start..].find("</tr>").expect("the row ends");
    &html[start..start + len]
}

/// The one schedule of `workflow` in `GET /v1/schedules`.
async fn schedule(app: &Router, workflow: &str) -> serde_json::Value {
    let r = send(app, "GET", "/v1/schedules", None, &[BEARER]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let mine: Vec<&serde_json::Value> = r.json["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["workflow"] == workflow)
        .collect();
    assert_eq!(mine.len(), 1, "{}", r.json);
    mine[0].clone()
}

/// POST the form at `action` with `csrf` (none when empty).
async fn post_form(app: &Router, cookie: &str, action: &str, csrf: &str) -> String {
    let form = (!csrf.is_empty()).then(|| Body::from(format!("csrf={csrf}")));
    let r = send(
        app,
        "POST",
        action,
        form,
        &[
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    )
    .await;
    if csrf.is_empty() {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", body(&r));
        return String::new();
    }
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    header(&r, "location")
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_workflow_page_lists_its_triggers_and_pauses_and_resumes_them(pool: PgPool) {
    let (app, st) = ui_app(pool).await;
    let agent = serde_json::json!({"name": "worker", "runtime": "builtin", "builtin": "noop"});
    create(&app, "/v1/agents", Some(agent)).await;
    let def = serde_json::json!({"name": "nightly", "nodes": [{"id": "a", "agent": "worker"}],
    "triggers": [
        {"cron": "0 0 * * *", "timezone": "Europe/Berlin", "input": {"from": "cron"}},
        {"event": "repo.pushed", "filter": "event.data.branch == 'main'"}
    ]});
    create(&app, "/v1/workflows", Some(def)).await;
    create(
        &app,
        "/v1/workflows",
        Some(serde_json::json!({"name": "plain", "nodes": [{"id": "a", "agent": "worker"}]})),
    )
    .await;
    let cookie = session(&app).await;
    let page_of = |uri: &'static str| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move { body(&page(&app, &cookie, uri).await) }
    };

    // Both triggers, the cron one with the next tick the API gives.
    let html = page_of("/workflows/nightly").await;
    assert!(
        html.contains(r#"<section id="triggers" data-paused="false""#),
        "{html}"
    );
    assert_eq!(html.matches(r#"<tr class="trigger""#).count(), 2, "{html}");
    let sched = schedule(&app, "nightly").await;
    let next: DateTime<Utc> = serde_json::from_value(sched["next_tick"].clone()).unwrap();
    assert!(next > Utc::now(), "{sched}");
    let cron = row(&html, 0);
    for want in [
        r#"data-kind="cron""#.to_owned(),
        ">0 0 * * *<".to_owned(),
        ">Europe/Berlin<".to_owned(),
        r#"{"from":"cron"}"#.replace('"', "&quot;"),
        format!(r#"data-tick="{}""#, next.to_rfc3339()),
        next.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    ] {
        assert!(cron.contains(&want), "{want} missing: {cron}");
    }
    let event = row(&html, 1);
    for want in [
        r#"data-kind="event""#,
        r#"href="/events?name=repo.pushed""#,
        ">event.data.branch == 'main'<",
    ] {
        assert!(event.contains(want), "{want} missing: {event}");
    }
    assert!(html.contains(r#"class="paused-state status status-succeeded">active<"#));
    assert!(
        html.contains(r#"action="/workflows/nightly/pause""#),
        "{html}"
    );
    assert!(html.contains(r#"class="pause""#) && !html.contains(r#"class="resume""#));

    // The tick, once due (time is an argument), shows with its run.
    st.engine
        .fire_schedules(next + chrono::Duration::seconds(1))
        .await
        .unwrap();
    let sched = schedule(&app, "nightly").await;
    let run = sched["last_run"].as_str().expect("a last run").to_owned();
    let html = page_of("/workflows/nightly").await;
    let cron = row(&html, 0);
    assert!(
        cron.contains(&format!(r#"<a href="/runs/{run}">"#)),
        "{cron}"
    );
    assert!(
        cron.contains(&format!(
            r#"<td class="last-tick">{}</td>"#,
            next.format("%Y-%m-%d %H:%M:%SZ")
        )),
        "{cron}"
    );

    // Pause: refused without the CSRF token, done with it.
    post_form(&app, &cookie, "/workflows/nightly/pause", "").await;
    assert_eq!(schedule(&app, "nightly").await["paused"], false);
    let at = post_form(&app, &cookie, "/workflows/nightly/pause", &csrf_of(&html)).await;
    assert_eq!(at, "/workflows/nightly");
    let sched = schedule(&app, "nightly").await;
    assert_eq!(sched["paused"], true, "{sched}");
    assert!(sched["next_tick"].is_null(), "{sched}");
    let html = page_of("/workflows/nightly").await;
    assert!(html.contains(r#"data-paused="true""#), "{html}");
    assert!(html.contains(r#"class="paused-state status status-waiting">paused<"#));
    assert!(
        html.contains(r#"action="/workflows/nightly/resume""#),
        "{html}"
    );
    assert!(html.contains(r#"class="resume""#) && !html.contains(r#"class="pause""#));
    assert!(row(&html, 0).contains(r#"<td class="next-tick">–</td>"#));

    // Resume: active again, with a next tick.
    let at = post_form(&app, &cookie, "/workflows/nightly/resume", &csrf_of(&html)).await;
    assert_eq!(at, "/workflows/nightly");
    let sched = schedule(&app, "nightly").await;
    assert_eq!(sched["paused"], false, "{sched}");
    assert!(sched["next_tick"].is_string(), "{sched}");
    let html = page_of("/workflows/nightly").await;
    assert!(html.contains(r#"class="paused-state status status-succeeded">active<"#));
    assert!(html.contains(r#"class="pause""#), "{html}");

    // No triggers: said so, and no button. An unknown workflow is a 404.
    let html = page_of("/workflows/plain").await;
    assert!(html.contains(r#"id="no-triggers""#), "{html}");
    assert!(!html.contains("/workflows/plain/pause"), "{html}");
    let r = send(
        &app,
        "POST",
        "/workflows/nowhere/pause",
        Some(Body::from(format!("csrf={}", csrf_of(&html)))),
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", body(&r));
}
