//! Output-schema checks in the [`Executor`] (any runtime; builtin here):
//! matches pass, violations fail permanently naming the path, and a schema
//! with a remote `$ref` fails cleanly without any network call.

mod common;

use common::{builtin, failure, request, success};
use gantry_dag::AgentDef;
use gantry_executor::{ErrorKind, ExecLimits, Executor};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn echo_with_schema(schema: Value) -> AgentDef {
    let mut agent = builtin("echo");
    agent.output_schema = Some(schema);
    agent
}

fn count_schema() -> Value {
    json!({
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}}}
    })
}

#[tokio::test]
async fn a_matching_output_passes() {
    let exec = Executor::new(ExecLimits::default());
    let out = json!({"count": 3, "tags": ["a"]});
    let result = exec
        .execute(request(
            echo_with_schema(count_schema()),
            out.clone(),
            MINUTE,
        ))
        .await;
    assert_eq!(success(&result), &out);
}

#[tokio::test]
async fn a_violation_fails_permanently_with_the_path() {
    let exec = Executor::new(ExecLimits::default());
    let out = json!({"count": "three", "tags": ["a", 7]});
    let result = exec
        .execute(request(echo_with_schema(count_schema()), out, MINUTE))
        .await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::SchemaViolation);
    assert!(!kind.is_retryable());
    assert_eq!(kind.as_str(), "schema_violation");
    assert!(
        error.starts_with("output does not match output_schema: "),
        "{error}"
    );
    assert!(error.contains("at /count: "), "{error}");
    assert!(error.contains("at /tags/1: "), "{error}");

    // Missing required field: reported at the root.
    let result = exec
        .execute(request(echo_with_schema(count_schema()), json!({}), MINUTE))
        .await;
    let (kind, error) = failure(&result);
    assert_eq!(kind, ErrorKind::SchemaViolation);
    assert!(
        error.contains("at /: ") && error.contains("count"),
        "{error}"
    );
}

#[tokio::test]
async fn failures_and_schemaless_agents_are_untouched() {
    let exec = Executor::new(ExecLimits::default());
    let mut fail = builtin("fail");
    fail.output_schema = Some(count_schema());
    let result = exec
        .execute(request(fail, json!({"exit_code": 3}), MINUTE))
        .await;
    assert_eq!(failure(&result).0, ErrorKind::Exit);
    let result = exec
        .execute(request(builtin("echo"), json!({"count": "x"}), MINUTE))
        .await;
    assert_eq!(success(&result), &json!({"count": "x"}));
    // The empty schema accepts anything.
    let result = exec
        .execute(request(
            echo_with_schema(json!({})),
            json!([1, "x"]),
            MINUTE,
        ))
        .await;
    assert_eq!(success(&result), &json!([1, "x"]));
}

#[tokio::test]
async fn a_remote_ref_is_never_fetched() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let exec = Executor::new(ExecLimits::default());
    for url in [
        format!("http://127.0.0.1:{port}/x"),
        "http://127.0.0.1:1/x".to_owned(),
    ] {
        let schema = json!({"type": "object", "properties": {"a": {"$ref": url}}});
        let started = Instant::now();
        let result = exec
            .execute(request(echo_with_schema(schema), json!({"a": 1}), MINUTE))
            .await;
        let (kind, error) = failure(&result);
        assert_eq!(kind, ErrorKind::Permanent, "{error}");
        assert!(
            error.starts_with("output_schema cannot be used: "),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Twice: the second answer comes from the compiled-schema cache.
        let again = exec
            .execute(request(
                echo_with_schema(json!({"type": "object", "properties": {"a": {"$ref": url}}})),
                json!({"a": 1}),
                MINUTE,
            ))
            .await;
        assert_eq!(again.outcome, result.outcome);
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the schema made a connection: {other:?}"),
    }
}
