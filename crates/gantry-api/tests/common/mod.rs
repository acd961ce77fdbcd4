//! Shared helpers of the API tests: an app on the test's own Postgres
//! database and Redis prefix, and one-shot requests returning parsed JSON.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use gantry_api::{app, ApiConfig, AppState};
use gantry_engine::Engine;
use gantry_queue::Queue;
use gantry_store::Store;
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

pub fn redis_url() -> String {
    std::env::var("GANTRY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// State on the test's database and a fresh Redis key prefix. Panics (the
/// test fails) when Redis is unreachable.
pub async fn state(pool: PgPool) -> AppState {
    let prefix = format!("gantry-api-test:{}:", uuid::Uuid::new_v4());
    let queue = Queue::connect(&redis_url(), &prefix)
        .await
        .expect("redis must be running for these tests");
    AppState::new(
        Engine::new(Store::from_pool(pool), queue),
        ApiConfig::default(),
    )
}

pub async fn test_app(pool: PgPool) -> Router {
    app(state(pool).await)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

/// Send one request. A `/v1` body is sent as `application/json` unless
/// `headers` name a Content-Type (the API refuses others with 415).
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Body>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if body.is_some() && !typed && uri.starts_with("/v1") {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.unwrap_or_else(Body::empty)).unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), app.clone().oneshot(req))
        .await
        .expect("request timed out")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        json,
    }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    send(app, "GET", uri, None, &[]).await
}

pub async fn post(app: &Router, uri: &str, body: &Value) -> Reply {
    send(app, "POST", uri, Some(Body::from(body.to_string())), &[]).await
}

pub async fn post_raw(app: &Router, uri: &str, body: &str) -> Reply {
    send(app, "POST", uri, Some(Body::from(body.to_owned())), &[]).await
}

/// Assert the SPEC error shape and code; return `error.details`.
pub fn expect_error(r: &Reply, status: u16, code: &str) -> Vec<Value> {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.json);
    let err = &r.json["error"];
    assert_eq!(err["code"], code, "body: {}", r.json);
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.json
    );
    err["details"]
        .as_array()
        .expect("details is a list")
        .clone()
}

/// `(field, code)` of every detail.
pub fn problems(details: &[Value]) -> Vec<(String, String)> {
    details
        .iter()
        .map(|d| {
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
            (
                d["field"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn builtin_agent(name: &str) -> Value {
    json!({"name": name, "runtime": "builtin", "builtin": "noop"})
}

/// Register builtin agents; panics unless each returns 201.
pub async fn register_agents(app: &Router, names: &[&str]) {
    for name in names {
        let r = post(app, "/v1/agents", &builtin_agent(name)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    }
}

/// POST without a body.
pub async fn post_empty(app: &Router, uri: &str) -> Reply {
    send(app, "POST", uri, None, &[]).await
}
