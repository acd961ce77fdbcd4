//! Huge numbers and invalid schemas at registration (issue 10 items 4 and
//! 6): each is a 422 naming its field, listed with every other problem,
//! through the real router with Postgres and Redis behind it.

mod common;

use common::{expect_error, post, problems, register_agents, test_app};
use serde_json::json;
use sqlx::PgPool;

fn has(p: &[(String, String)], field: &str, code: &str) -> bool {
    p.iter().any(|(f, c)| f == field && c == code)
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn u64_max_numbers_are_422_naming_every_field(pool: PgPool) {
    let app = test_app(pool).await;
    let m = u64::MAX;
    // u64 fields reach validation: every one is listed at once.
    let r = post(
        &app,
        "/v1/agents",
        &json!({"name": "huge", "runtime": "builtin", "builtin": "noop", "timeout_s": m,
                "retry": {"max_attempts": 3, "initial_delay_ms": m, "max_delay_ms": m,
                          "multiplier": 1e300},
                "limits": {"memory_mb": m, "cpus": 1e300, "pids": m},
                "rate_limit": {"per_second": 1e300, "burst": 5}}),
    )
    .await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    for field in [
        "timeout_s",
        "retry.initial_delay_ms",
        "retry.max_delay_ms",
        "retry.multiplier",
        "limits.memory_mb",
        "limits.cpus",
        "limits.pids",
        "rate_limit.per_second",
    ] {
        assert!(has(&p, field, "bad_value"), "{field} missing from {p:?}");
    }
    assert_eq!(p.len(), 8, "{p:?}");
    // u32 fields (`max_attempts`, `burst`) cannot even hold u64::MAX: the
    // parse error names the field.
    for (field, body) in [
        (
            "retry.max_attempts",
            json!({"name": "huge", "runtime": "builtin", "builtin": "noop",
                   "retry": {"max_attempts": m}}),
        ),
        (
            "rate_limit.burst",
            json!({"name": "huge", "runtime": "builtin", "builtin": "noop",
                   "rate_limit": {"per_second": 1.0, "burst": m}}),
        ),
    ] {
        let r = post(&app, "/v1/agents", &body).await;
        let p = problems(&expect_error(&r, 422, "validation_failed"));
        assert!(has(&p, field, "bad_value"), "{field}: {p:?}");
    }
    // Nothing was stored.
    let r = common::get(&app, "/v1/agents/huge").await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.json);

    // Node numbers, listed with an unrelated problem.
    register_agents(&app, &["noop"]).await;
    let r = post(
        &app,
        "/v1/workflows",
        &json!({"name": "w", "nodes": [
            {"id": "a", "agent": "noop", "timeout_s": m,
             "retry": {"max_attempts": 2, "initial_delay_ms": m, "max_delay_ms": m}},
            {"id": "b", "agent": "nobody"}
        ]}),
    )
    .await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    for (field, code) in [
        ("nodes[0].timeout_s", "bad_value"),
        ("nodes[0].retry.initial_delay_ms", "bad_value"),
        ("nodes[0].retry.max_delay_ms", "bad_value"),
        ("nodes[1].agent", "unknown_agent"),
    ] {
        assert!(has(&p, field, code), "{field} missing from {p:?}");
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn invalid_json_schemas_are_422_with_the_schema_error(pool: PgPool) {
    let app = test_app(pool).await;
    let r = post(
        &app,
        "/v1/agents",
        &json!({"name": "s", "runtime": "builtin", "builtin": "echo",
                "input_schema": {"type": "bogus"}, "output_schema": {"type": "bogus"}}),
    )
    .await;
    let details = expect_error(&r, 422, "validation_failed");
    let p = problems(&details);
    assert!(has(&p, "input_schema", "bad_schema"), "{p:?}");
    assert!(has(&p, "output_schema", "bad_schema"), "{p:?}");
    let text = details[0]["message"].as_str().unwrap_or_default();
    assert!(
        text.contains("not a valid JSON Schema") && text.contains("bogus"),
        "{text}"
    );
    // A good schema registers.
    let r = post(
        &app,
        "/v1/agents",
        &json!({"name": "s", "runtime": "builtin", "builtin": "echo",
                "output_schema": {"type": "object", "required": ["x"]}}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.json);
}
