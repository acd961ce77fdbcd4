//! Validation of workflow definitions into a [`ValidatedDag`]: names, ids,
//! dependencies, cycles, agents and templates, reporting every problem.

use crate::graph::{cycle_in, kahn, tarjan, Ancestry};
use crate::model::{RetryPolicy, WorkflowDef};
use crate::template::TemplateRef;
use crate::template_impl::collect;
use crate::validate::{is_valid_name, Problem, ValidatedDag};
use crate::{limits, Condition, NodeIdx};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) use crate::agent_check::agent_problems;

pub(crate) fn problem(field: String, code: &'static str, message: String) -> Problem {
    Problem {
        field,
        code,
        message,
    }
}

/// Problems of a retry policy at `field` (`nodes[2].retry` or `retry`):
/// every number finite and within its bound of [`crate::limits`].
pub(crate) fn retry_problems(field: &str, retry: &RetryPolicy, out: &mut Vec<Problem>) {
    let at = |name: &str| format!("{field}.{name}");
    bounded(
        out,
        &at("max_attempts"),
        u64::from(retry.max_attempts),
        1,
        u64::from(limits::MAX_ATTEMPTS),
    );
    bounded(
        out,
        &at("initial_delay_ms"),
        retry.initial_delay_ms,
        0,
        limits::MAX_DELAY_MS,
    );
    bounded(
        out,
        &at("max_delay_ms"),
        retry.max_delay_ms,
        0,
        limits::MAX_DELAY_MS,
    );
    if !(retry.multiplier.is_finite() && (1.0..=limits::MAX_MULTIPLIER).contains(&retry.multiplier))
    {
        out.push(problem(
            at("multiplier"),
            "bad_value",
            format!(
                "{field}.multiplier must be a finite number from 1 to {}, got {}",
                limits::MAX_MULTIPLIER,
                retry.multiplier
            ),
        ));
    }
}

/// A `bad_value` problem at `field` unless `min <= value <= max`.
pub(crate) fn bounded(out: &mut Vec<Problem>, field: &str, value: u64, min: u64, max: u64) {
    if !(min..=max).contains(&value) {
        out.push(problem(
            field.to_owned(),
            "bad_value",
            format!("{field} must be from {min} to {max}, got {value}"),
        ));
    }
}

pub(crate) fn validate(
    def: WorkflowDef,
    agent_exists: &dyn Fn(&str) -> bool,
    max_nodes: usize,
) -> Result<ValidatedDag, Vec<Problem>> {
    let mut problems = Vec::new();
    if !is_valid_name(&def.name) {
        problems.push(problem(
            "name".to_owned(),
            "bad_name",
            format!(
                "workflow name {:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
                def.name
            ),
        ));
    }
    let n = def.nodes.len();
    if n == 0 {
        problems.push(problem(
            "nodes".to_owned(),
            "empty_workflow",
            "workflow has no nodes".to_owned(),
        ));
        return Err(problems);
    }
    // Instances' slots start above every node index (instance.rs).
    let max_nodes = max_nodes.min(crate::instance::MAX_NODES);
    if n > max_nodes {
        // Stop here: the rest is not worth computing for an oversized input.
        problems.push(problem(
            "nodes".to_owned(),
            "too_many_nodes",
            format!("workflow has {n} nodes, more than the limit of {max_nodes}"),
        ));
        return Err(problems);
    }

    // Ids: names and uniqueness. A duplicate resolves to its first occurrence.
    let mut index: HashMap<String, NodeIdx> = HashMap::with_capacity(n);
    for (i, node) in def.nodes.iter().enumerate() {
        if !is_valid_name(&node.id) {
            problems.push(problem(
                format!("nodes[{i}].id"),
                "bad_name",
                format!(
                    "node id {:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
                    node.id
                ),
            ));
        }
        if let Some(&first) = index.get(&node.id) {
            problems.push(problem(
                format!("nodes[{i}].id"),
                "duplicate_id",
                format!(
                    "duplicate node id {:?}, first used by nodes[{first}]",
                    node.id
                ),
            ));
        } else {
            index.insert(node.id.clone(), i as NodeIdx);
        }
    }

    // Edges: known, not self, deduplicated.
    let mut parents: Vec<Vec<NodeIdx>> = vec![Vec::new(); n];
    let mut children: Vec<Vec<NodeIdx>> = vec![Vec::new(); n];
    let mut seen_by = vec![usize::MAX; n];
    for (i, node) in def.nodes.iter().enumerate() {
        for (j, dep) in node.depends_on.iter().enumerate() {
            let Some(&p) = index.get(dep) else {
                problems.push(problem(
                    format!("nodes[{i}].depends_on[{j}]"),
                    "unknown_dependency",
                    format!("node {:?} depends on unknown node {dep:?}", node.id),
                ));
                continue;
            };
            if p as usize == i || *dep == node.id {
                problems.push(problem(
                    format!("nodes[{i}].depends_on[{j}]"),
                    "self_loop",
                    format!("node {:?} depends on itself", node.id),
                ));
                continue;
            }
            if seen_by[p as usize] == i {
                continue;
            }
            seen_by[p as usize] = i;
            parents[i].push(p);
            children[p as usize].push(i as NodeIdx);
        }
    }

    // Cycles: each non-trivial strongly connected component once.
    let sccs = tarjan(&children);
    let mut member = vec![false; n];
    let mut cyclic = false;
    for scc in sccs.iter().filter(|c| c.len() > 1) {
        cyclic = true;
        for &v in scc {
            member[v as usize] = true;
        }
        let cycle = cycle_in(scc, &children, &member);
        for &v in scc {
            member[v as usize] = false;
        }
        let mut text = String::from("cycle ");
        for &v in &cycle {
            text.push_str(&def.nodes[v as usize].id);
            text.push_str(" -> ");
        }
        let first = cycle.first().copied().unwrap_or(scc[0]);
        text.push_str(&def.nodes[first as usize].id);
        problems.push(problem(format!("nodes[{first}].depends_on"), "cycle", text));
    }

    // Kinds, agents (asked once per distinct name) and per-node policies.
    let mut known_agent: HashMap<&str, bool> = HashMap::new();
    for (i, node) in def.nodes.iter().enumerate() {
        crate::kind_check::kind_problems(i, node, &mut problems);
        if !node.agent.is_empty() {
            let exists = *known_agent
                .entry(node.agent.as_str())
                .or_insert_with(|| agent_exists(&node.agent));
            if !exists {
                problems.push(problem(
                    format!("nodes[{i}].agent"),
                    "unknown_agent",
                    format!("node {:?} uses unknown agent {:?}", node.id, node.agent),
                ));
            }
        }
        if let Some(retry) = &node.retry {
            retry_problems(&format!("nodes[{i}].retry"), retry, &mut problems);
        }
        if let Some(t) = node.timeout_s {
            bounded(
                &mut problems,
                &format!("nodes[{i}].timeout_s"),
                t,
                1,
                limits::MAX_TIMEOUT_S,
            );
        }
        if let Some(t) = node.approval_timeout_s {
            bounded(
                &mut problems,
                &format!("nodes[{i}].approval_timeout_s"),
                t,
                1,
                limits::MAX_APPROVAL_TIMEOUT_S,
            );
        }
    }

    // Templates: syntax, then every referenced node must be an ancestor.
    let mut refs: Vec<Vec<TemplateRef>> = Vec::with_capacity(n);
    let mut located: Vec<Vec<(String, TemplateRef)>> = Vec::with_capacity(n);
    for (i, node) in def.nodes.iter().enumerate() {
        let (found, errors) = collect(&node.input);
        for e in errors {
            if let crate::TemplateError::Syntax {
                field,
                template,
                reason,
            } = e
            {
                problems.push(problem(
                    format!("nodes[{i}].{field}"),
                    "bad_template",
                    format!("node {:?}: bad template {template:?}: {reason}", node.id),
                ));
            }
        }
        let mut seen = HashSet::new();
        let unique = found
            .iter()
            .filter(|(_, r)| seen.insert(r))
            .map(|(_, r)| r.clone())
            .collect();
        refs.push(unique);
        located.push(found);
    }
    // for_each: its template reads an ancestor's output like an input
    // template, so it joins the ancestor check below.
    let mut maps = Vec::with_capacity(n);
    for (i, node) in def.nodes.iter().enumerate() {
        let map = crate::map_check::for_each(i, node, &located[i], &mut problems);
        if let Some(m) = &map {
            located[i].push(("for_each".to_owned(), m.source.clone()));
        }
        maps.push(map);
    }
    let waits: Vec<_> = def
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| crate::wait::wait_spec(i, node, &mut located[i], &mut problems))
        .collect();
    if let Some(schema) = &def.input_schema {
        crate::schema::schema_problems("input_schema", schema, &mut problems);
    }
    if let Some(days) = def.retention_days {
        bounded(
            &mut problems,
            "retention_days",
            u64::from(days),
            0,
            limits::MAX_RETENTION_DAYS,
        );
    }
    let compiled = def
        .input_schema
        .as_ref()
        .and_then(crate::schema::InputSchema::compile);
    let triggers = crate::trigger::triggers(
        &def,
        &|input| {
            compiled
                .as_ref()
                .map(|s| s.problems(input))
                .unwrap_or_default()
        },
        &mut problems,
    );
    // The run output's templates: they parse and name existing nodes.
    if let Some(output) = &def.output {
        let (found, errors) = collect(output);
        for e in errors {
            if let crate::TemplateError::Syntax {
                field,
                template,
                reason,
            } = e
            {
                let field = field.replacen("input", "output", 1);
                problems.push(problem(
                    field,
                    "bad_template",
                    format!("output: bad template {template:?}: {reason}"),
                ));
            }
        }
        for (field, r) in &found {
            if let Some(target) = r.node().filter(|t| !index.contains_key(*t)) {
                problems.push(problem(
                    field.replacen("input", "output", 1),
                    "unknown_node",
                    format!("output template names unknown node {target:?}"),
                ));
            }
        }
    }
    // Conditions: they compile, and every node they read is an ancestor
    // (checked with the templates' targets below).
    let mut conditions: Vec<Option<Arc<Condition>>> = Vec::with_capacity(n);
    for (i, node) in def.nodes.iter().enumerate() {
        let compiled = node
            .when
            .as_deref()
            .and_then(|src| match Condition::compile(src) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    problems.push(problem(
                        format!("nodes[{i}].when"),
                        "bad_condition",
                        format!("node {:?}: {e}", node.id),
                    ));
                    None
                }
            });
        conditions.push(compiled);
    }
    let mut targets: Vec<NodeIdx> = Vec::new();
    let mut is_target = vec![false; n];
    let named = located
        .iter()
        .flatten()
        .filter_map(|(_, r)| r.node())
        .chain(conditions.iter().flatten().flat_map(|c| c.nodes()));
    for node in named {
        if let Some(&t) = index.get(node) {
            if !is_target[t as usize] {
                is_target[t as usize] = true;
                targets.push(t);
            }
        }
    }
    let ancestry = Ancestry::new(&parents, &sccs, &targets);
    for (i, cond) in conditions.iter().enumerate() {
        let id = &def.nodes[i].id;
        for target in cond.iter().flat_map(|c| c.nodes()) {
            let why = match index.get(target) {
                None => format!("node {id:?} when reads unknown node {target:?}"),
                Some(&t) if t as usize == i => format!("node {id:?} when reads itself"),
                Some(&t) if !ancestry.is_ancestor(t, i as NodeIdx) => format!(
                    "node {id:?} when reads node {target:?}, which is not an ancestor (add it to depends_on)"
                ),
                Some(_) => continue,
            };
            problems.push(problem(
                format!("nodes[{i}].when"),
                "condition_not_ancestor",
                why,
            ));
        }
    }
    for (i, found) in located.iter().enumerate() {
        let id = &def.nodes[i].id;
        for (field, r) in found {
            let Some(target) = r.node() else {
                continue;
            };
            let why = match index.get(target) {
                None => format!("node {id:?} template names unknown node {target:?}"),
                Some(&t) if t as usize == i || target == id => {
                    format!("node {id:?} template names its own output")
                }
                Some(&t) if !ancestry.is_ancestor(t, i as NodeIdx) => format!(
                    "node {id:?} template names node {target:?}, which is not an ancestor (add it to depends_on)"
                ),
                Some(_) => continue,
            };
            problems.push(problem(
                format!("nodes[{i}].{field}"),
                "template_not_ancestor",
                why,
            ));
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    debug_assert!(!cyclic);
    let topo = kahn(&parents, &children);
    Ok(ValidatedDag::from_parts(crate::validate::Parts {
        def,
        index,
        parents,
        children,
        refs,
        conditions,
        maps,
        waits,
        triggers,
        topo,
    }))
}
