//! Checks of an agent definition (see [`crate::AgentDef::problems`]).

use crate::limits;
use crate::model::{AgentDef, Runtime, BUILTINS};
use crate::validate::{is_valid_name, Problem};
use crate::validate_impl::{bounded, retry_problems};

use crate::schema::schema_problems;

fn push(out: &mut Vec<Problem>, field: &str, code: &'static str, message: String) {
    out.push(Problem {
        field: field.to_owned(),
        code,
        message,
    });
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
fn is_valid_secret_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn agent_problems(a: &AgentDef) -> Vec<Problem> {
    let mut out = Vec::new();
    if !is_valid_name(&a.name) {
        push(
            &mut out,
            "name",
            "bad_name",
            format!(
                "agent name {:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
                a.name
            ),
        );
    }
    if !is_valid_name(&a.queue) {
        push(
            &mut out,
            "queue",
            "bad_name",
            format!(
                "queue name {:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
                a.queue
            ),
        );
    }
    match a.runtime {
        Runtime::Docker => {
            if a.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                push(
                    &mut out,
                    "image",
                    "missing_field",
                    "runtime docker needs an image".to_owned(),
                );
            }
        }
        Runtime::Process => {
            if a.command
                .as_ref()
                .is_none_or(|c| c.is_empty() || c[0].is_empty())
            {
                push(
                    &mut out,
                    "command",
                    "missing_field",
                    "runtime process needs a non-empty command".to_owned(),
                );
            }
        }
        Runtime::Builtin => match a.builtin.as_deref() {
            None => push(
                &mut out,
                "builtin",
                "missing_field",
                format!(
                    "runtime builtin needs builtin, one of {}",
                    BUILTINS.join(", ")
                ),
            ),
            Some(b) if !BUILTINS.contains(&b) => push(
                &mut out,
                "builtin",
                "bad_value",
                format!(
                    "unknown builtin {b:?}, expected one of {}",
                    BUILTINS.join(", ")
                ),
            ),
            Some(_) => {}
        },
    }
    bounded(&mut out, "timeout_s", a.timeout_s, 1, limits::MAX_TIMEOUT_S);
    if let Some(t) = a.approval_timeout_s {
        bounded(
            &mut out,
            "approval_timeout_s",
            t,
            1,
            limits::MAX_APPROVAL_TIMEOUT_S,
        );
    }
    retry_problems("retry", &a.retry, &mut out);
    bounded(
        &mut out,
        "limits.memory_mb",
        a.limits.memory_mb,
        limits::MIN_MEMORY_MB,
        limits::MAX_MEMORY_MB,
    );
    if !(a.limits.cpus.is_finite() && a.limits.cpus > 0.0 && a.limits.cpus <= limits::MAX_CPUS) {
        push(
            &mut out,
            "limits.cpus",
            "bad_value",
            format!(
                "limits.cpus must be a finite number above 0 and at most {}, got {}",
                limits::MAX_CPUS,
                a.limits.cpus
            ),
        );
    }
    bounded(&mut out, "limits.pids", a.limits.pids, 1, limits::MAX_PIDS);
    if a.network != "none" && a.network != "bridge" {
        push(
            &mut out,
            "network",
            "bad_value",
            format!("network {:?} must be none or bridge", a.network),
        );
    }
    for (i, secret) in a.secrets.iter().enumerate() {
        if !is_valid_secret_name(secret) {
            push(
                &mut out,
                &format!("secrets[{i}]"),
                "bad_name",
                format!("secret name {secret:?} must match ^[A-Za-z_][A-Za-z0-9_]*$"),
            );
        }
    }
    if let Some(r) = a.rate_limit {
        if !(r.per_second.is_finite()
            && r.per_second > 0.0
            && r.per_second <= limits::MAX_RATE_PER_S)
        {
            push(
                &mut out,
                "rate_limit.per_second",
                "bad_value",
                format!(
                    "rate_limit.per_second must be a finite number above 0 and at most {}, got {}",
                    limits::MAX_RATE_PER_S,
                    r.per_second
                ),
            );
        }
        bounded(
            &mut out,
            "rate_limit.burst",
            u64::from(r.burst),
            1,
            u64::from(limits::MAX_BURST),
        );
    }
    if a.output_schema.as_ref().is_some_and(|s| !s.is_object()) {
        push(
            &mut out,
            "output_schema",
            "bad_value",
            "output_schema must be a JSON object".to_owned(),
        );
    } else if let Some(schema) = &a.output_schema {
        schema_problems("output_schema", schema, &mut out);
    }
    if let Some(schema) = &a.input_schema {
        schema_problems("input_schema", schema, &mut out);
    }
    out
}
