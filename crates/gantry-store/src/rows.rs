//! Row shapes shared by several queries, and conversions between Postgres
//! integers and the unsigned counters of the model.

use crate::{Error, NodeSummary, Result, RunSummary};
use chrono::{DateTime, Utc};
use gantry_dag::{NodeStatus, RunStatus, SkipReason};
use serde_json::Value;
use std::str::FromStr;
use uuid::Uuid;

// Migration 0013's partial unique index on node ids names the first
// instance slot as a literal.
const _: () = assert!(gantry_dag::FIRST_SLOT == 131_072);

/// Columns of [`RunSummaryRow`], in a `runs` query.
pub(crate) const RUN_SUMMARY_COLS: &str =
    "id, workflow_name, workflow_version, status, created_at, finished_at, tags";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunSummaryRow {
    pub(crate) id: Uuid,
    pub(crate) workflow_name: String,
    pub(crate) workflow_version: i32,
    pub(crate) status: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) tags: sqlx::types::Json<gantry_dag::Tags>,
}

impl RunSummaryRow {
    pub(crate) fn into_summary(self) -> Result<RunSummary> {
        Ok(RunSummary {
            id: self.id,
            workflow: self.workflow_name,
            version: self.workflow_version,
            status: run_status(&self.status)?,
            created_at: self.created_at,
            finished_at: self.finished_at,
            tags: self.tags.0,
        })
    }
}

/// Columns of [`NodeRow`], in a `nodes` query.
pub(crate) const NODE_COLS: &str = "idx, node_id, agent, status, skip_reason, attempt, output, \
     error, queued_at, started_at, finished_at, items, approval_deadline, approval_decided_by, \
     reused";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NodeRow {
    pub(crate) idx: i32,
    pub(crate) node_id: String,
    pub(crate) agent: String,
    pub(crate) status: String,
    pub(crate) skip_reason: Option<String>,
    pub(crate) attempt: i32,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<String>,
    pub(crate) queued_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// A map node's instance count, once it expanded.
    pub(crate) items: Option<i32>,
    pub(crate) approval_deadline: Option<DateTime<Utc>>,
    pub(crate) approval_decided_by: Option<String>,
    /// Kept from the run it re-runs (migration 0019).
    pub(crate) reused: bool,
}

impl NodeRow {
    pub(crate) fn into_summary(self) -> Result<NodeSummary> {
        let status = node_status(&self.status)?;
        Ok(NodeSummary {
            id: self.node_id,
            agent: self.agent,
            status,
            skip_reason: self.skip_reason.as_deref().and_then(SkipReason::parse),
            attempts: u32_of(self.attempt),
            output: self.output,
            error: self.error,
            queued_at: self.queued_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            instances: None,
            // Only a gate still waiting has a deadline to show.
            approval_deadline: self
                .approval_deadline
                .filter(|_| status == gantry_dag::NodeStatus::WaitingApproval),
            approval_decided_by: self.approval_decided_by,
            wait: None,
            reused: self.reused,
        })
    }
}

pub(crate) fn run_status(s: &str) -> Result<RunStatus> {
    RunStatus::from_str(s).map_err(|e| Error::Corrupt {
        what: "run status",
        reason: e.to_string(),
    })
}

pub(crate) fn node_status(s: &str) -> Result<NodeStatus> {
    NodeStatus::from_str(s).map_err(|e| Error::Corrupt {
        what: "node status",
        reason: e.to_string(),
    })
}

/// Counters and indexes are `u32` in the model and `integer` in Postgres;
/// neither side ever comes near 2^31.
pub(crate) fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub(crate) fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// A `Duration` as whole milliseconds for SQL interval arithmetic.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
