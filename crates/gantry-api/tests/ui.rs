//! The dashboard against real Postgres and Redis: no way in without the
//! session cookie from /login, the cookie's flags, CSRF and cross-site
//! refusals (and that nothing changes), every page answering 200, bad
//! input answering 400/404 pages, and the buttons acting through the engine.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use common::{send, state, Reply};
use gantry_api::{app, token_hash, Access, AppState};
use serde_json::json;
use sqlx::PgPool;
use tower::ServiceExt;

const TOKEN: &str = "ui-test-token";
const BEARER: (&str, &str) = ("authorization", "Bearer ui-test-token");

async fn ui_app(pool: PgPool) -> (Router, AppState) {
    let mut s = state(pool).await;
    s.access = Access::new([token_hash(TOKEN)], 0);
    (app(s.clone()), s)
}

fn body(r: &Reply) -> String {
    match &r.json {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn login(app: &Router, token: &str, next: &str) -> Reply {
    let form = format!("token={token}&next={next}");
    send(
        app,
        "POST",
        "/login",
        Some(Body::from(form)),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await
}

/// Log in; returns the `Cookie` header value.
async fn session(app: &Router) -> String {
    let r = login(app, TOKEN, "%2F").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    let set = header(&r, "set-cookie");
    set.split(';').next().unwrap().to_owned()
}

async fn page(app: &Router, cookie: &str, uri: &str) -> Reply {
    send(app, "GET", uri, None, &[("cookie", cookie)]).await
}

/// The CSRF token of the forms on a page.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// Agent `worker` (with `approval`), workflow `flow` (a then b), one run.
async fn seed(app: &Router, approval: &str) -> String {
    let agent =
        json!({"name": "worker", "runtime": "builtin", "builtin": "noop", "approval": approval});
    let r = send(
        app,
        "POST",
        "/v1/agents",
        Some(Body::from(agent.to_string())),
        &[BEARER],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let def = json!({"name": "flow", "nodes": [
        {"id": "a", "agent": "worker"}, {"id": "b", "agent": "worker", "depends_on": ["a"]}
    ]});
    let r = send(
        app,
        "POST",
        "/v1/workflows",
        Some(Body::from(def.to_string())),
        &[BEARER],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = send(app, "POST", "/v1/workflows/flow/runs", None, &[BEARER]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn run_status(app: &Router, id: &str) -> String {
    let r = send(app, "GET", &format!("/v1/runs/{id}"), None, &[BEARER]).await;
    r.json["status"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn without_a_session_every_page_redirects_to_login(pool: PgPool) {
    let (app, _) = ui_app(pool).await;
    for (uri, next) in [
        ("/", "%2F"),
        ("/runs?status=failed", "%2Fruns%3Fstatus%3Dfailed"),
        ("/queues", "%2Fqueues"),
        ("/workers", "%2Fworkers"),
        (
            "/runs/00000000-0000-0000-0000-000000000000/events",
            "%2Fruns%2F00000000-0000-0000-0000-000000000000%2Fevents",
        ),
    ] {
        let r = send(&app, "GET", uri, None, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(
            header(&r, "location"),
            format!("/login?next={next}"),
            "{uri}"
        );
        // The API's bearer token is not a way into the dashboard.
        let r = send(&app, "GET", uri, None, &[BEARER]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri} with a bearer token");
        // Nor is a forged or tampered cookie.
        for cookie in [
            "gantry_session=1.open.00",
            "gantry_session=9999999999.0123456789abcdef.deadbeef",
        ] {
            let r = send(&app, "GET", uri, None, &[("cookie", cookie)]).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri} with {cookie}");
        }
    }
    let r = send(&app, "GET", "/login", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = body(&r);
    assert!(
        html.contains(r#"id="token" name="token" type="password""#),
        "{html}"
    );
    assert!(html.contains(r#"id="login-submit""#));
    let r = send(&app, "GET", "/ui/app.js", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("text/javascript"));
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn login_checks_the_token_and_sets_a_strict_cookie(pool: PgPool) {
    let (app, _) = ui_app(pool).await;
    for bad in ["wrong", "", "ui-test-token-and-more"] {
        let r = login(&app, bad, "%2F").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "token {bad:?}");
        assert!(body(&r).contains(r#"id="login-error""#));
        assert!(header(&r, "set-cookie").is_empty());
    }
    let r = login(&app, TOKEN, "%2Fruns%3Fstatus%3Dfailed").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), "/runs?status=failed");
    let cookie = header(&r, "set-cookie");
    assert!(cookie.starts_with("gantry_session="), "{cookie}");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            cookie.split("; ").any(|f| f == flag),
            "{flag} missing: {cookie}"
        );
    }
    assert!(!cookie.contains(TOKEN), "the token is not in the cookie");
    // `next` never leads off the site.
    for evil in [
        "%2Fruns%3Fworkflow%3D%C3%A9",
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let r = login(&app, TOKEN, evil).await;
        assert_eq!(header(&r, "location"), "/", "next={evil}");
    }
    // A cross-site login post is refused.
    let r = send(
        &app,
        "POST",
        "/login",
        Some(Body::from(format!("token={TOKEN}"))),
        &[("origin", "https://evil.example"), ("host", "gantry.local")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(header(&r, "set-cookie").is_empty());

    let cookie = session(&app).await;
    let r = page(&app, &cookie, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &app,
        "POST",
        "/logout",
        Some(Body::from(format!("csrf={}", csrf_of(&body(&r))))),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
}

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
        .queue
        .bury_jobs(&[(junk.clone(), 3)], "boom <b>bad</b>")
        .await
        .unwrap();
    st.engine
        .queue
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
        breakers: vec![gantry_queue::BreakerInfo {
            agent: "worker".into(),
            state: "open".into(),
            failures: 0,
        }],
    };
    st.engine
        .queue
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
async fn posts_need_the_csrf_token_and_the_same_origin(pool: PgPool) {
    let (app, st) = ui_app(pool).await;
    let run = seed(&app, "required").await;
    let cookie = session(&app).await;
    let html = body(&page(&app, &cookie, &format!("/runs/{run}")).await);
    let csrf = csrf_of(&html);
    let cancel = format!("/runs/{run}/cancel");
    let form = |c: &str| Some(Body::from(format!("csrf={c}")));

    // No session: refused, not performed.
    let r = send(&app, "POST", &cancel, form(&csrf), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Bearer tokens do not work on dashboard routes.
    let r = send(&app, "POST", &cancel, form(&csrf), &[BEARER]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // No or a wrong csrf field.
    let r = send(&app, "POST", &cancel, None, &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        "POST",
        &cancel,
        form("0123456789abcdef0123456789abcdef"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The right token from another site.
    for cross in [
        vec![
            ("cookie", cookie.as_str()),
            ("host", "gantry.local"),
            ("origin", "https://evil.example"),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("host", "gantry.local"),
            ("origin", "null"),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("host", "gantry.local"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("host", "gantry.local"),
            ("sec-fetch-site", "same-site"),
        ],
    ] {
        let r = send(&app, "POST", &cancel, form(&csrf), &cross).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{cross:?}");
        let r = send(
            &app,
            "POST",
            &format!("/runs/{run}/nodes/a/approve"),
            form(&csrf),
            &cross,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{cross:?}");
    }
    assert_eq!(run_status(&app, &run).await, "running", "nothing changed");
    let r = send(&app, "GET", &format!("/v1/runs/{run}"), None, &[BEARER]).await;
    assert_eq!(
        r.json["nodes"][0]["status"], "waiting_approval",
        "nothing changed"
    );

    // Same origin with the token: approve, then cancel, each 303 back.
    let same = [
        ("cookie", cookie.as_str()),
        ("host", "gantry.local"),
        ("origin", "http://gantry.local"),
        ("sec-fetch-site", "same-origin"),
    ];
    let r = send(
        &app,
        "POST",
        &format!("/runs/{run}/nodes/a/approve"),
        form(&csrf),
        &same,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    assert_eq!(header(&r, "location"), format!("/runs/{run}"));
    let r = send(&app, "GET", &format!("/v1/runs/{run}"), None, &[BEARER]).await;
    assert_eq!(r.json["nodes"][0]["status"], "queued", "{}", r.json);
    let r = send(&app, "POST", &cancel, form(&csrf), &same).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    assert_eq!(run_status(&app, &run).await, "cancelled");
    // Cancelling again is the engine's 409, as an html page.
    let r = send(&app, "POST", &cancel, form(&csrf), &same).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(body(&r).contains(r#"id="error-message""#));

    // Replay a dead job (not a node's): it goes back on its queue.
    let junk = gantry_queue::Job {
        id: "junk-2".into(),
        queue: "default".into(),
        payload: "{}".into(),
    };
    st.engine
        .queue
        .bury_jobs(&[(junk, 1)], "boom")
        .await
        .unwrap();
    let replay = "/queues/default/dead/junk-2/replay";
    let r = send(
        &app,
        "POST",
        replay,
        form(&csrf),
        &[
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(st.engine.queue.stats("default").await.unwrap().dead, 1);
    let r = send(
        &app,
        "POST",
        replay,
        form(&csrf),
        &[("cookie", cookie.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    assert_eq!(header(&r, "location"), "/queues/default?state=dead");
    assert_eq!(st.engine.queue.stats("default").await.unwrap().dead, 0);
    let r = send(
        &app,
        "POST",
        replay,
        form(&csrf),
        &[("cookie", cookie.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn with_no_tokens_configured_any_input_logs_in(pool: PgPool) {
    let app = app(state(pool).await);
    let r = send(&app, "GET", "/", None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a session is still needed");
    let r = login(&app, "anything", "%2F").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = page(&app, &cookie, "/").await;
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
    let written = st.engine.store.seed_runs_like(template, 99).await.unwrap();
    assert_eq!(written, 99);
    let counts = st.engine.store.run_counts().await.unwrap();
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
    let a = st.engine.store.run_activity(12, 300).await.unwrap();
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
async fn login_attempts_are_rate_limited_like_the_api(pool: PgPool) {
    let mut s = state(pool).await;
    // 1 per second, bursts of 2.
    s.access = Access::new([token_hash(TOKEN)], 1);
    let app = app(s);
    for _ in 0..2 {
        let r = login(&app, "guess", "%2F").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = login(&app, TOKEN, "%2F").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right token waits"
    );
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    assert!(header(&r, "set-cookie").is_empty());
}
