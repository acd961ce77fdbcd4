//! Huge numbers (issue 10 item 4) against a real API process: u64::MAX
//! delays, limits and timeouts in an agent or a node each get a 422 naming
//! the field, nothing is stored, and the API goes on answering.

use crate::common::Env;
use serde_json::{json, Value};

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
        ("retry.initial_delay_ms", json!({"retry": {"initial_delay_ms": M}})),
        ("retry.max_delay_ms", json!({"retry": {"max_delay_ms": M}})),
        ("retry.multiplier", json!({"retry": {"multiplier": 1e300}})),
        ("limits.memory_mb", json!({"limits": {"memory_mb": M}})),
        ("limits.cpus", json!({"limits": {"cpus": 1e300}})),
        ("limits.pids", json!({"limits": {"pids": M}})),
        ("rate_limit.per_second", json!({"rate_limit": {"per_second": 1e300}})),
        ("rate_limit.burst", json!({"rate_limit": {"per_second": 1.0, "burst": M}})),
    ];
    for (field, patch) in cases {
        let (status, body) = env.post("/v1/agents", &agent(patch)).await;
        assert_eq!(fields(status, &body), vec![field.to_owned()], "{field}");
        let message = body["error"]["details"][0]["message"].as_str().unwrap_or("");
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
