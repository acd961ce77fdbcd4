//! Rows of `for_each` instances (migration 0009): inserting a map node's
//! instances when it expands, its output or error when it finishes, and
//! the reads of the API (counts by status, the paged list).

use crate::rows::{i32_of, node_status, u32_of};
use crate::{Reads, Result, RunTx};
use gantry_dag::{
    instance_slot, Expansion, NodeFailure, NodeIdx, NodeStatus, Plan, RunState, ValidatedDag,
    FIRST_SLOT,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One instance of a map node, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceSummary {
    pub index: u32,
    pub item: Value,
    pub status: NodeStatus,
    pub attempts: u32,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The child run of an instance of a `for_each` over a workflow.
    pub child_run: Option<Uuid>,
    /// A waiting gate's approval deadline, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// Who decided the instance's gate: `api` or `timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_decided_by: Option<String>,
}

/// A map node's instances by status, with `total`.
pub type InstanceCounts = BTreeMap<String, u64>;

impl RunTx<'_> {
    /// Insert the instances of each expansion: item `i` at its slot, named
    /// `NODE[i]`, ready for the first `queued` (queued, or waiting for
    /// approval when the expansion is `parked`), pending after.
    pub(crate) async fn insert_instances(
        &mut self,
        run: Uuid,
        dag: &ValidatedDag,
        plan: &Plan,
        expansions: &[Expansion],
    ) -> Result<()> {
        for e in expansions {
            if e.items.is_empty() {
                continue;
            }
            let id = &dag.node(e.node).id;
            let p = plan.node(e.node);
            let n = e.items.len();
            let mut idxs = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(n);
            let mut queued = Vec::with_capacity(n);
            for i in 0..u32::try_from(n).unwrap_or(u32::MAX) {
                idxs.push(i32_of(instance_slot(e.node, i)));
                ids.push(format!("{id}[{i}]"));
                queued.push(i < e.queued);
            }
            let items: Vec<&Value> = e.items.iter().collect();
            let ready = if e.parked {
                NodeStatus::WaitingApproval
            } else {
                NodeStatus::Queued
            };
            sqlx::query(
                "INSERT INTO nodes (run_id, idx, node_id, agent, queue, status, item, queued_at)
                 SELECT $1, t.idx, t.node_id, $5, $6,
                        CASE WHEN t.queued THEN $8 ELSE 'pending' END, t.item,
                        CASE WHEN t.queued THEN clock_timestamp() END
                 FROM unnest($2::int[], $3::text[], $4::jsonb[], $7::bool[])
                      AS t(idx, node_id, item, queued)",
            )
            .bind(run)
            .bind(&idxs)
            .bind(&ids)
            .bind(&items)
            .bind(&p.agent)
            .bind(&p.queue)
            .bind(&queued)
            .bind(ready.as_str())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Map nodes among `changed` that just finished: a succeeded one's
    /// output is its instances' outputs in item order; a node failed by an
    /// instance names the instance's error.
    pub(crate) async fn finish_maps(
        &mut self,
        run: Uuid,
        dag: &ValidatedDag,
        state: &RunState,
        changed: &[NodeIdx],
        failures: &[(NodeIdx, NodeFailure)],
    ) -> Result<()> {
        for &i in changed {
            let Some(map) = dag.for_each(i).and(state.nodes.get(&i)).and_then(|s| {
                (s.status == NodeStatus::Succeeded)
                    .then_some(s.map)
                    .flatten()
            }) else {
                continue;
            };
            sqlx::query(
                "UPDATE nodes SET output = COALESCE(
                     (SELECT jsonb_agg(i.output ORDER BY i.idx) FROM nodes i
                      WHERE i.run_id = $1 AND i.idx >= $3 AND i.idx < $4),
                     '[]'::jsonb)
                 WHERE run_id = $1 AND idx = $2",
            )
            .bind(run)
            .bind(i32_of(i))
            .bind(i32_of(instance_slot(i, 0)))
            .bind(i32_of(instance_slot(i, map.items)))
            .execute(&mut *self.tx)
            .await?;
        }
        for (i, why) in failures {
            let NodeFailure::Instance { index } = why else {
                continue;
            };
            sqlx::query(
                "UPDATE nodes m
                 SET error = m.error || ': ' || COALESCE(i.error, 'no error recorded')
                 FROM nodes i
                 WHERE m.run_id = $1 AND m.idx = $2 AND i.run_id = $1 AND i.idx = $3",
            )
            .bind(run)
            .bind(i32_of(*i))
            .bind(i32_of(instance_slot(*i, *index)))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    idx: i32,
    item: Option<Value>,
    status: String,
    attempt: i32,
    output: Option<Value>,
    error: Option<String>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    child_run: Option<Uuid>,
    approval_deadline: Option<chrono::DateTime<chrono::Utc>>,
    approval_decided_by: Option<String>,
}

impl Reads {
    /// The index of `node_id` in `run` when it is a `for_each` node.
    pub async fn map_node(&self, run: Uuid, node_id: &str) -> Result<Option<NodeIdx>> {
        let row: Option<(i32,)> = sqlx::query_as(
            "SELECT n.idx FROM nodes n
             JOIN runs r ON r.id = n.run_id
             JOIN workflows w ON w.id = r.workflow_id
             WHERE n.run_id = $1 AND n.node_id = $2 AND n.idx < $3
               AND (w.definition -> 'nodes' -> n.idx) ? 'for_each'",
        )
        .bind(run)
        .bind(node_id)
        .bind(i32_of(FIRST_SLOT))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(i,)| u32_of(i)))
    }

    /// Each map node's instances of `run` by status (with `total`), by
    /// node index.
    pub async fn instance_counts(&self, run: Uuid) -> Result<HashMap<NodeIdx, InstanceCounts>> {
        self.counts_of_slots(run, FIRST_SLOT, None).await
    }

    /// The instances of map node `node` of `run` by status (with `total`):
    /// a scan of that node's slots only.
    pub async fn node_instance_counts(&self, run: Uuid, node: NodeIdx) -> Result<InstanceCounts> {
        let from = instance_slot(node, 0);
        let to = instance_slot(node, gantry_dag::MAX_ITEMS);
        let mut counts = self.counts_of_slots(run, from, Some(to)).await?;
        Ok(counts.remove(&node).unwrap_or_default())
    }

    /// Instance counts by node of the slots of `run` in `[from, to)`.
    async fn counts_of_slots(
        &self,
        run: Uuid,
        from: NodeIdx,
        to: Option<NodeIdx>,
    ) -> Result<HashMap<NodeIdx, InstanceCounts>> {
        let rows: Vec<(i32, String, i64)> = sqlx::query_as(
            "SELECT (idx - $2) >> 14 AS node, status, count(*) FROM nodes
             WHERE run_id = $1 AND idx >= $3 AND ($4::int IS NULL OR idx < $4)
             GROUP BY 1, 2",
        )
        .bind(run)
        .bind(i32_of(FIRST_SLOT))
        .bind(i32_of(from))
        .bind(to.map(i32_of))
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<NodeIdx, InstanceCounts> = HashMap::new();
        for (node, status, n) in rows {
            let counts = out.entry(u32_of(node)).or_default();
            let n = u64::try_from(n).unwrap_or(0);
            *counts.entry("total".to_owned()).or_default() += n;
            *counts.entry(status).or_default() += n;
        }
        Ok(out)
    }

    /// Instances of map node `node` of `run` in index order, from index
    /// `after + 1` (or the first), at most `limit`, optionally only those in
    /// `status`.
    pub async fn list_instances(
        &self,
        run: Uuid,
        node: NodeIdx,
        status: Option<NodeStatus>,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<InstanceSummary>> {
        let from = after.map_or(instance_slot(node, 0), |a| {
            instance_slot(node, a.saturating_add(1).min(gantry_dag::MAX_ITEMS))
        });
        let rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT n.idx, n.item, n.status, n.attempt, n.output, n.error, n.started_at,
                    n.finished_at, c.id AS child_run,
                    CASE WHEN n.status = 'waiting_approval' THEN n.approval_deadline END
                        AS approval_deadline,
                    n.approval_decided_by
             FROM nodes n
             LEFT JOIN runs c ON c.parent_run_id = n.run_id AND c.parent_idx = n.idx
             WHERE n.run_id = $1 AND n.idx >= $2 AND n.idx < $3
               AND ($4::text IS NULL OR n.status = $4)
             ORDER BY n.idx LIMIT $5",
        )
        .bind(run)
        .bind(i32_of(from))
        .bind(i32_of(instance_slot(node, gantry_dag::MAX_ITEMS)))
        .bind(status.map(NodeStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(InstanceSummary {
                    index: gantry_dag::Slot::of(u32_of(r.idx)).item().unwrap_or(0),
                    item: r.item.unwrap_or(Value::Null),
                    status: node_status(&r.status)?,
                    attempts: u32_of(r.attempt),
                    output: r.output,
                    error: r.error,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    child_run: r.child_run,
                    approval_deadline: r.approval_deadline,
                    approval_decided_by: r.approval_decided_by,
                })
            })
            .collect()
    }
}
