//! Validation of a node's `for_each`, `max_items` and `max_parallel`, and of
//! `{{item}}` and `{{index}}` in its input (SPEC 2.1).

use crate::instance::{ForEach, DEFAULT_MAX_ITEMS, MAX_ITEMS};
use crate::model::NodeDef;
use crate::template::TemplateRef;
use crate::validate::Problem;
use crate::validate_impl::bounded;

fn problem(field: String, code: &'static str, message: String) -> Problem {
    Problem {
        field,
        code,
        message,
    }
}

/// The node's validated `for_each` (`None` without one or when it is bad),
/// with every problem of it pushed to `out`. `refs` are the templates of
/// the node's input with their fields.
pub(crate) fn for_each(
    i: usize,
    node: &NodeDef,
    refs: &[(String, TemplateRef)],
    out: &mut Vec<Problem>,
) -> Option<ForEach> {
    let at = |name: &str| format!("nodes[{i}].{name}");
    for (name, value) in [
        ("max_items", node.max_items),
        ("max_parallel", node.max_parallel),
    ] {
        let Some(value) = value else { continue };
        if node.for_each.is_none() {
            out.push(problem(
                at(name),
                "bad_value",
                format!("node {:?}: {name} needs for_each", node.id),
            ));
        } else {
            bounded(out, &at(name), value, 1, u64::from(MAX_ITEMS));
        }
    }
    if node.for_each.is_none() {
        for (field, r) in refs {
            if matches!(r, TemplateRef::Item { .. } | TemplateRef::Index) {
                out.push(problem(
                    format!("nodes[{i}].{field}"),
                    "bad_template",
                    format!(
                        "node {:?}: item and index are only defined in a for_each node",
                        node.id
                    ),
                ));
            }
        }
    }
    let template = node.for_each.as_ref()?;
    let source = match crate::template_impl::single(template) {
        Err(reason) => {
            out.push(problem(
                at("for_each"),
                "bad_template",
                format!("node {:?}: bad for_each {template:?}: {reason}", node.id),
            ));
            return None;
        }
        Ok(Some(r @ (TemplateRef::RunInput { .. } | TemplateRef::NodeOutput { .. }))) => r,
        Ok(_) => {
            out.push(problem(
                at("for_each"),
                "bad_for_each",
                format!(
                    "node {:?}: for_each must be exactly one template of the run input or \
                     an ancestor's output, such as \"{{{{scan.output.findings}}}}\", got {template:?}",
                    node.id
                ),
            ));
            return None;
        }
    };
    let max_items = node
        .max_items
        .map_or(DEFAULT_MAX_ITEMS, |m| u32::try_from(m).unwrap_or(u32::MAX));
    let max_parallel = node
        .max_parallel
        .map(|p| u32::try_from(p).unwrap_or(u32::MAX));
    Some(ForEach {
        template: template.clone(),
        source,
        max_items: max_items.min(MAX_ITEMS),
        max_parallel,
    })
}
