//! Huge numbers (issue 10 item 4) against a real API process: u64::MAX
//! delays, limits and timeouts in an agent or a node each get a 422 naming
//! the field, nothing is stored, and the API goes on answering. And a
//! definition stored before the bounds existed (written here straight into
//! Postgres) never stalls the worker or the coordinator: their delay
//! arithmetic clamps.

use super::pool::Pool;
use crate::common::Env;
use serde_json::{json, Value};
use std::time::Duration;

const M: u64 = u64::MAX;

/// The fields of a 422's problems; panics on any other answer.
fn fields(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(status, 422, "{body:#}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body:#}");
    body["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|p| p["field"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn agent(patch: Value) -> Value {
    let mut a = json!({"name": "huge", "runtime": "docker", "image": "gantry/echo:0.1.0"});
    for (k, v) in patch.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u64_max_delays_limits_and_timeouts_each_get_a_422() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;

    // Each on its own: a 422 naming exactly that field.
    let cases = [
        ("timeout_s", json!({"timeout_s": M})),
        ("retry.max_attempts", json!({"retry": {"max_attempts": M}})),
        (
            "retry.initial_delay_ms",
            json!({"retry": {"initial_delay_ms": M}}),
        ),
        ("retry.max_delay_ms", json!({"retry": {"max_delay_ms": M}})),
        ("retry.multiplier", json!({"retry": {"multiplier": 1e300}})),
        ("limits.memory_mb", json!({"limits": {"memory_mb": M}})),
        ("limits.cpus", json!({"limits": {"cpus": 1e300}})),
        ("limits.pids", json!({"limits": {"pids": M}})),
        (
            "rate_limit.per_second",
            json!({"rate_limit": {"per_second": 1e300}}),
        ),
        (
            "rate_limit.burst",
            json!({"rate_limit": {"per_second": 1.0, "burst": M}}),
        ),
    ];
    for (field, patch) in cases {
        let (status, body) = env.post("/v1/agents", &agent(patch)).await;
        assert_eq!(fields(status, &body), vec![field.to_owned()], "{field}");
        let message = body["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or("");
        assert!(message.contains(field), "{field}: {message}");
    }

    // All at once: every field listed in one answer.
    let (status, body) = env
        .post(
            "/v1/agents",
            &agent(json!({"timeout_s": M,
                "retry": {"initial_delay_ms": M, "max_delay_ms": M},
                "limits": {"memory_mb": M, "pids": M}})),
        )
        .await;
    let got = fields(status, &body);
    for f in [
        "timeout_s",
        "retry.initial_delay_ms",
        "retry.max_delay_ms",
        "limits.memory_mb",
        "limits.pids",
    ] {
        assert!(got.iter().any(|g| g == f), "{f} missing from {got:?}");
    }
    let (status, _) = env.get("/v1/agents/huge").await;
    assert_eq!(status, 404, "a refused agent is not stored");

    // Node overrides.
    env.builtin_agents().await;
    let (status, body) = env
        .post(
            "/v1/workflows",
            &json!({"name": "huge", "nodes": [
                {"id": "a", "agent": "echo", "timeout_s": M,
                 "retry": {"max_attempts": 2, "initial_delay_ms": M, "max_delay_ms": M}}
            ]}),
        )
        .await;
    let got = fields(status, &body);
    for f in [
        "nodes[0].timeout_s",
        "nodes[0].retry.initial_delay_ms",
        "nodes[0].retry.max_delay_ms",
    ] {
        assert!(got.iter().any(|g| g == f), "{f} missing from {got:?}");
    }

    // The bounds themselves register; the API still answers.
    let (status, body) = env
        .post(
            "/v1/agents",
            &agent(json!({"timeout_s": gantry_dag::limits::MAX_TIMEOUT_S,
                "retry": {"max_attempts": gantry_dag::limits::MAX_ATTEMPTS,
                          "initial_delay_ms": gantry_dag::limits::MAX_DELAY_MS,
                          "max_delay_ms": gantry_dag::limits::MAX_DELAY_MS}})),
        )
        .await;
    assert_eq!(status, 201, "{body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_stored_before_the_bounds_never_stall_anything() {
    let pool = Pool::start("4").await;
    let env = &pool.env;
    env.agent(json!({"name": "flaky", "runtime": "builtin", "builtin": "fail", "timeout_s": 30,
        "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 200, "multiplier": 2.0}}))
        .await;
    // What registration refuses now, as an older release stored it.
    let db = sqlx::PgPool::connect(&env.db_url)
        .await
        .expect("test database");
    sqlx::query(
        "UPDATE agents SET spec = spec
             || jsonb_build_object('timeout_s', $1::numeric)
             || jsonb_build_object('retry', jsonb_build_object(
                    'max_attempts', $2::numeric, 'initial_delay_ms', $1::numeric,
                    'max_delay_ms', $1::numeric, 'multiplier', 1e300::numeric))
         WHERE name = 'flaky'",
    )
    .bind(M.to_string())
    .bind(u32::MAX.to_string())
    .execute(&db)
    .await
    .expect("store huge numbers");
    env.workflow(json!({"name": "stale", "nodes": [
        {"id": "f", "agent": "flaky", "input": {"exit_code": 3}},
        {"id": "g", "agent": "echo", "input": {"beside": 1}}
    ]}))
    .await;
    let id = env.start("stale", json!({})).await;
    let plain = pool.plain_runs(10).await;
    pool.all_succeed(&plain, Duration::from_secs(60)).await;

    // The failed try is scheduled a clamped delay (at most a day) ahead.
    let run = env
        .wait_node(&id, "f", "retrying", Duration::from_secs(30))
        .await;
    assert_eq!(Pool::status(&run, "g"), "succeeded", "{run:#}");
    let (ahead,): (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM retry_at - clock_timestamp())::float8 FROM nodes
         WHERE run_id = $1::uuid AND node_id = 'f'",
    )
    .bind(&id)
    .fetch_one(&db)
    .await
    .expect("retry_at");
    let max_s = (gantry_dag::limits::MAX_DELAY_MS / 1000) as f64;
    assert!(
        ahead > 0.0 && ahead <= max_s,
        "retry in {ahead}s, bound {max_s}s"
    );

    // Cancelling it works, and more runs still finish.
    let (status, body) = env.post(&format!("/v1/runs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{body:#}");
    let more = pool.plain_runs(5).await;
    pool.all_succeed(&more, Duration::from_secs(60)).await;
    assert_eq!(pool.probe("/readyz").await, 200);
    for log in [pool.worker.log_text(), pool.coordinator_log()] {
        assert!(!log.contains("out of range"), "{log}");
    }
}
