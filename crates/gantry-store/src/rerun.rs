//! Re-runs (SPEC section 4, migration 0019): a new run of a finished run's
//! workflow version in which the nodes `gantry_dag::rerun_state` keeps are
//! copied with their outputs (`reused`, no attempt) and the rest start
//! again through `Event::Retry`, in one transaction.

use crate::rows::u32_of;
use crate::{Dispatch, NewRun, Result, RunSummary, RunTx, Store};
use gantry_dag::{Fact, Facts, NodeIdx, NodeStatus, RunState};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// What a re-run starts from.
#[derive(Debug, Clone)]
pub struct Rerun {
    /// The old run.
    pub of: Uuid,
    /// The new run's state before `Event::Retry` (`gantry_dag::rerun_state`).
    pub state: RunState,
    /// The outputs of the reused nodes.
    pub outputs: HashMap<NodeIdx, Value>,
}

impl Rerun {
    /// Reused nodes are facts that succeeded, with their outputs.
    pub(crate) fn fill_facts(&self, facts: &mut Facts) {
        for (idx, output) in &self.outputs {
            if let Some(f) = facts.nodes.get_mut(idx) {
                *f = Fact {
                    status: NodeStatus::Succeeded,
                    output: output.clone(),
                    error: None,
                };
            }
        }
    }
}

/// Why a re-run could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RerunRefused {
    NotFound,
    /// The old run is still running.
    Running,
}

impl crate::Reads {
    /// The status and output of each definition node of `run` (by index),
    /// and whether the run is still running; `None` for no such run.
    pub async fn rerun_source(
        &self,
        run: Uuid,
    ) -> Result<Option<(bool, Vec<(NodeIdx, NodeStatus, Option<Value>)>)>> {
        let status: Option<(String,)> = sqlx::query_as("SELECT status FROM runs WHERE id = $1")
            .bind(run)
            .fetch_optional(&self.pool)
            .await?;
        let Some((status,)) = status else {
            return Ok(None);
        };
        let rows: Vec<(i32, String, Option<Value>)> = sqlx::query_as(
            "SELECT idx, status, output FROM nodes WHERE run_id = $1 AND idx < $2 ORDER BY idx",
        )
        .bind(run)
        .bind(crate::rows::i32_of(gantry_dag::FIRST_SLOT))
        .fetch_all(&self.pool)
        .await?;
        let nodes = rows
            .into_iter()
            .map(|(i, s, o)| Ok((u32_of(i), crate::rows::node_status(&s)?, o)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((status == "running", nodes)))
    }
}

impl Store {
    /// Create the re-run `rerun` describes (the caller built it from
    /// [`crate::Reads::rerun_source`]); refused when the old run is running
    /// again or gone by now.
    pub async fn create_rerun(
        &self,
        new: NewRun<'_>,
        rerun: &Rerun,
    ) -> Result<std::result::Result<(RunSummary, Vec<Dispatch>), RerunRefused>> {
        let mut tx = RunTx::new(self.pool.begin().await?);
        let old: Option<(String,)> =
            sqlx::query_as("SELECT status FROM runs WHERE id = $1 FOR SHARE")
                .bind(rerun.of)
                .fetch_optional(&mut *tx.tx)
                .await?;
        match old.as_ref().map(|(s,)| s.as_str()) {
            None => return Ok(Err(RerunRefused::NotFound)),
            Some("running") => return Ok(Err(RerunRefused::Running)),
            Some(_) => {}
        }
        let created = tx.insert_run(&new, None, Some(rerun)).await?;
        tx.commit().await?;
        Ok(Ok(created.ok_or_else(|| crate::Error::Corrupt {
            what: "re-run",
            reason: "a re-run without an idempotency key conflicted".to_owned(),
        })?))
    }
}
