//! Starting, reading, listing and steering runs through the API, including
//! idempotency keys and server-sent events.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::*;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;
use tower::ServiceExt;

/// Register agent `worker` and workflow `flow` (`a` then `b`).
async fn setup(app: &Router, approval: &str) {
    let mut agent = builtin_agent("worker");
    agent["approval"] = json!(approval);
    let r = post(app, "/v1/agents", &agent).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let def = json!({"name": "flow", "nodes": [
        {"id": "a", "agent": "worker", "input": {"x": "{{run.input.x}}"}},
        {"id": "b", "agent": "worker", "depends_on": ["a"]}
    ]});
    let r = post(app, "/v1/workflows", &def).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

async fn start(app: &Router, body: &str, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    send(
        app,
        "POST",
        "/v1/workflows/flow/runs",
        Some(Body::from(body.to_owned())),
        &headers,
    )
    .await
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn unknown_runs_are_404(pool: PgPool) {
    let app = test_app(pool).await;
    let id = uuid::Uuid::new_v4();
    for (method, uri) in [
        ("GET", format!("/v1/runs/{id}")),
        ("GET", "/v1/runs/not-a-uuid".to_owned()),
        ("GET", "/v1/runs/%ff%fe".to_owned()),
        ("GET", format!("/v1/runs/{id}/nodes/a")),
        ("GET", format!("/v1/runs/{id}/events")),
        ("GET", "/v1/runs/42/events".to_owned()),
        ("POST", format!("/v1/runs/{id}/cancel")),
        ("POST", format!("/v1/runs/{id}/retry")),
        ("POST", format!("/v1/runs/{id}/nodes/a/approve")),
        ("POST", "/v1/runs/nope/nodes/a/reject".to_owned()),
        ("POST", "/v1/workflows/nope/runs".to_owned()),
        ("POST", "/v1/workflows/NOT_VALID!/runs".to_owned()),
    ] {
        let r = send(&app, method, &uri, None, &[]).await;
        expect_error(&r, 404, "not_found");
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn idempotency_key_returns_the_same_run(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "auto").await;

    let first = start(&app, r#"{"input": {"x": 1, "y": [1, 2]}}"#, Some("order-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    assert_eq!(first.json["status"], "running");
    assert_eq!(first.json["workflow"], "flow");
    assert_eq!(first.json["version"], 1);
    let id = first.json["id"].as_str().unwrap().to_owned();

    // Same key, same body (other key order and spacing): the same run, 200.
    let again = start(
        &app,
        r#"{ "input": {"y": [1,2], "x": 1} }"#,
        Some("order-1"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json["id"], id.as_str());

    // Same key, another body: 409.
    let other = start(&app, r#"{"input": {"x": 2}}"#, Some("order-1")).await;
    expect_error(&other, 409, "conflict");

    // Another key or no key: new runs.
    let second = start(&app, r#"{"input": {"x": 1, "y": [1, 2]}}"#, Some("order-2")).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.json);
    assert_ne!(second.json["id"], id.as_str());
    let a = start(&app, "", None).await;
    let b = start(&app, "{}", None).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.json);
    assert_ne!(a.json["id"], b.json["id"]);

    // The stored run: its input, and roots queued.
    let r = get(&app, &format!("/v1/runs/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["input"], json!({"x": 1, "y": [1, 2]}));
    let nodes = r.json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let status_of = |n: &str| {
        nodes
            .iter()
            .find(|x| x["id"] == n)
            .map(|x| x["status"].clone())
            .unwrap()
    };
    assert_eq!(status_of("a"), "queued");
    assert_eq!(status_of("b"), "pending");
    let r = get(&app, &format!("/v1/runs/{id}/nodes/a")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["id"], "a");
    expect_error(
        &get(&app, &format!("/v1/runs/{id}/nodes/zz")).await,
        404,
        "not_found",
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bad_run_requests_are_422(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "auto").await;
    for body in [r#"{"input": [1]}"#, r#"{"input": "x"}"#, r#"{"input": 3}"#] {
        let r = start(&app, body, None).await;
        let p = problems(&expect_error(&r, 422, "validation_failed"));
        assert_eq!(p[0].0, "input", "{p:?}");
    }
    let r = start(&app, r#"{"inputs": {}}"#, None).await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    assert_eq!(p, [("inputs".to_owned(), "unknown_field".to_owned())]);
    expect_error(&start(&app, "{", None).await, 400, "bad_json");
    let long = "k".repeat(256);
    for key in ["", "has space", long.as_str()] {
        let r = start(&app, "{}", Some(key)).await;
        let p = problems(&expect_error(&r, 422, "validation_failed"));
        assert_eq!(p[0].0, "Idempotency-Key", "{p:?}");
    }
    // None of those started a run.
    let r = get(&app, "/v1/runs").await;
    assert_eq!(r.json["runs"], json!([]), "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn list_filter_and_page_runs(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "auto").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = start(&app, "{}", None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    let r = get(&app, "/v1/runs?workflow=flow&status=running").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let listed: Vec<&str> = r.json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);

    let r = get(&app, "/v1/runs?status=succeeded").await;
    assert_eq!(r.json["runs"], json!([]), "{}", r.json);
    let r = get(&app, "/v1/runs?workflow=other").await;
    assert_eq!(r.json["runs"], json!([]), "{}", r.json);

    // Paging with limit and cursor visits every run once.
    let mut seen = Vec::new();
    let mut uri = "/v1/runs?limit=2".to_owned();
    for _ in 0..5 {
        let r = get(&app, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let page = r.json["runs"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|x| x["id"].as_str().unwrap().to_owned()));
        match r.json["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/runs?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    for bad in [
        "status=done",
        "limit=abc",
        "limit=-1",
        "limit=0",
        "limit=501",
        "limit=100000",
        "workflow=Bad%20Name",
    ] {
        let r = get(&app, &format!("/v1/runs?{bad}")).await;
        expect_error(&r, 422, "validation_failed");
    }
    let r = get(&app, "/v1/runs?limit=0").await;
    let details = expect_error(&r, 422, "validation_failed");
    assert_eq!(details[0]["field"], "limit");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 500"),
        "{}",
        r.json
    );
    let r = get(&app, "/v1/runs?limit=500").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn cancel_returns_the_run_and_conflicts_after(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "auto").await;
    let r = start(&app, "{}", None).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = send(&app, "POST", &format!("/v1/runs/{id}/cancel"), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "cancelled");
    assert_eq!(r.json["id"], id.as_str());
    let r = send(&app, "POST", &format!("/v1/runs/{id}/cancel"), None, &[]).await;
    expect_error(&r, 409, "conflict");
    let r = post_empty(&app, &format!("/v1/runs/{id}/nodes/a/approve")).await;
    expect_error(&r, 409, "conflict");

    // Retry re-runs the cancelled nodes; retrying a running run conflicts.
    let r = post_empty(&app, &format!("/v1/runs/{id}/retry")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "running", "{}", r.json);
    let a = r.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "a")
        .cloned();
    assert_eq!(a.unwrap()["status"], "queued", "{}", r.json);
    let r = post_empty(&app, &format!("/v1/runs/{id}/retry")).await;
    expect_error(&r, 409, "conflict");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn approve_queues_a_waiting_node(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "required").await;
    let r = start(&app, "{}", None).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = get(&app, &format!("/v1/runs/{id}/nodes/a")).await;
    assert_eq!(r.json["status"], "waiting_approval", "{}", r.json);

    let r = post_empty(&app, &format!("/v1/runs/{id}/nodes/zz/approve")).await;
    expect_error(&r, 404, "not_found");
    let r = post_empty(&app, &format!("/v1/runs/{id}/nodes/b/approve")).await;
    expect_error(&r, 409, "conflict");
    let r = post_empty(&app, &format!("/v1/runs/{id}/nodes/a/approve")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "running");
    let r = get(&app, &format!("/v1/runs/{id}/nodes/a")).await;
    assert_eq!(r.json["status"], "queued", "{}", r.json);
    let r = post_empty(&app, &format!("/v1/runs/{id}/nodes/a/approve")).await;
    expect_error(&r, 409, "conflict");
}

/// Read SSE frames until `until` appears in the text, at most `limit`.
async fn read_until(body: &mut Body, text: &mut String, until: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while !text.contains(until) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} within {limit:?}; got {text}"));
        match frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    text.push_str(&String::from_utf8_lossy(d));
                }
            }
            Some(Err(e)) => panic!("stream failed: {e}"),
            None => panic!("stream ended before {until:?}; got {text}"),
        }
    }
}

fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn events_stream_snapshot_node_changes_and_end(pool: PgPool) {
    let app = test_app(pool).await;
    setup(&app, "required").await;
    let r = start(&app, r#"{"input": {"x": 1}}"#, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();

    let req = Request::get(format!("/v1/runs/{id}/events"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let mut text = String::new();
    read_until(
        &mut body,
        &mut text,
        "event: snapshot",
        Duration::from_secs(10),
    )
    .await;

    let r = send(
        &app,
        "POST",
        &format!("/v1/runs/{id}/nodes/a/reject"),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "failed", "{}", r.json);

    read_until(&mut body, &mut text, "event: run", Duration::from_secs(10)).await;
    let evs = events(&text);
    assert_eq!(evs[0].0, "snapshot");
    assert_eq!(evs[0].1["id"], id.as_str());
    let node_a = evs[0].1["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "a")
        .cloned();
    assert_eq!(node_a.unwrap()["status"], "waiting_approval");
    let changes: Vec<(&str, &str)> = evs
        .iter()
        .filter(|(n, _)| n == "node")
        .map(|(_, d)| (d["node"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert!(changes.contains(&("a", "failed")), "{changes:?}");
    assert!(changes.contains(&("b", "skipped")), "{changes:?}");
    let last = evs.last().unwrap();
    assert_eq!(last.0, "run");
    assert_eq!(last.1, json!({"id": id, "status": "failed"}));

    // The stream ends after the run event.
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame()).await;
    assert!(matches!(end, Ok(None)), "stream should end: {end:?}");

    // A stream opened on an ended run: snapshot, run, end.
    let req = Request::get(format!("/v1/runs/{id}/events"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
        .await
        .expect("stream of an ended run ends")
        .unwrap()
        .to_bytes();
    let evs = events(&String::from_utf8_lossy(&bytes));
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["snapshot", "run"]);
}
