//! `wait` nodes (SPEC 2.1 and 9): what a node waits for, checked at
//! registration, and the key rendered when the node begins to wait. The
//! store records the wait and matches events to it; a match comes back as
//! the node's attempt succeeding, a timeout as [`crate::Outcome::TimedOut`].

use crate::advance_impl::Tx;
use crate::map::kind;
use crate::model::{NodeDef, OnTimeout};
use crate::template::TemplateRef;
use crate::template_impl::collect;
use crate::validate::Problem;
use crate::validate_impl::{bounded, problem};
use crate::{is_valid_event_name, limits, NodeFailure, NodeIdx, NodeState, NodeStatus};
use crate::{ValidatedDag, MAX_EVENT_KEY_BYTES};
use serde_json::Value;

/// `timeout_s` of a wait that does not say.
pub const DEFAULT_WAIT_TIMEOUT_S: u64 = 86_400;
/// Longest key template, in bytes (the rendered key is bounded like an
/// event's, [`MAX_EVENT_KEY_BYTES`]).
pub const MAX_WAIT_KEY_TEMPLATE_BYTES: usize = 1024;

/// A `wait` node's validated definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitSpec {
    pub event: String,
    /// The key template.
    pub key: String,
    pub timeout_s: u64,
    pub on_timeout: OnTimeout,
    /// The ancestors the key reads (their outputs join the facts).
    pub reads: Vec<String>,
}

/// A node began to wait for `event` with `key` (rendered): the store
/// records the wait as `attempt` of the node, with its deadline, and
/// matches an event already received since the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStart {
    pub node: NodeIdx,
    pub attempt: u32,
    pub event: String,
    pub key: String,
    pub timeout_s: u64,
}

/// Node `i`'s validated wait (`None` without one or when it is bad), with
/// every problem of it pushed to `out` and the templates of its key pushed
/// to `located` (their targets are checked like an input's).
pub(crate) fn wait_spec(
    i: usize,
    node: &NodeDef,
    located: &mut Vec<(String, TemplateRef)>,
    out: &mut Vec<Problem>,
) -> Option<WaitSpec> {
    let wait = node.wait.as_ref()?;
    let at = |name: &str| format!("nodes[{i}].{name}");
    let before = out.len();
    if !is_valid_event_name(&wait.event) {
        out.push(problem(
            at("wait.event"),
            "bad_name",
            format!(
                "node {:?} waits for event {:?}, which must match ^[a-z0-9][a-z0-9._-]{{0,127}}$",
                node.id, wait.event
            ),
        ));
    }
    if let Some(t) = wait.timeout_s {
        bounded(out, &at("wait.timeout_s"), t, 1, limits::MAX_WAIT_TIMEOUT_S);
    }
    if wait.key.len() > MAX_WAIT_KEY_TEMPLATE_BYTES {
        out.push(problem(
            at("wait.key"),
            "bad_value",
            format!(
                "node {:?}: wait.key is {} bytes, more than {MAX_WAIT_KEY_TEMPLATE_BYTES}",
                node.id,
                wait.key.len()
            ),
        ));
    }
    let start = located.len();
    if wait.key.len() <= MAX_WAIT_KEY_TEMPLATE_BYTES {
        key_templates(i, node, &wait.key, located, out);
    }
    let mut reads: Vec<String> = located[start..]
        .iter()
        .filter_map(|(_, r)| r.node().map(str::to_owned))
        .collect();
    reads.sort_unstable();
    reads.dedup();
    // What an agent node takes means nothing to a wait node: say so rather
    // than ignore it.
    let foreign = [
        (
            "input",
            node.input.as_object().is_none_or(|o| !o.is_empty()),
        ),
        ("retry", node.retry.is_some()),
        ("timeout_s", node.timeout_s.is_some()),
        ("approval_timeout_s", node.approval_timeout_s.is_some()),
        ("on_approval_timeout", node.on_approval_timeout.is_some()),
    ];
    for (field, set) in foreign {
        if set {
            let hint = match field {
                "input" => "its output is the event's data",
                "timeout_s" => "use wait.timeout_s",
                _ => "it runs no agent",
            };
            out.push(problem(
                at(field),
                "bad_value",
                format!(
                    "node {:?} is a wait node: {field} does not apply ({hint})",
                    node.id
                ),
            ));
        }
    }
    (out.len() == before).then(|| WaitSpec {
        event: wait.event.clone(),
        key: wait.key.clone(),
        timeout_s: wait.timeout_s.unwrap_or(DEFAULT_WAIT_TIMEOUT_S),
        on_timeout: wait.on_timeout,
        reads,
    })
}

/// The templates of a wait key: they parse, and name no item or index (a
/// wait node has no `for_each`).
fn key_templates(
    i: usize,
    node: &NodeDef,
    key: &str,
    located: &mut Vec<(String, TemplateRef)>,
    out: &mut Vec<Problem>,
) {
    let field = format!("nodes[{i}].wait.key");
    let (found, errors) = collect(&Value::String(key.to_owned()));
    for e in errors {
        if let crate::TemplateError::Syntax {
            template, reason, ..
        } = e
        {
            out.push(problem(
                field.clone(),
                "bad_template",
                format!("node {:?}: bad template {template:?}: {reason}", node.id),
            ));
        }
    }
    for (_, r) in found {
        if matches!(r, TemplateRef::Item { .. } | TemplateRef::Index) {
            out.push(problem(
                field.clone(),
                "bad_template",
                format!(
                    "node {:?}: item and index are only defined in a for_each node",
                    node.id
                ),
            ));
            continue;
        }
        located.push(("wait.key".to_owned(), r));
    }
}

impl Tx<'_> {
    /// The ready wait node `idx` begins to wait: its key is rendered over
    /// the facts and it becomes `waiting` as its next attempt. Returns
    /// whether that finished it (a key that cannot be rendered fails it).
    pub(crate) fn begin_wait(
        &mut self,
        dag: &ValidatedDag,
        idx: NodeIdx,
        mut ns: NodeState,
        spec: &WaitSpec,
    ) -> bool {
        match self.wait_key(dag, spec) {
            Ok(key) => {
                ns.status = NodeStatus::Waiting;
                ns.attempt = ns.attempt.saturating_add(1);
                ns.tries = ns.tries.saturating_add(1);
                self.set(idx, ns);
                self.out.waits.push(WaitStart {
                    node: idx,
                    attempt: ns.attempt,
                    event: spec.event.clone(),
                    key,
                    timeout_s: spec.timeout_s,
                });
                false
            }
            Err(why) => {
                self.fail_node(idx, ns, why);
                true
            }
        }
    }

    /// The key `spec` renders to: a string as it is, a number or a bool as
    /// its JSON text; anything else, or a key past the bound, fails.
    fn wait_key(&self, dag: &ValidatedDag, spec: &WaitSpec) -> Result<String, NodeFailure> {
        let key = match self
            .render_over_facts(dag, &spec.key)
            .map_err(NodeFailure::WaitKeyPath)?
        {
            Value::String(s) => s,
            v @ (Value::Number(_) | Value::Bool(_)) => v.to_string(),
            other => return Err(NodeFailure::WaitKeyNotText { got: kind(&other) }),
        };
        if key.len() > MAX_EVENT_KEY_BYTES {
            return Err(NodeFailure::WaitKeyTooLong { bytes: key.len() });
        }
        Ok(key)
    }
}
