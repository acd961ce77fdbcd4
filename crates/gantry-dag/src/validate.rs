//! Validation of workflow and agent definitions into types that can only hold
//! good ones. Every problem is reported, not just the first.

use crate::model::{AgentDef, NodeDef, WorkflowDef};
use crate::template::TemplateRef;
use crate::{Condition, ForEach, NodeIdx, WaitSpec};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Default bound on the number of nodes of one workflow (SPEC section 2).
pub const DEFAULT_MAX_NODES: usize = 5_000;

/// One thing wrong with a definition. Serialized as an item of the API's
/// `error.details` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the offending field, e.g. `nodes[2].depends_on[0]`.
    pub field: String,
    /// Machine-readable kind: `cycle`, `self_loop`, `duplicate_id`,
    /// `unknown_dependency`, `unknown_agent`, `template_not_ancestor`,
    /// `bad_template`, `bad_name`, `too_many_nodes`, `empty_workflow`,
    /// `missing_field`, `bad_value`, `bad_schema`.
    pub code: &'static str,
    /// Human-readable, lowercase, names the problem and the values involved.
    pub message: String,
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// A workflow whose graph is known to be a DAG with unique ids, known
/// dependencies, known agents and templates that only name ancestors.
#[derive(Debug, Clone)]
pub struct ValidatedDag {
    def: WorkflowDef,
    index: HashMap<String, NodeIdx>,
    parents: Vec<Vec<NodeIdx>>,
    children: Vec<Vec<NodeIdx>>,
    /// Template references of each node's input.
    refs: Vec<Vec<TemplateRef>>,
    /// Each node's compiled `when`.
    conditions: Vec<Option<Arc<Condition>>>,
    /// Each node's validated `for_each`.
    maps: Vec<Option<ForEach>>,
    /// Each wait node's validated `wait`.
    waits: Vec<Option<WaitSpec>>,
    triggers: Vec<crate::Trigger>,
    input_schema: Option<crate::schema::InputSchema>,
    topo: Vec<NodeIdx>,
}

impl ValidatedDag {
    /// Validate `def`. `agent_exists` says whether an agent name is registered.
    /// Returns every problem found.
    pub fn new(
        def: WorkflowDef,
        agent_exists: &dyn Fn(&str) -> bool,
        max_nodes: usize,
    ) -> Result<Self, Vec<Problem>> {
        crate::validate_impl::validate(def, agent_exists, max_nodes)
    }

    pub fn def(&self) -> &WorkflowDef {
        &self.def
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn len(&self) -> usize {
        self.def.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.def.nodes.is_empty()
    }

    /// The node `idx` addresses; an instance's slot reads as its node.
    pub fn node(&self, idx: NodeIdx) -> &NodeDef {
        &self.def.nodes[crate::owner(idx) as usize]
    }

    pub fn idx(&self, id: &str) -> Option<NodeIdx> {
        self.index.get(id).copied()
    }

    pub fn parents(&self, idx: NodeIdx) -> &[NodeIdx] {
        &self.parents[idx as usize]
    }

    pub fn children(&self, idx: NodeIdx) -> &[NodeIdx] {
        &self.children[idx as usize]
    }

    /// Template references in the node's input (`run.input...` and
    /// `NODE.output...`); an instance's slot reads as its node.
    pub fn refs(&self, idx: NodeIdx) -> &[TemplateRef] {
        &self.refs[crate::owner(idx) as usize]
    }

    /// The node's compiled `when`, if it has one.
    pub fn condition(&self, idx: NodeIdx) -> Option<&Condition> {
        self.conditions.get(idx as usize)?.as_deref()
    }

    /// Every way `input` violates the workflow's `input_schema` (empty
    /// without one): a run start with any is a 422.
    pub fn input_problems(&self, input: &serde_json::Value) -> Vec<Problem> {
        self.input_schema
            .as_ref()
            .map(|s| s.problems(input))
            .unwrap_or_default()
    }

    /// Whether any node has a `when`.
    pub fn has_conditions(&self) -> bool {
        self.conditions.iter().any(Option::is_some)
    }

    /// The node's `for_each`, if it is a map node.
    pub fn for_each(&self, idx: NodeIdx) -> Option<&ForEach> {
        self.maps.get(idx as usize)?.as_ref()
    }

    /// The workflow's checked triggers, in definition order (a trigger's
    /// index is its place here).
    pub fn triggers(&self) -> &[crate::Trigger] {
        &self.triggers
    }

    /// The node's `wait`, if it is a wait node.
    pub fn wait(&self, idx: NodeIdx) -> Option<&WaitSpec> {
        self.waits.get(idx as usize)?.as_ref()
    }

    /// Whether deciding nodes may read facts (run id and input, ancestors'
    /// outputs): some node has a `when`, a `for_each` or a `wait` (its key
    /// is rendered when it begins to wait).
    pub fn needs_facts(&self) -> bool {
        self.has_conditions()
            || self.maps.iter().any(Option::is_some)
            || self.waits.iter().any(Option::is_some)
    }

    /// Nodes no other node depends on, in definition order: a run's
    /// output without an `output` template maps each to its output.
    pub fn leaves(&self) -> impl Iterator<Item = NodeIdx> + '_ {
        (0..self.len() as NodeIdx).filter(|i| self.children[*i as usize].is_empty())
    }

    /// Nodes without dependencies, in definition order.
    pub fn roots(&self) -> impl Iterator<Item = NodeIdx> + '_ {
        (0..self.len() as NodeIdx).filter(|i| self.parents[*i as usize].is_empty())
    }

    /// A topological order of all nodes.
    pub fn topo(&self) -> &[NodeIdx] {
        &self.topo
    }

    /// Every node reachable from `idx` through `children`, excluding `idx`.
    pub fn descendants(&self, idx: NodeIdx) -> Vec<NodeIdx> {
        let mut seen = vec![false; self.len()];
        let mut out = Vec::new();
        let mut stack = vec![idx];
        while let Some(n) = stack.pop() {
            for &c in self.children(n) {
                if !seen[c as usize] {
                    seen[c as usize] = true;
                    out.push(c);
                    stack.push(c);
                }
            }
        }
        out
    }

    /// The validated DAG from what validation computed (every per-node
    /// vector has one entry per node); the input schema is compiled here.
    pub(crate) fn from_parts(p: Parts) -> Self {
        let input_schema = p
            .def
            .input_schema
            .as_ref()
            .and_then(crate::schema::InputSchema::compile);
        Self {
            input_schema,
            def: p.def,
            index: p.index,
            parents: p.parents,
            children: p.children,
            refs: p.refs,
            conditions: p.conditions,
            maps: p.maps,
            waits: p.waits,
            triggers: p.triggers,
            topo: p.topo,
        }
    }
}

/// What validation computed for [`ValidatedDag::from_parts`].
pub(crate) struct Parts {
    pub(crate) def: WorkflowDef,
    pub(crate) index: HashMap<String, NodeIdx>,
    pub(crate) parents: Vec<Vec<NodeIdx>>,
    pub(crate) children: Vec<Vec<NodeIdx>>,
    pub(crate) refs: Vec<Vec<TemplateRef>>,
    pub(crate) conditions: Vec<Option<Arc<Condition>>>,
    pub(crate) maps: Vec<Option<ForEach>>,
    pub(crate) waits: Vec<Option<WaitSpec>>,
    pub(crate) triggers: Vec<crate::Trigger>,
    pub(crate) topo: Vec<NodeIdx>,
}

impl AgentDef {
    /// Everything wrong with this agent definition: a bad name or queue name,
    /// a runtime without its fields (`image` for docker, a non-empty `command`
    /// for process, a known `builtin` for builtin), a number outside its
    /// bound of [`crate::limits`] (timeout, retry, limits, rate limit),
    /// `network` other than `none`/`bridge`, a secret name that is not
    /// `^[A-Za-z_][A-Za-z0-9_]*$`, an `output_schema` that is not an object,
    /// or an `input_schema`/`output_schema` that is not a valid JSON Schema.
    pub fn problems(&self) -> Vec<Problem> {
        crate::validate_impl::agent_problems(self)
    }
}
