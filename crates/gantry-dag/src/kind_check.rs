//! Validation of a node's kind (SPEC 2.1): exactly one of `agent`,
//! `workflow` and `wait`, and the fields that belong to each.

use crate::model::NodeDef;
use crate::validate::{is_valid_name, Problem};
use crate::validate_impl::problem;

/// Every problem with node `i`'s kind. Whether a named agent or workflow
/// exists is checked by the caller (agents here, in validation; workflows
/// by the store, which knows them).
pub(crate) fn kind_problems(i: usize, node: &NodeDef, out: &mut Vec<Problem>) {
    let kinds = [
        !node.agent.is_empty(),
        node.workflow.is_some(),
        node.wait.is_some(),
    ];
    let count = kinds.iter().filter(|k| **k).count();
    if count != 1 {
        out.push(problem(
            format!("nodes[{i}]"),
            if count == 0 {
                "missing_field"
            } else {
                "bad_value"
            },
            format!(
                "node {:?} must have exactly one of agent, workflow and wait, has {count}",
                node.id
            ),
        ));
    }
    if let Some(name) = &node.workflow {
        if !is_valid_name(name) {
            out.push(problem(
                format!("nodes[{i}].workflow"),
                "bad_name",
                format!("workflow name {name:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$"),
            ));
        }
    }
    match node.version {
        Some(_) if node.workflow.is_none() => out.push(problem(
            format!("nodes[{i}].version"),
            "bad_value",
            format!("node {:?} has a version but no workflow", node.id),
        )),
        Some(0) => out.push(problem(
            format!("nodes[{i}].version"),
            "bad_value",
            format!("nodes[{i}].version must be at least 1, got 0"),
        )),
        _ => {}
    }
    if node.wait.is_some() && node.for_each.is_some() {
        out.push(problem(
            format!("nodes[{i}].for_each"),
            "bad_for_each",
            format!(
                "node {:?} is a wait node: for_each works with agent and workflow nodes only",
                node.id
            ),
        ));
    }
}
