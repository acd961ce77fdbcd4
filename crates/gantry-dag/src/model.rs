//! Serde shapes of workflow and agent definitions (SPEC sections 2 and 3).
//! Parsing accepts any well-formed JSON of the right shape; [`crate::ValidatedDag`]
//! and [`AgentDef::problems`] decide whether it is a good definition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workflow definition as submitted by a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A JSON Schema every run input must satisfy (422 at run start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The run's output, a template rendered when the run succeeds; without
    /// it, an object from each leaf node's id to its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// What starts runs besides the API: cron schedules and events (SPEC
    /// section 9). A new version replaces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerDef>,
    /// Days a finished run of this workflow is kept (0: for ever; without
    /// it, `GANTRY_RETENTION_DAYS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    pub nodes: Vec<NodeDef>,
}

/// One trigger of a workflow: exactly one of `cron` (with `timezone` and
/// `input`) and `event` (with `filter`); see [`crate::Trigger`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// Five cron fields, or six with a leading seconds field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An IANA time zone name (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The input of the runs a cron trigger starts (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The event name an event trigger starts a run for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// A CEL expression over `event` an event must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    pub id: String,
    /// The agent an `agent` node runs; empty for the other kinds (a node
    /// has exactly one of `agent`, `workflow` and `wait`, see [`NodeKind`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// The workflow a `workflow` node starts as a child run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The child workflow's version; without it, the latest when the node
    /// starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// A `wait` node's event (SPEC 2.1 and 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Input template; `{}` when absent.
    #[serde(default = "empty_object")]
    pub input: Value,
    /// Overrides the agent's retry policy as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Overrides the agent's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// Decides, once every parent has finished, whether the node runs.
    #[serde(default, skip_serializing_if = "TriggerRule::is_default")]
    pub trigger_rule: TriggerRule,
    /// A CEL condition checked after the trigger rule passes; false skips
    /// the node (see [`crate::Condition`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A template resolving to an array when the node becomes ready: the
    /// node then runs once per item (see [`crate::ForEach`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Longest `for_each` array accepted (default 1,000, at most 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Most instances queued or running at once (default: no bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u64>,
    /// Overrides the agent's approval timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_s: Option<u64>,
    /// Overrides what the agent's approval timeout decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_approval_timeout: Option<OnApprovalTimeout>,
}

/// What a node does once it is decided to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind<'a> {
    /// Run an agent (a job for a worker).
    Agent(&'a str),
    /// Start a child run of a workflow.
    Workflow { name: &'a str, version: Option<u32> },
    /// Wait for an event.
    Wait(&'a WaitDef),
}

/// What a `wait` node waits for: an event with this name and rendered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDef {
    pub event: String,
    /// A template rendered when the node begins to wait (`{{run.id}}`);
    /// empty by default, like an event's key.
    #[serde(default)]
    pub key: String,
    /// How long to wait (default 86,400 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "OnTimeout::is_default")]
    pub on_timeout: OnTimeout,
}

/// What a `wait` node does when its `timeout_s` runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Fail with `timed out waiting for event NAME`.
    #[default]
    Fail,
    /// Skip (`skip_reason` `timed_out`).
    Skip,
}

impl OnTimeout {
    fn is_default(&self) -> bool {
        *self == Self::Fail
    }
}

impl NodeDef {
    /// The node's kind. Validation guarantees exactly one of `agent`,
    /// `workflow` and `wait` on a node of a [`crate::ValidatedDag`].
    pub fn kind(&self) -> NodeKind<'_> {
        match (&self.workflow, &self.wait) {
            (Some(name), _) => NodeKind::Workflow {
                name,
                version: self.version,
            },
            (None, Some(wait)) => NodeKind::Wait(wait),
            (None, None) => NodeKind::Agent(&self.agent),
        }
    }
}

/// When a node whose parents have all finished runs (SPEC section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every parent succeeded.
    #[default]
    AllSucceeded,
    /// No parent failed (skipped parents are fine).
    NoneFailed,
    /// Always.
    AllDone,
    /// At least one parent failed.
    OneFailed,
}

impl TriggerRule {
    fn is_default(&self) -> bool {
        *self == Self::AllSucceeded
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Retry policy of an agent or a node. `max_attempts` counts the first try.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay_ms: 1000,
            max_delay_ms: 60_000,
            multiplier: 2.0,
        }
    }
}

/// Which runtime executes an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    Docker,
    Process,
    Builtin,
}

/// Whether a ready node must be approved before it is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    #[default]
    Auto,
    Required,
}

/// What an approval gate nobody answered within its `approval_timeout_s`
/// decides (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnApprovalTimeout {
    #[default]
    Reject,
    Approve,
}

impl OnApprovalTimeout {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Resource limits of one agent execution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub memory_mb: u64,
    pub cpus: f64,
    pub pids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 256,
            cpus: 1.0,
            pids: 128,
        }
    }
}

/// An agent definition (SPEC section 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    pub name: String,
    pub runtime: Runtime,
    /// `docker`: the image to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `docker`: optional command; `process`: the argv to execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `builtin`: one of `noop`, `echo`, `sleep`, `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    #[serde(default = "default_queue")]
    pub queue: String,
    #[serde(default)]
    pub approval: Approval,
    /// A gate nobody answers within this many seconds is decided by
    /// `on_approval_timeout`; without it, a gate waits until answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "OnApprovalTimeout::is_default")]
    pub on_approval_timeout: OnApprovalTimeout,
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default = "default_network")]
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Executions per second each worker allows for this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A per-worker rate limit: `per_second` sustained, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_burst() -> u32 {
    1
}

fn default_queue() -> String {
    "default".to_owned()
}

fn default_timeout_s() -> u64 {
    300
}

fn default_network() -> String {
    "none".to_owned()
}

/// The builtin agents every worker carries.
pub const BUILTINS: [&str; 4] = ["noop", "echo", "sleep", "fail"];
