//! Bearer tokens and rate limits on `/v1`, against the real router on real
//! Postgres and Redis: 401 without a valid token (only hashes configured),
//! probes and scrapes stay open, every answer has a request id, and 429
//! with `Retry-After` over the rate.

mod common;

use axum::Router;
use common::{expect_error, send, state};
use gantry_api::{app, token_hash, Access};
use sqlx::PgPool;

async fn app_with(pool: PgPool, access: Access) -> Router {
    let mut s = state(pool).await;
    s.access = access;
    app(s)
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn v1_needs_a_valid_bearer_token(pool: PgPool) {
    let app = app_with(pool, Access::new([token_hash("s3cret-token")], 0)).await;

    let r = send(&app, "GET", "/v1/workflows", None, &[]).await;
    expect_error(&r, 401, "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    for bad in [
        "Bearer wrong",
        "Bearer ",
        "Basic czNjcmV0LXRva2Vu",
        "s3cret-token",
    ] {
        let r = send(
            &app,
            "GET",
            "/v1/workflows",
            None,
            &[("authorization", bad)],
        )
        .await;
        expect_error(&r, 401, "unauthorized");
    }
    let r = send(&app, "POST", "/v1/workflows/x/runs", None, &[]).await;
    expect_error(&r, 401, "unauthorized");
    let r = send(&app, "GET", "/v1/runs/x/events", None, &[]).await;
    expect_error(&r, 401, "unauthorized");

    let ok = [("authorization", "Bearer s3cret-token")];
    let r = send(&app, "GET", "/v1/workflows", None, &ok).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json);
    // The token never appears in what the API says.
    assert!(!r.json.to_string().contains("s3cret-token"));

    // Every answer carries a request id: the caller's, or a fresh one.
    let r = send(
        &app,
        "GET",
        "/v1/workflows",
        None,
        &[ok[0], ("x-request-id", "req-42")],
    )
    .await;
    assert_eq!(r.headers["x-request-id"], "req-42");
    let r = send(&app, "GET", "/v1/workflows", None, &[]).await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).map(|_| ()), Ok(()), "{id}");

    for open in ["/healthz", "/readyz", "/openapi.json", "/metrics"] {
        let r = send(&app, "GET", open, None, &[]).await;
        assert_eq!(r.status.as_u16(), 200, "{open} stays open: {}", r.json);
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn a_client_over_its_rate_gets_429_with_retry_after(pool: PgPool) {
    // 2 per second, bursts of 4.
    let app = app_with(pool, Access::new([token_hash("t1"), token_hash("t2")], 2)).await;
    let t1 = [("authorization", "Bearer t1")];
    let t2 = [("authorization", "Bearer t2")];
    for _ in 0..4 {
        let r = send(&app, "GET", "/v1/agents", None, &t1).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.json);
    }
    let r = send(&app, "GET", "/v1/agents", None, &t1).await;
    expect_error(&r, 429, "too_many_requests");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "retry after {wait} s");
    // Limits are per token: another client is not held back.
    let r = send(&app, "GET", "/v1/agents", None, &t2).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.json);
}
