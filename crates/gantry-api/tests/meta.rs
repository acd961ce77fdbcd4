//! OpenAPI, health, readiness, queues, and the error shape of unknown routes
//! and wrong methods.

mod common;

use axum::http::StatusCode;
use common::*;
use gantry_api::{app, AppState};
use gantry_store::Store;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn openapi_lists_every_v1_path(pool: PgPool) {
    let app = test_app(pool).await;
    let r = get(&app, "/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.json["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/agents", &["get", "post"][..]),
        ("/v1/agents/{name}", &["get"]),
        ("/v1/workflows", &["get", "post"]),
        ("/v1/workflows/{name}", &["get"]),
        ("/v1/workflows/{name}/runs", &["post"]),
        ("/v1/runs", &["get"]),
        ("/v1/runs/{id}", &["get"]),
        ("/v1/runs/{id}/nodes/{node}", &["get"]),
        ("/v1/runs/{id}/events", &["get"]),
        ("/v1/runs/{id}/cancel", &["post"]),
        ("/v1/runs/{id}/retry", &["post"]),
        ("/v1/runs/{id}/nodes/{node}/approve", &["post"]),
        ("/v1/runs/{id}/nodes/{node}/reject", &["post"]),
        ("/v1/queues", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path].get(*m).is_some(), "{m} {path} missing");
        }
    }
    // Every documented /v1 path answers something other than "no such route".
    for path in paths.keys().filter(|p| p.starts_with("/v1/")) {
        let concrete = path
            .replace("{name}", "x")
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{node}", "x");
        for (method, _) in paths[path].as_object().unwrap() {
            let r = send(&app, &method.to_uppercase(), &concrete, None, &[]).await;
            assert!(
                r.json["error"]["message"] != "no such route" && r.status != 405,
                "{method} {concrete} is documented but not routed: {}",
                r.json
            );
        }
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn unknown_route_and_wrong_method_use_the_error_shape(pool: PgPool) {
    let app = test_app(pool).await;
    expect_error(&get(&app, "/v1/nothing").await, 404, "not_found");
    // `/` is the dashboard now; an unknown page outside /v1 is still a 404.
    expect_error(&get(&app, "/no/such/page").await, 404, "not_found");
    let r = send(&app, "DELETE", "/v1/agents", None, &[]).await;
    expect_error(&r, 405, "method_not_allowed");
    let r = send(&app, "PUT", "/v1/runs/x/cancel", None, &[]).await;
    expect_error(&r, 405, "method_not_allowed");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn health_readiness_and_queues(pool: PgPool) {
    let state = state(pool).await;
    let app = app(state.clone());
    let r = get(&app, "/healthz").await;
    assert_eq!(
        (r.status, r.json),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let r = get(&app, "/readyz").await;
    assert_eq!(
        (r.status, r.json),
        (StatusCode::OK, json!({"status": "ok"}))
    );

    // A fresh prefix has no queues; starting a run creates "default".
    let r = get(&app, "/v1/queues").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"queues": []}))
    );
    register_agents(&app, &["worker"]).await;
    let def = json!({"name": "one", "nodes": [{"id": "a", "agent": "worker"}]});
    assert_eq!(
        post(&app, "/v1/workflows", &def).await.status,
        StatusCode::CREATED
    );
    let r = post(&app, "/v1/workflows/one/runs", &json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = get(&app, "/v1/queues").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let q = &r.json["queues"][0];
    assert_eq!(q["name"], "default", "{}", r.json);
    assert_eq!(q["ready"], 1, "{}", r.json);
    for k in ["delayed", "in_flight", "dead"] {
        assert_eq!(q[k], 0, "{}", r.json);
    }

    // Postgres unreachable: 503 naming it, and no internal text.
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres:postgres@127.0.0.1:1/postgres")
        .unwrap();
    let mut down = state.clone();
    let queue = gantry_queue::Queue::connect(
        &redis_url(),
        &format!("meta-down:{}:", uuid::Uuid::new_v4()),
    )
    .await
    .expect("redis must be running for these tests");
    down.engine = gantry_engine::Engine::new(Store::from_pool(dead), queue);
    let app = app_of(down);
    let r = get(&app, "/readyz").await;
    let details = expect_error(&r, 503, "unavailable");
    assert_eq!(
        problems(&details),
        [("postgres".to_owned(), "unreachable".to_owned())]
    );
    assert!(!r.json.to_string().contains("127.0.0.1"), "{}", r.json);
    let r = get(&app, "/v1/agents").await;
    expect_error(&r, 503, "unavailable");
    assert!(!r.json.to_string().contains("127.0.0.1"), "{}", r.json);
}

fn app_of(state: AppState) -> axum::Router {
    app(state)
}
