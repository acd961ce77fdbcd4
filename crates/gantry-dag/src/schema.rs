//! JSON Schemas in definitions: agents' `input_schema`/`output_schema` and
//! a workflow's `input_schema` must compile (external `$ref`s refused), and
//! a run's input is checked against its workflow's `input_schema` when the
//! run starts (SPEC section 2.1). Pure computation with `jsonschema`.

use crate::validate::Problem;
use serde_json::Value;
use std::sync::Arc;

/// Schema errors reported for one input, at most.
const MAX_INPUT_ERRORS: usize = 20;

/// Longest schema error quoted in a problem.
const MAX_SCHEMA_ERROR_CHARS: usize = 300;

/// Refuses every external resource: a schema is checked, not followed, so
/// registering one never makes the API open a connection or read a file.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external references are disabled (cannot fetch {uri})").into())
    }
}

/// A `bad_schema` problem at `field` unless `schema` compiles as a JSON
/// Schema (checked against its meta-schema, external `$ref`s refused),
/// exactly as the worker compiles an `output_schema`.
pub(crate) fn schema_problems(field: &str, schema: &Value, out: &mut Vec<Problem>) {
    if let Err(e) = jsonschema::options()
        .with_retriever(NoRetrieval)
        .build(schema)
    {
        let mut reason = e.to_string();
        if let Some((i, _)) = reason.char_indices().nth(MAX_SCHEMA_ERROR_CHARS) {
            reason.truncate(i);
            reason.push_str("...");
        }
        out.push(Problem {
            field: field.to_owned(),
            code: "bad_schema",
            message: format!("{field} is not a valid JSON Schema: {reason}"),
        });
    }
}

/// A workflow's compiled `input_schema`.
#[derive(Debug, Clone)]
pub(crate) struct InputSchema(Arc<jsonschema::Validator>);

impl InputSchema {
    /// `None` when `schema` does not compile (validation reports it).
    pub(crate) fn compile(schema: &Value) -> Option<Self> {
        jsonschema::options()
            .with_retriever(NoRetrieval)
            .build(schema)
            .ok()
            .map(|v| Self(Arc::new(v)))
    }

    /// Every way `input` violates the schema (at most [`MAX_INPUT_ERRORS`]),
    /// each a `schema_violation` problem at its path under `input`.
    pub(crate) fn problems(&self, input: &Value) -> Vec<Problem> {
        self.0
            .iter_errors(input)
            .take(MAX_INPUT_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                let field = format!("input{}", path.replace('/', "."));
                let mut message = e.to_string();
                if let Some((i, _)) = message.char_indices().nth(MAX_SCHEMA_ERROR_CHARS) {
                    message.truncate(i);
                    message.push_str("...");
                }
                Problem {
                    field,
                    code: "schema_violation",
                    message,
                }
            })
            .collect()
    }
}
