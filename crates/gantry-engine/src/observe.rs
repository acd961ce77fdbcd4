//! Metrics of applied transitions, emitted after their transaction commits
//! (a rolled-back transition is never counted): runs that ended and
//! retries that were scheduled.

use gantry_dag::{Action, Plan, ValidatedDag};
use gantry_store::RunHead;
use gantry_telemetry as t;

/// What one run's transition contributes to the metrics.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// (workflow, status, seconds since the run was created)
    finished: Vec<(String, &'static str, f64)>,
    /// agent names, one per scheduled retry
    retries: Vec<String>,
}

impl Observed {
    pub(crate) fn note(
        &mut self,
        head: &RunHead,
        dag: &ValidatedDag,
        plan: &Plan,
        actions: &[Action],
    ) {
        for action in actions {
            match *action {
                Action::FinishRun { status } => {
                    let secs = (chrono::Utc::now() - head.created_at)
                        .to_std()
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.finished
                        .push((dag.def().name.clone(), status.as_str(), secs));
                }
                Action::Schedule { node, .. } => {
                    self.retries.push(plan.agent(node).name.clone());
                }
                _ => {}
            }
        }
    }

    /// A run that ended in the transaction that created it (every root
    /// skipped, a map over no items): its `Event::Begin` finished it.
    pub(crate) fn note_ended_at_start(&mut self, workflow: &str, status: gantry_dag::RunStatus) {
        if status.is_terminal() {
            self.finished
                .push((workflow.to_owned(), status.as_str(), 0.0));
        }
    }

    pub(crate) fn emit(self) {
        for (workflow, status, secs) in self.finished {
            metrics::histogram!(t::RUN_DURATION, "workflow" => workflow.clone()).record(secs);
            metrics::counter!(t::RUNS_TOTAL, "workflow" => workflow, "status" => status)
                .increment(1);
        }
        for agent in self.retries {
            metrics::counter!(t::AGENT_RETRIES, "agent" => agent).increment(1);
        }
    }
}
