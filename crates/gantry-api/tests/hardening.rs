//! Issue 10 in-process: process agents off by default, drive-by refusals
//! (Content-Type, Origin, Sec-Fetch-Site, Host), strict JSON (NUL,
//! duplicate keys), cursors and limits that are 422s instead of 500s or
//! empty pages, the bearer scheme, and failed-login counting.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use gantry_api::{app, token_hash, Access, ApiConfig};
use serde_json::json;
use sqlx::PgPool;

/// Request headers, then the status, code and field of the refusal.
type Refusal = (
    Vec<(&'static str, &'static str)>,
    u16,
    &'static str,
    &'static str,
);

/// `(field, code)` of the first detail.
fn first(details: &[serde_json::Value]) -> (String, String) {
    problems(details).remove(0)
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn process_agents_are_refused_unless_allowed(pool: PgPool) {
    let mut s = state(pool).await;
    let def = json!({"name": "p", "runtime": "process", "command": ["/bin/true"]});
    let open = app(s.clone());
    let r = post(&open, "/v1/agents", &def).await;
    let details = expect_error(&r, 403, "process_agents_disabled");
    assert_eq!(
        first(&details),
        ("runtime".into(), "process_agents_disabled".into())
    );
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("GANTRY_ALLOW_PROCESS_AGENTS"), "{msg}");
    assert_eq!(
        get(&open, "/v1/agents/p").await.status,
        StatusCode::NOT_FOUND
    );

    s.config = ApiConfig {
        allow_process_agents: true,
        ..ApiConfig::default()
    };
    let allowed = app(s);
    let r = post(&allowed, "/v1/agents", &def).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bodies_must_be_declared_json(pool: PgPool) {
    let app = test_app(pool).await;
    let agent = builtin_agent("a").to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = send(
            &app,
            "POST",
            "/v1/agents",
            Some(Body::from(agent.clone())),
            &[("content-type", ct)],
        )
        .await;
        let details = expect_error(&r, 415, "unsupported_media_type");
        assert_eq!(first(&details).0, "content-type", "{ct}");
    }
    // No Content-Type at all, with a declared length.
    let req = axum::http::Request::post("/v1/agents")
        .header("content-length", agent.len())
        .body(Body::from(agent.clone()))
        .unwrap();
    let res = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        get(&app, "/v1/agents/a").await.status,
        StatusCode::NOT_FOUND,
        "nothing registered"
    );

    let r = send(
        &app,
        "POST",
        "/v1/agents",
        Some(Body::from(agent)),
        &[("content-type", "Application/JSON; charset=utf-8")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    // Bodyless POSTs need no Content-Type.
    let r = send(&app, "POST", "/v1/workflows", None, &[]).await;
    assert_ne!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn cross_site_requests_and_foreign_hosts_are_refused(pool: PgPool) {
    let s = state(pool).await;
    let open = app(s.clone());
    let agent = builtin_agent("x");
    let post_with = |headers: Vec<(&'static str, &'static str)>| {
        let open = open.clone();
        let agent = agent.to_string();
        async move {
            send(
                &open,
                "POST",
                "/v1/agents",
                Some(Body::from(agent)),
                &headers,
            )
            .await
        }
    };
    let cases: [Refusal; 6] = [
        (
            vec![
                ("host", "localhost:8080"),
                ("origin", "http://evil.example"),
            ],
            403,
            "cross_site",
            "origin",
        ),
        (
            vec![
                ("host", "localhost:8080"),
                ("origin", "http://localhost:3000"),
            ],
            403,
            "cross_site",
            "origin",
        ),
        (
            vec![("host", "localhost:8080"), ("origin", "null")],
            403,
            "cross_site",
            "origin",
        ),
        (
            vec![("sec-fetch-site", "cross-site")],
            403,
            "cross_site",
            "sec-fetch-site",
        ),
        (
            vec![("sec-fetch-site", "same-site")],
            403,
            "cross_site",
            "sec-fetch-site",
        ),
        (vec![("host", "evil.example:8080")], 403, "bad_host", "host"),
    ];
    for (headers, status, code, field) in cases {
        let r = post_with(headers.clone()).await;
        let details = expect_error(&r, status, code);
        assert_eq!(first(&details).0, field, "{headers:?}");
    }
    let r = send(
        &open,
        "GET",
        "/v1/agents",
        None,
        &[("host", "rebound.example")],
    )
    .await;
    expect_error(&r, 403, "bad_host");
    let r = send(&open, "GET", "/login", None, &[("host", "rebound.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the dashboard too");
    let r = get(&open, "/v1/agents").await;
    assert_eq!(r.json["agents"], json!([]), "nothing was registered");

    for ok in [
        vec![
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ],
        vec![
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![("host", "[::1]:8080"), ("sec-fetch-site", "none")],
        vec![("host", "app.localhost")],
    ] {
        let r = post_with(ok.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ok:?}: {}", r.json);
    }
    // With a token, any Host is fine (a rebinding page has no token).
    let mut s = s;
    s.access = Access::new([token_hash("t")], 0);
    let closed = app(s);
    let r = send(
        &closed,
        "GET",
        "/v1/agents",
        None,
        &[
            ("host", "gantry.prod.example"),
            ("authorization", "Bearer t"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn nul_characters_are_422_with_their_path(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["a"]).await;
    let cases = [
        (
            "/v1/agents",
            r#"{"name":"b","runtime":"builtin","builtin":"noop","queue":"q\u0000"}"#,
            "queue",
        ),
        (
            "/v1/workflows",
            r#"{"name":"w","nodes":[{"id":"n","agent":"a","input":{"x\u0000":1}}]}"#,
            "nodes[0].input.x\\u0000",
        ),
        (
            "/v1/workflows",
            r#"{"name":"w","nodes":[{"id":"n","agent":"a","input":{"x":["\u0000"]}}]}"#,
            "nodes[0].input.x[0]",
        ),
    ];
    for (uri, body, field) in cases {
        let r = post_raw(&app, uri, body).await;
        let details = expect_error(&r, 422, "validation_failed");
        assert_eq!(
            first(&details),
            (field.into(), "nul_character".into()),
            "{body}"
        );
    }
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "w", "nodes": [{"id": "n", "agent": "a"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = post_raw(
        &app,
        "/v1/workflows/w/runs",
        r#"{"input":{"deep":{"s":"a\u0000b"}}}"#,
    )
    .await;
    let details = expect_error(&r, 422, "validation_failed");
    assert_eq!(first(&details).0, "input.deep.s");
    let r = post_raw(
        &app,
        "/v1/workflows/w/runs",
        "{\"input\":{\"s\":\"a\x00b\"}}",
    )
    .await;
    expect_error(&r, 400, "bad_json");
    let r = get(&app, "/v1/runs").await;
    assert_eq!(r.json["runs"], json!([]), "no run was started");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn duplicate_keys_are_refused_in_every_body(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["a"]).await;
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "w", "nodes": [{"id": "n", "agent": "a"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let cases = [
        (
            "/v1/agents",
            r#"{"name":"b","runtime":"builtin","builtin":"noop","name":"c"}"#,
            "name",
        ),
        (
            "/v1/workflows",
            r#"{"name":"w","nodes":[{"id":"n","agent":"a","input":{"k":1,"k":2}}]}"#,
            "nodes[0].input.k",
        ),
        (
            "/v1/workflows/w/runs",
            r#"{"input":{"a":[{"b":1,"b":1}]}}"#,
            "input.a[0].b",
        ),
    ];
    for (uri, body, field) in cases {
        let r = post_raw(&app, uri, body).await;
        let details = expect_error(&r, 422, "duplicate_key");
        assert_eq!(
            first(&details),
            (field.into(), "duplicate_key".into()),
            "{body}"
        );
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bad_cursors_and_limits_are_422(pool: PgPool) {
    let app = test_app(pool).await;
    let far_past = hex::encode(format!("-8000000000000000000:{}", uuid::Uuid::nil()));
    for uri in [
        "/v1/queues/default/jobs?state=dead&cursor=zzz".to_owned(),
        "/v1/queues/default/jobs?state=in_flight&cursor=zzz".to_owned(),
        "/v1/queues/default/jobs?state=ready&cursor=18446744073709551615-18446744073709551615"
            .to_owned(),
        "/v1/queues/default/jobs?state=delayed&cursor=zzz".to_owned(),
        "/v1/queues/default/jobs?state=delayed&cursor=-5".to_owned(),
        "/v1/runs?cursor=zzz".to_owned(),
        format!("/v1/runs?cursor={far_past}"),
    ] {
        let r = get(&app, &uri).await;
        let details = expect_error(&r, 422, "bad_cursor");
        assert_eq!(first(&details).0, "cursor", "{uri}");
    }
    for uri in [
        "/v1/runs?limit=0",
        "/v1/runs?limit=501",
        "/v1/queues/default/jobs?limit=0",
        "/v1/queues/default/jobs?limit=100000",
    ] {
        let r = get(&app, uri).await;
        let details = expect_error(&r, 422, "validation_failed");
        assert_eq!(first(&details).0, "limit", "{uri}");
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 500"),
            "{}",
            r.json
        );
    }
    let r = get(
        &app,
        "/v1/queues/default/jobs?state=ready&cursor=1-0&limit=500",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bearer_is_case_insensitive_and_failed_tokens_reach_429(pool: PgPool) {
    let mut s = state(pool).await;
    s.access = Access::new([token_hash("good")], 2);
    let api = app(s.clone());
    for value in ["bearer good", "BEARER    good", "Bearer good "] {
        let r = send(&api, "GET", "/v1/agents", None, &[("authorization", value)]).await;
        assert_eq!(r.status, StatusCode::OK, "{value}: {}", r.json);
    }
    let mut statuses = Vec::new();
    for i in 0..50 {
        let bad = format!("Bearer guess-{i}");
        let r = send(
            &api,
            "GET",
            "/v1/agents",
            None,
            &[("authorization", bad.as_str())],
        )
        .await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                r.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    >= 1
            );
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = send(
        &api,
        "GET",
        "/v1/agents",
        None,
        &[("authorization", "Bearer good")],
    )
    .await;
    expect_error(&r, 429, "too_many_requests");

    s.access = Access::new([token_hash("good")], 0).with_auth_failures_per_min(0);
    let uncounted = app(s);
    for _ in 0..20 {
        let r = send(
            &uncounted,
            "GET",
            "/v1/agents",
            None,
            &[("authorization", "Bearer nope")],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}
