//! `{{run.input.PATH}}`, `{{run.id}}`, `{{NODE.output.PATH}}`,
//! `{{NODE.status}}`, `{{NODE.error}}`, and in a `for_each` node's input
//! `{{item.PATH}}` and `{{index}}` templates (SPEC sections 2 and 2.1).
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
    /// `{{run.id}}`.
    RunId,
    /// `{{NODE.status}}`: the node's status as a string.
    NodeStatus { node: String },
    /// `{{NODE.error}}`: the node's error, null unless it failed.
    NodeError { node: String },
    /// `{{item.PATH}}`: the instance's item of a `for_each` node; an empty
    /// path is the whole item.
    Item { path: Vec<String> },
    /// `{{index}}`: the instance's 0-based index.
    Index,
}

impl TemplateRef {
    /// The node a reference reads, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::NodeOutput { node, .. }
            | Self::NodeStatus { node }
            | Self::NodeError { node } => Some(node),
            Self::RunInput { .. } | Self::RunId | Self::Item { .. } | Self::Index => None,
        }
    }
}

/// What a template may read of one node: its status, its output (read only
/// when it succeeded) and its error (read only when it failed).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub status: crate::NodeStatus,
    pub output: Value,
    pub error: Option<String>,
}

/// Everything templates of one node may read.
pub struct Scope<'a> {
    pub run_id: &'a str,
    pub input: &'a Value,
    /// `None` for a node the caller has nothing of (a template naming it
    /// fails like a missing path).
    pub nodes: &'a dyn Fn(&str) -> Option<NodeView>,
    /// The instance's item and index, for an instance of a `for_each` node
    /// (`{{item}}` and `{{index}}` fail like a missing path without it).
    pub item: Option<(&'a Value, u32)>,
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
/// through `output` (which returns `None` for a node without output). Every
/// node it returns an output for reads as succeeded; `run.id` reads as "".
pub fn render(
    input: &Value,
    run_input: &Value,
    output: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    let nodes = |n: &str| {
        output(n).map(|output| NodeView {
            status: crate::NodeStatus::Succeeded,
            output,
            error: None,
        })
    };
    render_in(
        input,
        &Scope {
            run_id: "",
            input: run_input,
            nodes: &nodes,
            item: None,
        },
    )
}

/// Render `input` in `scope`. The output of a node that did not succeed
/// reads as null (and as an empty string inside a longer string), as does
/// the error of a node that did not fail; a missing path of a succeeded
/// node's output is an error.
pub fn render_in(input: &Value, scope: &Scope<'_>) -> Result<Value, TemplateError> {
    crate::template_impl::render(input, scope)
}
