//! `{{run.input.PATH}}` and `{{NODE.output.PATH}}` templates (SPEC section 2).
//! A string that is exactly one template becomes the referenced JSON value; a
//! template inside a longer string is replaced by its text (strings verbatim,
//! other values as compact JSON). Rendering is one pass: rendered text is
//! never scanned again, so upstream outputs stay data.

use serde::Serialize;
use serde_json::Value;

/// Where a template points.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum TemplateRef {
    /// `{{run.input.PATH}}`; an empty path is the whole input.
    RunInput { path: Vec<String> },
    /// `{{NODE.output.PATH}}`; an empty path is the whole output.
    NodeOutput { node: String, path: Vec<String> },
}

/// A template could not be parsed or resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `field` is the JSON path inside the input, e.g. `input.findings`.
    #[error("bad template {template:?} at {field}: {reason}")]
    Syntax {
        field: String,
        template: String,
        reason: String,
    },
    /// The referenced path does not exist in the run input or node output.
    #[error("template {template:?} at {field}: path {path:?} not found")]
    MissingPath {
        field: String,
        template: String,
        path: String,
    },
}

/// Every template reference in `input`, with the JSON path where it stands.
pub fn refs(input: &Value) -> Result<Vec<(String, TemplateRef)>, TemplateError> {
    crate::template_impl::refs(input)
}

/// Render `input`, resolving `run.input` against `run_input` and node outputs
/// through `output` (which returns `None` for a node without output).
pub fn render(
    input: &Value,
    run_input: &Value,
    output: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    crate::template_impl::render(input, run_input, output)
}
