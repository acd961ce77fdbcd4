//! Output-schema checks (SPEC section 3): a successful output is validated
//! against the agent's `output_schema` with `jsonschema`, each schema
//! compiled once, and external `$ref`s never fetched.

use crate::{ErrorKind, ExecOutcome};
use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Compiled schemas kept at most; past this the cache starts over.
const MAX_CACHED: usize = 256;
/// Validation errors quoted in a failure message.
const MAX_ERRORS: usize = 3;
/// Longest single validation message kept (they may quote the output).
const MAX_MESSAGE_CHARS: usize = 300;

/// Refuses every external resource: a schema names data, it must not make
/// a worker open network connections or read its files.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external references are disabled (cannot fetch {uri})").into())
    }
}

/// Compiles and caches output schemas; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct SchemaCache {
    compiled: Arc<Mutex<HashMap<String, Arc<Compiled>>>>,
}

enum Compiled {
    Ok(Validator),
    Invalid(String),
}

impl SchemaCache {
    /// `outcome` unchanged, or a failure when a success does not match `schema`.
    pub(crate) fn check(&self, schema: &Value, outcome: ExecOutcome) -> ExecOutcome {
        let ExecOutcome::Succeeded(output) = &outcome else {
            return outcome;
        };
        match self.compile(schema).as_ref() {
            Compiled::Invalid(e) => ExecOutcome::Failed {
                kind: ErrorKind::Permanent,
                error: format!("output_schema cannot be used: {e}"),
            },
            Compiled::Ok(validator) => {
                let errors: Vec<String> = validator
                    .iter_errors(output)
                    .take(MAX_ERRORS)
                    .map(|e| {
                        let path = e.instance_path().to_string();
                        let path = if path.is_empty() { "/".into() } else { path };
                        format!("at {path}: {}", truncate(&e.to_string()))
                    })
                    .collect();
                if errors.is_empty() {
                    outcome
                } else {
                    ExecOutcome::Failed {
                        kind: ErrorKind::SchemaViolation,
                        error: format!(
                            "output does not match output_schema: {}",
                            errors.join("; ")
                        ),
                    }
                }
            }
        }
    }

    fn compile(&self, schema: &Value) -> Arc<Compiled> {
        let key = schema.to_string();
        let mut cache = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(&key) {
            return Arc::clone(hit);
        }
        let compiled = match jsonschema::options()
            .with_retriever(NoRetrieval)
            .build(schema)
        {
            Ok(v) => Compiled::Ok(v),
            Err(e) => Compiled::Invalid(truncate(&e.to_string())),
        };
        let compiled = Arc::new(compiled);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&compiled));
        compiled
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
