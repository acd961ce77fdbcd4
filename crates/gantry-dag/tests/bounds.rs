//! Every number of an agent or node definition has a maximum (issue 10
//! item 4), and `input_schema`/`output_schema` must be valid JSON Schemas:
//! each bad value is a problem naming its field, listed with every other.

use gantry_dag::limits::{self, MAX_DELAY_MS};
use gantry_dag::{
    AgentDef, Backoff, Limits, RetryPolicy, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES,
};
use serde_json::{json, Value};
use std::time::Duration;

fn agent(v: Value) -> AgentDef {
    serde_json::from_value(v).expect("agent parses")
}

/// The (field, code) pairs of an agent's problems.
fn agent_problems(v: Value) -> Vec<(String, &'static str)> {
    agent(v)
        .problems()
        .into_iter()
        .map(|p| (p.field, p.code))
        .collect()
}

fn base() -> Value {
    json!({"name": "a", "runtime": "builtin", "builtin": "noop"})
}

fn with(patch: Value) -> Value {
    let mut v = base();
    for (k, val) in patch.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn pairs(want: &[&str]) -> Vec<(String, &'static str)> {
    want.iter().map(|f| (f.to_string(), "bad_value")).collect()
}

#[test]
fn u64_max_in_every_agent_number_is_a_problem_naming_the_field() {
    let m = u64::MAX;
    let got = agent_problems(with(json!({
        "timeout_s": m,
        "retry": {"max_attempts": u32::MAX, "initial_delay_ms": m, "max_delay_ms": m,
                  "multiplier": 1e300},
        "limits": {"memory_mb": m, "cpus": 1e300, "pids": m},
        "rate_limit": {"per_second": 1e300, "burst": u32::MAX},
    })));
    assert_eq!(
        got,
        pairs(&[
            "timeout_s",
            "retry.max_attempts",
            "retry.initial_delay_ms",
            "retry.max_delay_ms",
            "retry.multiplier",
            "limits.memory_mb",
            "limits.cpus",
            "limits.pids",
            "rate_limit.per_second",
            "rate_limit.burst",
        ])
    );
}

#[test]
fn each_message_names_the_field_the_bound_and_the_value() {
    let problems = agent(with(json!({"timeout_s": u64::MAX}))).problems();
    assert_eq!(problems.len(), 1);
    let msg = &problems[0].message;
    assert!(msg.contains("timeout_s"), "{msg}");
    assert!(msg.contains(&limits::MAX_TIMEOUT_S.to_string()), "{msg}");
    assert!(msg.contains(&u64::MAX.to_string()), "{msg}");
}

#[test]
fn the_bounds_themselves_are_accepted() {
    let got = agent_problems(with(json!({
        "timeout_s": limits::MAX_TIMEOUT_S,
        "retry": {"max_attempts": limits::MAX_ATTEMPTS, "initial_delay_ms": MAX_DELAY_MS,
                  "max_delay_ms": MAX_DELAY_MS, "multiplier": limits::MAX_MULTIPLIER},
        "limits": {"memory_mb": limits::MAX_MEMORY_MB, "cpus": limits::MAX_CPUS,
                   "pids": limits::MAX_PIDS},
        "rate_limit": {"per_second": limits::MAX_RATE_PER_S, "burst": limits::MAX_BURST},
    })));
    assert_eq!(got, vec![]);
    let low = agent_problems(with(json!({
        "timeout_s": 1,
        "retry": {"max_attempts": 1, "initial_delay_ms": 0, "max_delay_ms": 0, "multiplier": 1.0},
        "limits": {"memory_mb": limits::MIN_MEMORY_MB, "cpus": 0.01, "pids": 1},
        "rate_limit": {"per_second": 0.001, "burst": 1},
    })));
    assert_eq!(low, vec![]);
}

#[test]
fn one_past_each_bound_is_a_problem() {
    let got = agent_problems(with(json!({
        "timeout_s": limits::MAX_TIMEOUT_S + 1,
        "retry": {"max_attempts": limits::MAX_ATTEMPTS + 1, "initial_delay_ms": MAX_DELAY_MS + 1,
                  "max_delay_ms": MAX_DELAY_MS + 1, "multiplier": limits::MAX_MULTIPLIER + 0.5},
        "limits": {"memory_mb": limits::MIN_MEMORY_MB - 1, "cpus": limits::MAX_CPUS + 1.0,
                   "pids": limits::MAX_PIDS + 1},
        "rate_limit": {"per_second": limits::MAX_RATE_PER_S * 2.0, "burst": limits::MAX_BURST + 1},
    })));
    assert_eq!(got.len(), 10, "{got:?}");
}

#[test]
fn node_numbers_are_bounded_too_and_listed_with_other_problems() {
    let def: WorkflowDef = serde_json::from_value(json!({"name": "w", "nodes": [
        {"id": "a", "agent": "x", "timeout_s": u64::MAX,
         "retry": {"max_attempts": u32::MAX, "initial_delay_ms": u64::MAX,
                   "max_delay_ms": u64::MAX, "multiplier": 1e300}},
        {"id": "b", "agent": "missing", "depends_on": ["a"]}
    ]}))
    .unwrap();
    let got: Vec<(String, &str)> = ValidatedDag::new(def, &|a| a == "x", DEFAULT_MAX_NODES)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.field, p.code))
        .collect();
    let want: Vec<(String, &str)> = [
        ("nodes[0].retry.max_attempts", "bad_value"),
        ("nodes[0].retry.initial_delay_ms", "bad_value"),
        ("nodes[0].retry.max_delay_ms", "bad_value"),
        ("nodes[0].retry.multiplier", "bad_value"),
        ("nodes[0].timeout_s", "bad_value"),
        ("nodes[1].agent", "unknown_agent"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), *c))
    .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want;
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "{got:?}");
}

#[test]
fn invalid_json_schemas_are_problems_naming_the_field_and_the_error() {
    let problems = agent(with(json!({
        "input_schema": {"type": "bogus"},
        "output_schema": {"type": "object", "properties": {"n": {"minimum": "ten"}}},
    })))
    .problems();
    let fields: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    assert_eq!(
        fields,
        [
            ("output_schema", "bad_schema"),
            ("input_schema", "bad_schema")
        ]
    );
    assert!(
        problems[1]
            .message
            .contains("input_schema is not a valid JSON Schema")
            && problems[1].message.contains("bogus"),
        "{}",
        problems[1].message
    );
}

#[test]
fn valid_schemas_pass_and_external_refs_are_refused() {
    let ok = agent_problems(with(json!({
        "input_schema": {"type": "object", "required": ["repo"]},
        "output_schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}},
    })));
    assert_eq!(ok, vec![]);
    let remote = agent_problems(with(json!({
        "output_schema": {"$ref": "https://example.com/schema.json"},
    })));
    assert_eq!(remote, vec![("output_schema".to_owned(), "bad_schema")]);
}

#[test]
fn clamping_keeps_stored_huge_values_inside_the_bounds() {
    let huge = RetryPolicy {
        max_attempts: u32::MAX,
        initial_delay_ms: u64::MAX,
        max_delay_ms: u64::MAX,
        multiplier: f64::INFINITY,
    };
    let c = huge.clamped();
    assert_eq!(c.max_attempts, limits::MAX_ATTEMPTS);
    assert_eq!(c.initial_delay_ms, MAX_DELAY_MS);
    assert_eq!(c.max_delay_ms, MAX_DELAY_MS);
    assert_eq!(c.multiplier, 1.0);
    // The backoff of an unclamped policy never passes the bound either.
    for tries in [1, 2, 64, u32::MAX] {
        let d = Backoff::delay_after(&huge, tries, 0.999);
        assert!(d <= Duration::from_millis(MAX_DELAY_MS), "{d:?}");
    }
    let l = Limits {
        memory_mb: u64::MAX,
        cpus: f64::NAN,
        pids: 0,
    }
    .clamped();
    assert_eq!(
        (l.memory_mb, l.cpus, l.pids),
        (limits::MAX_MEMORY_MB, 1.0, 1)
    );
    assert_eq!(limits::clamp_timeout_s(u64::MAX), limits::MAX_TIMEOUT_S);
    assert_eq!(limits::clamp_timeout_s(0), 1);
}
