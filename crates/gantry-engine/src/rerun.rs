//! Re-running a finished run from chosen nodes (SPEC section 4): a new run
//! of the same workflow version, with the current agents, in which every
//! node neither chosen nor downstream of a chosen one that succeeded keeps
//! its output (`reused`, no attempt) and the rest run again, with the old
//! input or a new one.

use crate::after::Applied;
use crate::{Engine, Error, Result};
use gantry_dag::{rerun_state, NodeIdx, NodeStatus, Problem};
use gantry_store::{NewRun, Rerun, RerunRefused, RunSummary};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

impl Engine {
    /// Re-run `run` from the nodes `from` names (each with everything
    /// downstream of it), with `input` or the old run's. `Conflict` while
    /// the old run is running; `Invalid` for an unknown node or an input
    /// the workflow's schema refuses.
    pub async fn rerun(
        &self,
        run: Uuid,
        from: &[String],
        input: Option<Value>,
    ) -> Result<RunSummary> {
        let old = self
            .reads()
            .get_run(run)
            .await?
            .ok_or(Error::RunNotFound(run))?;
        let (running, nodes) = self
            .reads()
            .rerun_source(run)
            .await?
            .ok_or(Error::RunNotFound(run))?;
        if running {
            return Err(Error::Conflict(format!(
                "run {run} is still running; re-run it once it ends"
            )));
        }
        let workflow = self
            .reads()
            .get_workflow(&old.run.workflow, Some(old.run.version))
            .await?
            .ok_or_else(|| Error::Corrupt(format!("the workflow of run {run} is missing")))?;
        let dag = self.dag(workflow.id).await?;
        let mut problems = Vec::new();
        if from.is_empty() {
            problems.push(Problem {
                field: "from".to_owned(),
                code: "missing_field",
                message: "from must name at least one node to run again".to_owned(),
            });
        }
        let mut idxs: Vec<NodeIdx> = Vec::with_capacity(from.len());
        for (i, id) in from.iter().enumerate() {
            match dag.idx(id) {
                Some(idx) => idxs.push(idx),
                None => problems.push(Problem {
                    field: format!("from[{i}]"),
                    code: "unknown_node",
                    message: format!("workflow {:?} has no node {id:?}", dag.name()),
                }),
            }
        }
        let input = input.unwrap_or(old.input);
        problems.extend(dag.input_problems(&input));
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let plan = self.resolve_plan(&dag).await?.map_err(Error::Invalid)?;
        let mut statuses = vec![NodeStatus::Pending; dag.len()];
        let mut outputs: HashMap<NodeIdx, Value> = HashMap::new();
        for (idx, status, output) in nodes {
            if let Some(s) = statuses.get_mut(idx as usize) {
                *s = status;
            }
            if let Some(o) = output {
                outputs.insert(idx, o);
            }
        }
        let (state, reused) = rerun_state(&dag, &statuses, &idxs);
        outputs.retain(|idx, _| reused.get(*idx as usize).copied().unwrap_or(false));
        // A reused node that stored no output (none was recorded) reads as null.
        for (i, kept) in reused.iter().enumerate() {
            if *kept {
                outputs.entry(i as NodeIdx).or_insert(Value::Null);
            }
        }
        let rerun = Rerun {
            of: run,
            state,
            outputs,
        };
        let tags = old.run.tags.clone();
        let new = NewRun {
            workflow: &workflow,
            dag: &dag,
            plan: &plan,
            input: &input,
            idempotency: None,
            traceparent: None,
            tags: &tags,
        };
        match self.store.create_rerun(new, &rerun).await? {
            Ok((summary, dispatches)) => {
                let mut after = Applied {
                    dispatches,
                    ..Applied::default()
                };
                after
                    .observed
                    .note_ended_at_start(&workflow.name, summary.status);
                after.deliver(self).await;
                Ok(summary)
            }
            Err(RerunRefused::NotFound) => Err(Error::RunNotFound(run)),
            Err(RerunRefused::Running) => Err(Error::Conflict(format!(
                "run {run} is still running; re-run it once it ends"
            ))),
        }
    }
}
