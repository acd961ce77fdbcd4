//! Load shedding: with `max_in_flight` requests already being handled, the
//! next `/v1` request gets 503 `overloaded` with `Retry-After` at once
//! instead of waiting for the database, and health checks still answer.
//! A real Postgres lock holds the first request in flight.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn past_max_in_flight_requests_are_shed_with_503(pool: PgPool) {
    let mut s = state(pool.clone()).await;
    s.config.max_in_flight = 1;
    let app = gantry_api::app(s);
    register_agents(&app, &["noop"]).await;
    let def = json!({"name": "held", "nodes": [{"id": "a", "agent": "noop"}]});
    assert_eq!(
        post(&app, "/v1/workflows", &def).await.status,
        StatusCode::CREATED
    );

    // Hold the runs table: a run start blocks inside its insert.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let held = {
        let app = app.clone();
        tokio::spawn(
            async move { post(&app, "/v1/workflows/held/runs", &json!({"input": {}})).await },
        )
    };
    // Bounded wait until the start is in flight: waiting for the lock.
    let mut waiting = 0i64;
    for _ in 0..200 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'runs'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 || held.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting > 0, "the start never waited for the lock");
    let started = Instant::now();
    let r = get(&app, "/v1/agents").await;
    let took = started.elapsed();
    let details = expect_error(&r, 503, "overloaded");
    assert!(details.is_empty());
    assert_eq!(r.headers["retry-after"], "1");
    assert!(took < Duration::from_secs(1), "shed at once, took {took:?}");
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
    assert!(!held.is_finished(), "the held start is still waiting");

    lock.commit().await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the held start finishes once the lock is gone")
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(get(&app, "/v1/agents").await.status, StatusCode::OK);
}
