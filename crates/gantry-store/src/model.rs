//! Rows and records the store reads and writes.

use chrono::{DateTime, Utc};
use gantry_dag::{AgentDef, NodeIdx, NodeStatus, RunStatus, SkipReason, WorkflowDef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A registered agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRecord {
    #[serde(flatten)]
    pub def: AgentDef,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a workflow.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowRecord {
    pub id: i64,
    pub name: String,
    pub version: i32,
    pub definition: WorkflowDef,
    pub created_at: DateTime<Utc>,
}

/// A workflow name with its latest version, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowSummary {
    pub name: String,
    pub latest_version: i32,
    pub versions: i64,
    pub nodes: i64,
    pub updated_at: DateTime<Utc>,
}

/// What a queue delivers for one node: serialized as the Redis job payload.
/// The job id is [`Dispatch::job_id`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    pub run_id: Uuid,
    pub node: NodeIdx,
    pub queue: String,
    pub workflow_id: i64,
    pub plan_hash: String,
    /// Deliver after this many milliseconds (a retry), else now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// W3C trace context of the run, when tracing is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The node as it was queued, when the transition that queued it says
    /// so: the claim then decides on it without reading the node first
    /// (see [`crate::ClaimJob`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
}

/// A node's attempt and tries when it entered `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub attempt: u32,
    pub tries: u32,
}

impl Dispatch {
    /// The delivery of `node` of `head`'s run, on the queue its plan gives.
    pub fn of(
        head: &RunHead,
        plan: &gantry_dag::Plan,
        node: NodeIdx,
        delay_ms: Option<u64>,
        traceparent: Option<String>,
    ) -> Self {
        Self {
            run_id: head.id,
            node,
            queue: plan.node(node).queue.clone(),
            workflow_id: head.workflow_id,
            plan_hash: head.plan_hash.clone(),
            delay_ms,
            traceparent,
            queued: None,
        }
    }

    /// `RUN_ID:NODE_IDX`: one job per node, whatever the attempt.
    pub fn job_id(&self) -> String {
        format!("{}:{}", self.run_id, self.node)
    }
}

/// The run-level row the state machine needs, locked `FOR UPDATE`.
#[derive(Debug, Clone)]
pub struct RunHead {
    pub id: Uuid,
    pub workflow_id: i64,
    pub plan_hash: String,
    pub status: RunStatus,
    pub remaining: u32,
    pub failed: u32,
    pub created_at: DateTime<Utc>,
}

/// A new run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub workflow: &'a WorkflowRecord,
    pub dag: &'a gantry_dag::ValidatedDag,
    pub plan: &'a gantry_dag::Plan,
    pub input: &'a Value,
    /// `(Idempotency-Key, SHA-256 of the canonical request)`.
    pub idempotency: Option<(&'a str, &'a str)>,
    pub traceparent: Option<&'a str>,
    /// Checked by the caller; a child run takes its parent's instead.
    pub tags: &'a gantry_dag::Tags,
}

/// Where a child run hangs: its parent's run and node slot (an instance's
/// slot for a `for_each` over a workflow), and its nesting depth (a
/// top-level run is at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentRef {
    pub run: Uuid,
    pub slot: NodeIdx,
    pub depth: u32,
}

/// Result of [`crate::Store::create_run`].
#[derive(Debug, Clone)]
pub enum Created {
    /// A new run; deliver these jobs after the call returns.
    New(RunSummary, Vec<Dispatch>),
    /// The idempotency key was seen with the same request.
    Existing(RunSummary),
    /// The idempotency key was seen with a different request.
    Conflict,
}

/// A run as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Its tags (SPEC 4.1); a child run's are its parent's.
    pub tags: gantry_dag::Tags,
}

/// A run with all of its nodes.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    pub input: Value,
    /// Set when the run succeeded (SPEC 2.1, workflow `output`).
    pub output: Option<Value>,
    /// Set on a child run: the run and node that started it.
    pub parent: Option<ParentView>,
    /// The run this one re-runs.
    pub rerun_of: Option<Uuid>,
    /// The runs that re-run this one, oldest first.
    pub reruns: Vec<Uuid>,
    pub updated_at: DateTime<Utc>,
    pub nodes: Vec<NodeSummary>,
}

/// Where a child run was started: its parent run, the `workflow` node, and
/// the instance index when that node has a `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentView {
    pub run: Uuid,
    pub node: String,
    pub index: Option<u32>,
}

/// One node of a run.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    pub id: String,
    pub agent: String,
    pub status: NodeStatus,
    /// Why the node was skipped; `null` unless it was.
    pub skip_reason: Option<SkipReason>,
    pub attempts: u32,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A map node's instances by status, with `total` (absent on other
    /// nodes; `{"total": 0}` before it expands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<crate::InstanceCounts>,
    /// While a gate with an approval timeout waits: when it is decided by
    /// it, if nobody answers first (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_deadline: Option<DateTime<Utc>>,
    /// Who decided the node's approval gate: `api` or `timeout` (absent
    /// until decided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_decided_by: Option<String>,
    /// A `wait` node's event name and key, its deadline and the event that
    /// matched it (absent until it begins to wait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<crate::WaitView>,
    /// Kept, with its output and no attempt, from the run this one re-runs.
    pub reused: bool,
}

/// One node with every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct NodeDetail {
    #[serde(flatten)]
    pub node: NodeSummary,
    pub run_id: Uuid,
    pub depends_on: Vec<String>,
    pub attempts_detail: Vec<AttemptRecord>,
    /// A `workflow` node's child runs, in instance order.
    pub child_runs: Vec<Uuid>,
}

/// One attempt of a node.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub worker: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log_tail: Option<String>,
}

/// Filter for listing runs, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub workflow: Option<String>,
    /// Only the child runs of this run.
    pub parent: Option<Uuid>,
    pub status: Option<RunStatus>,
    /// Only runs carrying every one of these `(key, value)` tags.
    pub tags: Vec<(String, String)>,
    pub limit: u32,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

/// A node a worker took from the queue and now holds under lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub run_id: Uuid,
    pub node: NodeIdx,
    pub attempt: u32,
    pub workflow_id: i64,
    pub plan_hash: String,
    /// Shared by the claims of one run (a map's instances may be many).
    pub run_input: std::sync::Arc<Value>,
    /// An instance's item (`None` for a node).
    pub item: Option<Value>,
    /// Seconds from the node becoming ready (queued, or its retry due) to
    /// this claim, by the database clock.
    pub waited_s: Option<f64>,
}

/// What a worker reports for one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub run_id: Uuid,
    pub node: NodeIdx,
    pub attempt: u32,
    pub outcome: gantry_dag::Outcome,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub log_tail: Option<String>,
}

/// A recorded attempt result the coordinator has not applied yet.
#[derive(Debug, Clone, Copy)]
pub struct PendingResult {
    pub node: NodeIdx,
    pub attempt: u32,
    pub outcome: gantry_dag::Outcome,
}

impl PendingResult {
    /// The result `r` as the state machine sees it.
    pub fn of(r: &AttemptResult) -> Self {
        Self {
            node: r.node,
            attempt: r.attempt,
            outcome: r.outcome,
        }
    }

    /// The event that applies it.
    pub fn event(&self) -> gantry_dag::Event {
        match self.outcome {
            gantry_dag::Outcome::Lost => gantry_dag::Event::LeaseExpired {
                node: self.node,
                attempt: self.attempt,
            },
            outcome => gantry_dag::Event::Finished {
                node: self.node,
                attempt: self.attempt,
                outcome,
            },
        }
    }
}

/// Start and finish times of one attempt, for benchmarks.
#[derive(Debug, Clone)]
pub struct AttemptTimes {
    pub node: NodeIdx,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
