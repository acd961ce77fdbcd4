//! Approval gates decided, by a person or by the gate's approval timeout:
//! the decision is applied like any event, and who made it is recorded in
//! the same transaction (SPEC section 3).

use crate::after::Applied;
use crate::{Engine, Error, Result};
use gantry_dag::{approval_timed_out, Decider, Event, NodeIdx, RunStatus};
use uuid::Uuid;

/// What decides a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A person approved it.
    Approve,
    /// A person rejected it.
    Reject,
    /// Its approval timeout ran out: its node's `on_approval_timeout`.
    TimedOut,
}

impl Engine {
    /// Decide the gate of `slot` of `run` under the run's lock and record
    /// who decided it, in one transaction.
    pub(crate) async fn decide_gate(
        &self,
        run: Uuid,
        slot: NodeIdx,
        decision: Decision,
    ) -> Result<RunStatus> {
        let mut tx = self.store.begin().await?;
        let head = tx.lock_run(run).await?.ok_or(Error::RunNotFound(run))?;
        let (event, by) = match decision {
            Decision::Approve => (Event::Approved { node: slot }, Decider::Api),
            Decision::Reject => (Event::Rejected { node: slot }, Decider::Api),
            Decision::TimedOut => {
                let plan = self.plan(&head.plan_hash).await?;
                (approval_timed_out(&plan, slot), Decider::Timeout)
            }
        };
        let mut out = Applied::default();
        let status = self.apply_locked(&mut tx, &head, event, &mut out).await?;
        tx.set_decided_by(run, slot, by).await?;
        tx.commit().await?;
        out.deliver(self).await;
        Ok(status)
    }

    /// Decide at most `limit` gates past their approval deadline, each as
    /// its node's `on_approval_timeout` says, recorded as decided by
    /// `timeout`. A gate answered meanwhile is left alone. Returns how many
    /// were decided; a gate that cannot be decided is logged and the others
    /// go on.
    pub async fn expire_approvals(&self, limit: i64) -> Result<usize> {
        let mut decided = 0;
        for (run, slot) in self.reads().approvals_due(limit).await? {
            match self.decide_gate(run, slot, Decision::TimedOut).await {
                Ok(_) => decided += 1,
                // Answered, or its run ended, since it was found.
                Err(Error::Conflict(_) | Error::RunNotFound(_)) => {}
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    tracing::warn!(%run, slot, error = %e, "cannot decide an approval that timed out");
                }
            }
        }
        Ok(decided)
    }
}
