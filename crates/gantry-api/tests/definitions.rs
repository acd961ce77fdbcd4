//! Registering agents and workflows: stored records, and every kind of bad
//! definition or body answered with the right status and every problem.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};
use sqlx::PgPool;

fn has(problems: &[(String, String)], field: &str, code: &str) -> bool {
    problems.iter().any(|(f, c)| f == field && c == code)
}

async fn workflow_problems(app: &axum::Router, def: Value) -> Vec<(String, String)> {
    let r = post(app, "/v1/workflows", &def).await;
    problems(&expect_error(&r, 422, "validation_failed"))
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn agents_register_upsert_and_read(pool: PgPool) {
    let app = test_app(pool).await;
    let r = post(&app, "/v1/agents", &builtin_agent("echoer")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["name"], "echoer");
    assert_eq!(r.json["queue"], "default");

    let mut changed = builtin_agent("echoer");
    changed["queue"] = json!("slow");
    let r = post(&app, "/v1/agents", &changed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);

    let r = get(&app, "/v1/agents/echoer").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["queue"], "slow",
        "the second registration replaced the first"
    );

    register_agents(&app, &["another"]).await;
    let r = get(&app, "/v1/agents").await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.json["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["another", "echoer"]);

    expect_error(&get(&app, "/v1/agents/missing").await, 404, "not_found");
    expect_error(
        &get(&app, "/v1/agents/Not%20A%20Name").await,
        404,
        "not_found",
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bad_agents_list_every_problem(pool: PgPool) {
    let app = test_app(pool).await;
    let r = post(
        &app,
        "/v1/agents",
        &json!({"name": "Bad Name", "runtime": "docker", "timeout_s": 0, "network": "host"}),
    )
    .await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    for (field, code) in [
        ("name", "bad_name"),
        ("image", "missing_field"),
        ("timeout_s", "bad_value"),
        ("network", "bad_value"),
    ] {
        assert!(has(&p, field, code), "{field}/{code} missing from {p:?}");
    }

    // Unknown fields are named, not just refused.
    let mut a = builtin_agent("a");
    a["imagee"] = json!("typo");
    let r = post(&app, "/v1/agents", &a).await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    assert_eq!(p, [("imagee".to_owned(), "unknown_field".to_owned())]);

    // Wrong type: the field is named.
    let mut a = builtin_agent("a");
    a["timeout_s"] = json!("soon");
    let r = post(&app, "/v1/agents", &a).await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    assert_eq!(p, [("timeout_s".to_owned(), "bad_value".to_owned())]);

    // Nothing was stored.
    let r = get(&app, "/v1/agents").await;
    assert_eq!(r.json["agents"], json!([]));
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn workflow_registration_stores_versions(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["scanner", "reviewer"]).await;
    let def = json!({"name": "review", "nodes": [
        {"id": "scan", "agent": "scanner", "input": {"repo": "{{run.input.repo}}"}},
        {"id": "review", "agent": "reviewer", "depends_on": ["scan"],
         "input": {"findings": "{{scan.output.findings}}"}}
    ]});
    let r = post(&app, "/v1/workflows", &def).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["name"], "review");
    assert_eq!(r.json["version"], 1);
    assert!(r.json["id"].is_i64());
    assert_eq!(
        r.json["definition"]["nodes"][1]["depends_on"],
        json!(["scan"])
    );

    let r = post(&app, "/v1/workflows", &def).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["version"], 2);

    let r = get(&app, "/v1/workflows/review").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["versions"], json!([1, 2]));
    let r = get(&app, "/v1/workflows/review?version=1").await;
    assert_eq!(r.json["version"], 1, "{}", r.json);
    expect_error(
        &get(&app, "/v1/workflows/review?version=9").await,
        404,
        "not_found",
    );
    expect_error(
        &get(&app, "/v1/workflows/review?version=x").await,
        422,
        "validation_failed",
    );
    expect_error(&get(&app, "/v1/workflows/nope").await, 404, "not_found");
    expect_error(&get(&app, "/v1/workflows/NOPE!").await, 404, "not_found");

    let r = get(&app, "/v1/workflows").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json["workflows"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.json);
    assert_eq!(list[0]["name"], "review");
    assert_eq!(list[0]["latest_version"], 2);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn each_bad_workflow_kind_is_422(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["worker"]).await;
    let n = |id: &str, deps: &[&str]| json!({"id": id, "agent": "worker", "depends_on": deps});

    let p = workflow_problems(
        &app,
        json!({"name": "w", "nodes": [
        n("a", &["c"]), n("b", &["a"]), n("c", &["b"])]}),
    )
    .await;
    assert_eq!(p.iter().filter(|(_, c)| c == "cycle").count(), 1, "{p:?}");

    let p = workflow_problems(&app, json!({"name": "w", "nodes": [n("a", &["a"])]})).await;
    assert!(has(&p, "nodes[0].depends_on[0]", "self_loop"), "{p:?}");

    let p = workflow_problems(
        &app,
        json!({"name": "w", "nodes": [n("a", &[]), n("a", &[])]}),
    )
    .await;
    assert!(has(&p, "nodes[1].id", "duplicate_id"), "{p:?}");

    let p = workflow_problems(&app, json!({"name": "w", "nodes": [n("a", &["ghost"])]})).await;
    assert!(
        has(&p, "nodes[0].depends_on[0]", "unknown_dependency"),
        "{p:?}"
    );

    let p = workflow_problems(
        &app,
        json!({"name": "w", "nodes": [{"id": "a", "agent": "nobody"}]}),
    )
    .await;
    assert!(has(&p, "nodes[0].agent", "unknown_agent"), "{p:?}");

    let p = workflow_problems(
        &app,
        json!({"name": "w", "nodes": [
        n("a", &[]),
        {"id": "b", "agent": "worker", "input": {"x": "{{a.output.x}}"}}]}),
    )
    .await;
    assert!(
        p.iter()
            .any(|(f, c)| c == "template_not_ancestor" && f.starts_with("nodes[1].input")),
        "{p:?}"
    );

    let p = workflow_problems(&app, json!({"name": "Bad Name", "nodes": [n("a", &[])]})).await;
    assert!(has(&p, "name", "bad_name"), "{p:?}");

    // The default limit is 5,000 nodes.
    let nodes: Vec<Value> = (0..5001).map(|i| n(&format!("n{i}"), &[])).collect();
    let p = workflow_problems(&app, json!({"name": "big", "nodes": nodes})).await;
    assert!(has(&p, "nodes", "too_many_nodes"), "{p:?}");
    let nodes: Vec<Value> = (0..5000).map(|i| n(&format!("n{i}"), &[])).collect();
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "big", "nodes": nodes}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "5,000 nodes is within the limit"
    );

    // Nothing invalid was stored.
    let r = get(&app, "/v1/workflows").await;
    assert_eq!(
        r.json["workflows"].as_array().unwrap().len(),
        1,
        "{}",
        r.json
    );
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn one_workflow_lists_all_its_problems(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["worker"]).await;
    let def = json!({"name": "-bad", "nodes": [
        {"id": "a", "agent": "worker", "depends_on": ["a"]},
        {"id": "b", "agent": "worker", "depends_on": ["c"]},
        {"id": "c", "agent": "worker", "depends_on": ["b"]},
        {"id": "d", "agent": "ghost", "depends_on": ["missing"]},
        {"id": "d", "agent": "worker"},
        {"id": "e", "agent": "worker", "input": {"v": "{{a.output.v}}"}},
        {"id": "Bad", "agent": "worker"}
    ]});
    let p = workflow_problems(&app, def).await;
    for (field, code) in [
        ("name", "bad_name"),
        ("nodes[0].depends_on[0]", "self_loop"),
        ("nodes[3].agent", "unknown_agent"),
        ("nodes[3].depends_on[0]", "unknown_dependency"),
        ("nodes[4].id", "duplicate_id"),
        ("nodes[6].id", "bad_name"),
    ] {
        assert!(has(&p, field, code), "{field}/{code} missing from {p:?}");
    }
    assert!(p.iter().any(|(_, c)| c == "cycle"), "{p:?}");
    assert!(p.iter().any(|(_, c)| c == "template_not_ancestor"), "{p:?}");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn bad_bodies(pool: PgPool) {
    let app = test_app(pool).await;

    // Malformed and truncated JSON: 400 with the position.
    for body in [
        "{\"name\": \"w\",\n \"nodes\": [",
        "{name: w}",
        "",
        "{} trailing",
    ] {
        let r = post_raw(&app, "/v1/workflows", body).await;
        expect_error(&r, 400, "bad_json");
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains("line") && msg.contains("column"), "{msg}");
    }

    // Unknown field deep inside a workflow is named with its path.
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "w", "nodes": [{"id": "a", "agent": "x", "dependson": []}]}),
    )
    .await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    assert_eq!(
        p,
        [("nodes[0].dependson".to_owned(), "unknown_field".to_owned())]
    );

    // Over 1 MiB: 413, whether or not Content-Length announces it.
    let big = format!(
        "{{\"name\": \"w\", \"pad\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let r = post_raw(&app, "/v1/workflows", &big).await;
    expect_error(&r, 413, "payload_too_large");
    let len = big.len().to_string();
    let r = send(
        &app,
        "POST",
        "/v1/agents",
        Some(Body::from(big.clone())),
        &[("content-length", len.as_str())],
    )
    .await;
    expect_error(&r, 413, "payload_too_large");
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let r = send(&app, "POST", "/v1/agents", Some(streamed), &[]).await;
    expect_error(&r, 413, "payload_too_large");

    // Just under the limit is parsed (and then judged on its content).
    let pad = 1024 * 1024 - 200;
    let ok = format!(
        "{{\"name\": \"w\", \"nodes\": [], \"description\": \"{}\"}}",
        "x".repeat(pad)
    );
    let r = post_raw(&app, "/v1/workflows", &ok).await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    assert!(has(&p, "nodes", "empty_workflow"), "{p:?}");
}
