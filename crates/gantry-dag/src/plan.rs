//! A run's plan: the agent definitions and per-node policies resolved when the
//! run starts, so a run keeps behaving the same while agents are re-registered.

use crate::model::{AgentDef, OnApprovalTimeout, RetryPolicy};
use crate::validate::{Problem, ValidatedDag};
use crate::NodeIdx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resolved policy of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlan {
    pub agent: String,
    pub queue: String,
    /// The node's retry policy, else the agent's.
    pub retry: RetryPolicy,
    /// The node's timeout, else the agent's.
    pub timeout_s: u64,
    /// The agent requires approval.
    pub approval: bool,
    /// The node's approval timeout, else the agent's (`None`: a gate waits
    /// until answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_s: Option<u64>,
    /// What that timeout decides: the node's, else the agent's.
    #[serde(default, skip_serializing_if = "OnApprovalTimeout::is_default")]
    pub on_approval_timeout: OnApprovalTimeout,
}

/// The resolved plan of a run. Immutable; stored once per distinct content
/// (see [`Plan::hash_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub agents: BTreeMap<String, AgentDef>,
    pub nodes: Vec<NodePlan>,
}

impl Plan {
    /// Resolve every node of `dag` against `agent` lookups. Unknown agents are
    /// problems (the agent may have been deleted since registration).
    pub fn resolve(
        dag: &ValidatedDag,
        agent: &dyn Fn(&str) -> Option<AgentDef>,
    ) -> Result<Self, Vec<Problem>> {
        let mut agents = BTreeMap::new();
        let mut nodes = Vec::with_capacity(dag.len());
        let mut problems = Vec::new();
        for (i, n) in dag.def().nodes.iter().enumerate() {
            if n.workflow.is_some() || n.wait.is_some() {
                // A child run or a wait: no agent, no queue (a child's
                // nodes have their own plans).
                nodes.push(NodePlan {
                    agent: String::new(),
                    queue: String::new(),
                    retry: RetryPolicy {
                        max_attempts: 1,
                        ..RetryPolicy::default()
                    },
                    timeout_s: 0,
                    approval: false,
                    approval_timeout_s: None,
                    on_approval_timeout: OnApprovalTimeout::default(),
                });
                continue;
            }
            let def = match agents.get(&n.agent) {
                Some(d) => Some(d),
                None => agent(&n.agent).map(|d| &*agents.entry(n.agent.clone()).or_insert(d)),
            };
            let Some(def) = def else {
                problems.push(Problem {
                    field: format!("nodes[{i}].agent"),
                    code: "unknown_agent",
                    message: format!("node {:?} uses unknown agent {:?}", n.id, n.agent),
                });
                continue;
            };
            nodes.push(NodePlan {
                agent: n.agent.clone(),
                queue: def.queue.clone(),
                retry: n.retry.unwrap_or(def.retry),
                timeout_s: n.timeout_s.unwrap_or(def.timeout_s),
                approval: def.approval == crate::Approval::Required,
                approval_timeout_s: n.approval_timeout_s.or(def.approval_timeout_s),
                on_approval_timeout: n.on_approval_timeout.unwrap_or(def.on_approval_timeout),
            });
        }
        if problems.is_empty() {
            Ok(Self { agents, nodes })
        } else {
            Err(problems)
        }
    }

    /// The plan of the node `idx` addresses (an instance's slot reads as
    /// its node: instances share their node's policies).
    pub fn node(&self, idx: NodeIdx) -> &NodePlan {
        &self.nodes[crate::owner(idx) as usize]
    }

    /// The agent of an agent node (panics on a `workflow` node, which
    /// never reaches a worker).
    pub fn agent(&self, idx: NodeIdx) -> &AgentDef {
        &self.agents[&self.node(idx).agent]
    }

    /// Canonical JSON of the plan; the store keys plans by its SHA-256.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("plan serializes")
    }
}
