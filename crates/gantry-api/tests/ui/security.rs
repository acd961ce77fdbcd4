//! Ways in and out of the dashboard: no page without the session cookie
//! from /login (not even with the API's bearer token), the cookie's flags,
//! CSRF and cross-site refusals (and that nothing changed), open mode and
//! the login rate limit.

use super::common::{send, state};
use super::helpers::*;
use axum::body::Body;
use axum::http::StatusCode;
use gantry_api::{app, token_hash, Access};
use sqlx::PgPool;

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
    st.engine.bury_jobs(&[(junk, 1)], "boom").await.unwrap();
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
    assert_eq!(st.engine.queue_stats("default").await.unwrap().dead, 1);
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
    assert_eq!(st.engine.queue_stats("default").await.unwrap().dead, 0);
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

/// API replicas given the same `GANTRY_SESSION_SECRET` accept each other's
/// sessions; without it each process signs with its own random key.
#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn replicas_sharing_a_session_secret_accept_each_others_sessions(pool: PgPool) {
    let s = state(pool).await;
    let shared = Access::new([token_hash(TOKEN)], 0).with_session_secret("s3cret");
    let replica = |access: Access| {
        let mut s = s.clone();
        s.access = access;
        app(s)
    };
    let (one, two) = (replica(shared.clone()), replica(shared));
    let cookie = session(&one).await;
    let r = page(&two, &cookie, "/runs").await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));

    let other = replica(Access::new([token_hash(TOKEN)], 0).with_session_secret("other"));
    let r = page(&other, &cookie, "/runs").await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "another secret, another key"
    );
    let (three, four) = (
        replica(Access::new([token_hash(TOKEN)], 0)),
        replica(Access::new([token_hash(TOKEN)], 0)),
    );
    let cookie = session(&three).await;
    assert_eq!(page(&three, &cookie, "/runs").await.status, StatusCode::OK);
    assert_eq!(
        page(&four, &cookie, "/runs").await.status,
        StatusCode::SEE_OTHER,
        "no secret: a key per process"
    );
}
