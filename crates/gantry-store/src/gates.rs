//! Approval deadlines (SPEC section 3): a gate parked with an approval
//! timeout gets its deadline in the transaction that parked it; the
//! reconciler finds the gates past theirs; who decided a gate is kept.

use crate::rows::{i32_of, u32_of};
use crate::{Reads, Result, RunTx};
use gantry_dag::{Action, Decider, NodeIdx, Plan};
use uuid::Uuid;

impl RunTx<'_> {
    /// Give each gate `actions` park a deadline of now + its node's
    /// `approval_timeout_s`; gates without one wait until answered. One
    /// statement, made only when such a gate was parked.
    pub(crate) async fn set_approval_deadlines(
        &mut self,
        run: Uuid,
        plan: &Plan,
        actions: &[Action],
    ) -> Result<()> {
        let (idxs, secs): (Vec<i32>, Vec<i64>) = actions
            .iter()
            .filter_map(|a| match *a {
                Action::Park { node } => plan
                    .node(node)
                    .approval_timeout_s
                    .map(|s| (i32_of(node), i64::try_from(s).unwrap_or(i64::MAX))),
                _ => None,
            })
            .unzip();
        if idxs.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE nodes n
             SET approval_deadline = clock_timestamp() + t.s * interval '1 second',
                 approval_decided_by = NULL
             FROM unnest($2::int[], $3::int8[]) AS t(idx, s)
             WHERE n.run_id = $1 AND n.idx = t.idx",
        )
        .bind(run)
        .bind(&idxs)
        .bind(&secs)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Record who decided the gate of `slot` of `run`.
    pub async fn set_decided_by(&mut self, run: Uuid, slot: NodeIdx, by: Decider) -> Result<()> {
        sqlx::query("UPDATE nodes SET approval_decided_by = $3 WHERE run_id = $1 AND idx = $2")
            .bind(run)
            .bind(i32_of(slot))
            .bind(by.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Reads {
    /// At most `limit` gates still waiting past their approval deadline,
    /// oldest deadline first, as `(run, slot)`.
    pub async fn approvals_due(&self, limit: i64) -> Result<Vec<(Uuid, NodeIdx)>> {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(
            "SELECT run_id, idx FROM nodes
             WHERE status = 'waiting_approval' AND approval_deadline IS NOT NULL
               AND approval_deadline < clock_timestamp()
             ORDER BY approval_deadline
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(r, i)| (r, u32_of(i))).collect())
    }
}
