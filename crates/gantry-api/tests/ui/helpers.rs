//! Helpers of the dashboard tests: an app accepting one token, logging in,
//! reading pages and their CSRF token, and a seeded workflow with a run.

use super::common::{send, state, Reply};
use axum::body::Body;
use axum::http::StatusCode;
use axum::Router;
use gantry_api::{app, token_hash, Access, AppState};
use serde_json::json;
use sqlx::PgPool;

pub(crate) const TOKEN: &str = "ui-test-token";
pub(crate) const BEARER: (&str, &str) = ("authorization", "Bearer ui-test-token");

pub(crate) async fn ui_app(pool: PgPool) -> (Router, AppState) {
    let mut s = state(pool).await;
    s.access = Access::new([token_hash(TOKEN)], 0);
    (app(s.clone()), s)
}

pub(crate) fn body(r: &Reply) -> String {
    match &r.json {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub(crate) async fn login(app: &Router, token: &str, next: &str) -> Reply {
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
pub(crate) async fn session(app: &Router) -> String {
    let r = login(app, TOKEN, "%2F").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
    let set = header(&r, "set-cookie");
    set.split(';').next().unwrap().to_owned()
}

pub(crate) async fn page(app: &Router, cookie: &str, uri: &str) -> Reply {
    send(app, "GET", uri, None, &[("cookie", cookie)]).await
}

/// The CSRF token of the forms on a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// `POST` `body` to API `path` with the token; asserts 201 and returns
/// the answer's JSON.
pub(crate) async fn create(
    app: &Router,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let body = body.map(|b| Body::from(b.to_string()));
    let r = send(app, "POST", path, body, &[BEARER]).await;
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.json);
    r.json
}

/// Agent `worker` (with `approval`), workflow `flow` (a then b), one run.
pub(crate) async fn seed(app: &Router, approval: &str) -> String {
    let agent =
        json!({"name": "worker", "runtime": "builtin", "builtin": "noop", "approval": approval});
    create(app, "/v1/agents", Some(agent)).await;
    let def = json!({"name": "flow", "nodes": [
        {"id": "a", "agent": "worker"}, {"id": "b", "agent": "worker", "depends_on": ["a"]}
    ]});
    create(app, "/v1/workflows", Some(def)).await;
    let run = create(app, "/v1/workflows/flow/runs", None).await;
    run["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn run_status(app: &Router, id: &str) -> String {
    let r = send(app, "GET", &format!("/v1/runs/{id}"), None, &[BEARER]).await;
    r.json["status"].as_str().unwrap().to_owned()
}
