//! The bad-input suite: every kind of hostile or broken request gets its
//! clear 4xx in the SPEC error shape, naming the field, and the API keeps
//! answering afterwards. Real Postgres and Redis behind the router.

mod common;

use common::{expect_error, get, post, post_raw, problems, register_agents, test_app};
use serde_json::{json, Value};
use sqlx::PgPool;

fn fields(r: &common::Reply, status: u16) -> Vec<(String, String)> {
    problems(&expect_error(r, status, "validation_failed"))
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn hostile_definitions_and_runs_get_clear_4xx(pool: PgPool) {
    let app = test_app(pool).await;
    register_agents(&app, &["noop"]).await;

    // Wrong types: each field named.
    let r = post(&app, "/v1/workflows", &json!({"name": 5, "nodes": "x"})).await;
    let p = fields(&r, 422);
    assert!(p.iter().any(|(f, _)| f == "name" || f == "nodes"), "{p:?}");
    let r = post(
        &app,
        "/v1/agents",
        &json!({"name": "a", "runtime": "builtin", "builtin": "noop", "timeout_s": "soon"}),
    )
    .await;
    let p = fields(&r, 422);
    assert!(p.iter().any(|(f, _)| f == "timeout_s"), "{p:?}");

    // Deeply nested JSON: refused as bad JSON, not a stack overflow.
    let deep = format!(
        "{{\"name\": \"w\", \"nodes\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = post_raw(&app, "/v1/workflows", &deep).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "bad_json");

    // A very long name and unicode names: the name rule, with the field.
    let long = "a".repeat(100_000);
    for name in [long.as_str(), "wörkflow", "名前", "a b", "-x", "UPPER"] {
        let r = post(
            &app,
            "/v1/workflows",
            &json!({"name": name, "nodes": [{"id": "a", "agent": "noop"}]}),
        )
        .await;
        let p = fields(&r, 422);
        assert!(p.iter().any(|(f, _)| f == "name"), "{name:.20}: {p:?}");
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() < 2_000,
            "the error does not echo a huge input back"
        );
    }
    // Unicode in values is data, and fine.
    let r = post(&app, "/v1/workflows", &json!({"name": "uni", "nodes": [{"id": "a", "agent": "noop", "input": {"greeting": "héllo 名前 🚀"}}]})).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json);

    // 10,000 nodes: over max_nodes (5,000), refused with the count.
    let nodes: Vec<Value> = (0..10_000)
        .map(|i| json!({"id": format!("n{i}"), "agent": "noop"}))
        .collect();
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "huge", "nodes": nodes}),
    )
    .await;
    let p = fields(&r, 422);
    assert!(p.iter().any(|(f, _)| f == "nodes"), "{p:?}");

    // Template injection attempts: a template naming a non-ancestor, a
    // malformed template and a shell-looking string are rejected or kept as
    // plain data; none is evaluated.
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "inj", "nodes": [
            {"id": "a", "agent": "noop", "input": {"x": "{{b.output.secret}}"}},
            {"id": "b", "agent": "noop"}
        ]}),
    )
    .await;
    let p = fields(&r, 422);
    assert!(
        p.iter().any(|(f, _)| f.starts_with("nodes[0].input")),
        "{p:?}"
    );
    let r = post(&app, "/v1/workflows", &json!({"name": "inj2", "nodes": [
        {"id": "a", "agent": "noop", "input": {"x": "{{ run.input.x }}{{", "y": "{{__proto__.constructor}}"}}
    ]})).await;
    let p = fields(&r, 422);
    assert!(
        p.iter().any(|(f, _)| f.starts_with("nodes[0].input")),
        "{p:?}"
    );
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "shell", "nodes": [
            {"id": "a", "agent": "noop", "input": {"cmd": "$(rm -rf /); `id`; {{run.input.x}}"}}
        ]}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json);

    // Unknown fields where the contract forbids them.
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "w", "nodes": [{"id": "a", "agent": "noop"}], "owner": "me"}),
    )
    .await;
    let p = fields(&r, 422);
    assert!(
        p.contains(&("owner".to_owned(), "unknown_field".to_owned())),
        "{p:?}"
    );

    // Starting runs: malformed, truncated, wrong-typed and oversized input.
    for (body, status) in [
        ("{\"input\": ", 400),
        ("{\"input\": [1,2]}", 422),
        ("{\"input\": \"text\"}", 422),
        ("[]", 422),
    ] {
        let r = post_raw(&app, "/v1/workflows/shell/runs", body).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.json);
    }
    let r = post_raw(&app, "/v1/workflows/nope/runs", "{}").await;
    expect_error(&r, 404, "not_found");
    let r = get(&app, "/v1/runs/not-a-uuid").await;
    expect_error(&r, 404, "not_found");
    let r = get(&app, "/v1/runs?limit=-3").await;
    let p = fields(&r, 422);
    assert!(p.iter().any(|(f, _)| f == "limit"), "{p:?}");

    // Still answering after all of it.
    let r = get(&app, "/healthz").await;
    assert_eq!(r.status.as_u16(), 200);
    let r = post(
        &app,
        "/v1/workflows/shell/runs",
        &json!({"input": {"x": "ok"}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json);
}
