//! The `builtin` runtime: in-process `noop`, `echo`, `sleep` and `fail` agents
//! for tests and benchmarks, following the same outcome rules as real agents.

use crate::protocol::{self, OutputBuffer};
use crate::{ErrorKind, ExecLimits, ExecRequest, ExecResult, Runtime};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Runs the builtin agents inside the worker process.
#[derive(Debug, Clone)]
pub struct BuiltinRuntime {
    limits: ExecLimits,
}

impl BuiltinRuntime {
    pub fn new(limits: ExecLimits) -> Self {
        Self { limits }
    }
}

#[async_trait::async_trait]
impl Runtime for BuiltinRuntime {
    async fn execute(&self, req: ExecRequest) -> ExecResult {
        if req.cancel.is_cancelled() {
            return ExecResult::from_outcome(protocol::cancelled_outcome());
        }
        let Some(name) = req.agent.builtin.as_deref() else {
            return permanent(format!(
                "builtin agent {:?} names no builtin",
                req.agent.name
            ));
        };
        match name {
            "noop" => ExecResult::succeeded(json!({})),
            "echo" => self.echo(req.input),
            "sleep" => sleep(&req).await,
            "fail" => fail(&req.input),
            other => permanent(format!(
                "unknown builtin {other:?} (expected noop, echo, sleep or fail)"
            )),
        }
    }
}

impl BuiltinRuntime {
    /// Echo is held to the same output limit as a real agent's stdout.
    fn echo(&self, input: Value) -> ExecResult {
        let bytes = match serde_json::to_vec(&input) {
            Ok(bytes) => bytes,
            Err(e) => return ExecResult::failed(ErrorKind::Runtime, format!("echo: {e}")),
        };
        match OutputBuffer::new(self.limits.max_output_bytes).push(&bytes) {
            Ok(()) => ExecResult::succeeded(input),
            Err(e) => ExecResult::from_outcome(e.into_outcome()),
        }
    }
}

/// `{"ms": N}`: sleeps N ms unless the timeout or the cancel token comes first.
async fn sleep(req: &ExecRequest) -> ExecResult {
    let fields = match object(&req.input, "sleep") {
        Ok(fields) => fields,
        Err(bad) => return bad,
    };
    let ms = match fields.get("ms") {
        Some(v) => match v.as_u64() {
            Some(ms) => ms,
            None => {
                return permanent(format!(
                    "sleep: input field ms must be a non-negative integer, got {}",
                    short(v)
                ))
            }
        },
        None => return permanent("sleep: input field ms is required".to_owned()),
    };
    let nap = Duration::from_millis(ms);
    if nap > req.timeout {
        // A real agent would be killed at the deadline; do the same.
        tokio::select! {
            () = tokio::time::sleep(req.timeout) => {
                ExecResult::from_outcome(protocol::timeout_outcome(req.timeout))
            }
            () = req.cancel.cancelled() => ExecResult::from_outcome(protocol::cancelled_outcome()),
        }
    } else {
        tokio::select! {
            () = tokio::time::sleep(nap) => ExecResult::succeeded(json!({"slept_ms": ms})),
            () = req.cancel.cancelled() => ExecResult::from_outcome(protocol::cancelled_outcome()),
        }
    }
}

/// `{"exit_code": N}` (default 1): fails as an agent exiting with N would.
fn fail(input: &Value) -> ExecResult {
    let fields = match object(input, "fail") {
        Ok(fields) => fields,
        Err(bad) => return bad,
    };
    let code = match fields.get("exit_code") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(code) if code != 0 => code,
            _ => {
                return permanent(format!(
                    "fail: input field exit_code must be a non-zero 32-bit integer, got {}",
                    short(v)
                ))
            }
        },
    };
    ExecResult {
        outcome: protocol::exit_outcome(code, b""),
        exit_code: Some(code),
        log_tail: String::new(),
    }
}

/// The input's fields; `null` counts as no fields.
fn object<'a>(input: &'a Value, builtin: &str) -> Result<&'a Map<String, Value>, ExecResult> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match input {
        Value::Object(fields) => Ok(fields),
        Value::Null => Ok(EMPTY.get_or_init(Map::new)),
        other => Err(permanent(format!(
            "{builtin}: input must be an object, got {}",
            short(other)
        ))),
    }
}

fn permanent(error: String) -> ExecResult {
    ExecResult::failed(ErrorKind::Permanent, error)
}

/// A value for an error message, cut short so input never floods it.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}
