//! The two halves of a worker's claim around the pure decision
//! (`gantry_dag::claim`): what it decides on (what the job says of its
//! queued node, or else the node's row), then the write of each decided
//! claim only where the node is still what was decided on (its status,
//! attempt and tries are the compare-and-set), with the attempt's lease and
//! its `attempts` row.

use crate::rows::{i32_of, millis, node_status, run_status, u32_of};
use crate::{Claimed, Dispatch, Queued, Result, Store};
use gantry_dag::{Claim, ClaimView, NodeIdx};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A delivered node to claim: its key, and how it was queued when its job
/// says so (a job the reconciler delivered again, a retry's delayed job or
/// one from an older version does not, and its claim reads the node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimJob {
    pub run_id: Uuid,
    pub node: NodeIdx,
    pub queued: Option<Queued>,
}

impl From<&Dispatch> for ClaimJob {
    fn from(d: &Dispatch) -> Self {
        Self {
            run_id: d.run_id,
            node: d.node,
            queued: d.queued,
        }
    }
}

impl From<(Uuid, NodeIdx)> for ClaimJob {
    fn from((run_id, node): (Uuid, NodeIdx)) -> Self {
        Self {
            run_id,
            node,
            queued: None,
        }
    }
}

/// A delivered node as a claim decides on it.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRead {
    pub run_id: Uuid,
    pub node: NodeIdx,
    pub view: ClaimView,
}

#[derive(sqlx::FromRow)]
struct ViewRow {
    run_id: Uuid,
    idx: i32,
    run_status: String,
    status: String,
    attempt: i32,
    tries: i32,
    retry_at_ms: Option<i64>,
    now_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    run_id: Uuid,
    idx: i32,
    attempt: i32,
    workflow_id: i64,
    plan_hash: String,
    /// The run's input on the first row of each run only.
    input: Option<Value>,
    item: Option<Value>,
    started_at_ms: i64,
    ready_at_ms: Option<i64>,
}

impl Store {
    /// Claim the delivered `jobs` for `worker` under a lease of `lease`:
    /// take what each job says of its queued node, read the others, let
    /// [`gantry_dag::claim`] decide each, write the claims. Jobs refused (a
    /// duplicate delivery, a cancelled run, a retry not due) or overtaken
    /// since (a stale job, a node another worker claimed) are left out of
    /// the result; the caller acknowledges and drops those jobs.
    pub async fn claim(
        &self,
        worker: &str,
        jobs: &[ClaimJob],
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let unread: Vec<(Uuid, NodeIdx)> = jobs
            .iter()
            .filter(|j| j.queued.is_none())
            .map(|j| (j.run_id, j.node))
            .collect();
        let mut read = self.claim_views(&unread).await?;
        read.extend(jobs.iter().filter_map(|j| {
            j.queued.map(|q| ClaimRead {
                run_id: j.run_id,
                node: j.node,
                view: ClaimView::queued(q.attempt, q.tries),
            })
        }));
        let decided: Vec<(&ClaimRead, Claim)> = read
            .iter()
            .filter_map(|r| match gantry_dag::claim(&r.view) {
                Ok(c) => Some((r, c)),
                Err(why) => {
                    tracing::debug!(run = %r.run_id, node = r.node, %why, "job not claimed");
                    None
                }
            })
            .collect();
        self.write_claims(worker, &decided, lease).await
    }

    /// Each delivered `(run, node)` that exists, with its run's status and
    /// the database clock, without locks: [`Store::write_claims`] writes
    /// only where nothing changed since. Both lookups are fenced primary-key
    /// probes (`OFFSET 0`): pulled up into a join, the planner, which has no
    /// statistics for `run_id` (migration 0002), hashed the whole `nodes`
    /// table per call (143 ms a claim in a 10,000-item map).
    pub async fn claim_views(&self, jobs: &[(Uuid, NodeIdx)]) -> Result<Vec<ClaimRead>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
        let idxs: Vec<i32> = jobs.iter().map(|j| i32_of(j.1)).collect();
        let rows: Vec<ViewRow> = sqlx::query_as(
            "SELECT j.run_id, j.idx, r.status AS run_status, n.status, n.attempt, n.tries,
                    (extract(epoch FROM n.retry_at) * 1000)::int8 AS retry_at_ms,
                    (extract(epoch FROM clock_timestamp()) * 1000)::int8 AS now_ms
             FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::int[])) AS j(run_id, idx)
             CROSS JOIN LATERAL (
                 SELECT r.status FROM runs r WHERE r.id = j.run_id OFFSET 0
             ) r
             CROSS JOIN LATERAL (
                 SELECT n.status, n.attempt, n.tries, n.retry_at FROM nodes n
                 WHERE n.run_id = j.run_id AND n.idx = j.idx OFFSET 0
             ) n",
        )
        .bind(&runs)
        .bind(&idxs)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimRead {
                    run_id: r.run_id,
                    node: u32_of(r.idx),
                    view: ClaimView {
                        run: run_status(&r.run_status)?,
                        status: node_status(&r.status)?,
                        attempt: u32_of(r.attempt),
                        tries: u32_of(r.tries),
                        retry_at_ms: r.retry_at_ms,
                        now_ms: r.now_ms,
                    },
                })
            })
            .collect()
    }

    /// Write the decided `claims` for `worker`: status `running`, the new
    /// attempt and tries, a lease until now + `lease`, `started_at` =
    /// `clock_timestamp()`, and an `attempts` row (status `running`), in one
    /// statement. A claim whose node moved on since it was read (another
    /// worker claimed it, the run was cancelled) is left out of the result.
    pub async fn write_claims(
        &self,
        worker: &str,
        claims: &[(&ClaimRead, Claim)],
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<Uuid> = claims.iter().map(|c| c.0.run_id).collect();
        let idxs: Vec<i32> = claims.iter().map(|c| i32_of(c.0.node)).collect();
        let from: Vec<&str> = claims.iter().map(|c| c.1.from.as_str()).collect();
        let from_attempt: Vec<i32> = claims.iter().map(|c| i32_of(c.1.from_attempt)).collect();
        let from_tries: Vec<i32> = claims.iter().map(|c| i32_of(c.1.from_tries)).collect();
        let attempt: Vec<i32> = claims.iter().map(|c| i32_of(c.1.attempt)).collect();
        let tries: Vec<i32> = claims.iter().map(|c| i32_of(c.1.tries)).collect();
        // `FOR KEY SHARE` on the run waits for a cancel (which holds the run
        // `FOR UPDATE`) and blocks one while we claim, so a claim never races
        // a cancel of the same node; it does not conflict with the
        // coordinator's `FOR NO KEY UPDATE`. Nodes are locked one primary-key
        // probe at a time in key order, so overlapping batches cannot
        // deadlock; the compare-and-set is checked on the locked (latest)
        // row, so of two claims of one node the second finds it moved on.
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "WITH want AS (
                 SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::int[],
                                      $9::int[], $6::int[], $7::int[])
                      AS w(run_id, idx, from_status, from_attempt, from_tries, attempt, tries)
             ), live AS (
                 SELECT r.id FROM runs r
                 WHERE r.id IN (SELECT run_id FROM want) AND r.status = 'running'
                 ORDER BY r.id
                 FOR KEY SHARE
             ), still AS (
                 -- When the node became ready (queued, or its retry due):
                 -- the start of its dispatch latency.
                 SELECT w.run_id, w.idx, w.attempt, w.tries,
                        CASE WHEN n.status = 'retrying' THEN n.retry_at
                             ELSE n.queued_at END AS ready_at
                 FROM (SELECT * FROM want WHERE run_id IN (SELECT id FROM live)
                       ORDER BY run_id, idx) w
                 CROSS JOIN LATERAL (
                     SELECT n.status, n.attempt, n.tries, n.retry_at, n.queued_at FROM nodes n
                     WHERE n.run_id = w.run_id AND n.idx = w.idx
                     FOR NO KEY UPDATE
                 ) n
                 WHERE n.status = w.from_status AND n.attempt = w.from_attempt
                   AND n.tries = w.from_tries
             ), claimed AS (
                 UPDATE nodes n
                 SET status = 'running', attempt = s.attempt, tries = s.tries,
                     lease_owner = $1,
                     lease_expires_at = clock_timestamp() + $8::float8 * interval '1 millisecond',
                     started_at = clock_timestamp(), finished_at = NULL, retry_at = NULL
                 FROM still s
                 WHERE n.run_id = s.run_id AND n.idx = s.idx
                 RETURNING n.run_id, n.idx, n.attempt, n.started_at, n.item, s.ready_at
             ), attempts AS (
                 INSERT INTO attempts (run_id, idx, attempt, worker, status, started_at)
                 SELECT run_id, idx, attempt, $1, 'running', started_at FROM claimed
             )
             -- The run input once per run, not per row: the instances of a
             -- map over a large input would each carry all of it.
             SELECT c.run_id, c.idx, c.attempt, r.workflow_id, r.plan_hash,
                    CASE WHEN row_number() OVER (PARTITION BY c.run_id ORDER BY c.idx) = 1
                         THEN r.input END AS input,
                    c.item,
                    (extract(epoch FROM c.started_at) * 1000)::int8 AS started_at_ms,
                    (extract(epoch FROM c.ready_at) * 1000)::int8 AS ready_at_ms
             FROM claimed c
             CROSS JOIN LATERAL (
                 SELECT r.workflow_id, r.plan_hash, r.input FROM runs r
                 WHERE r.id = c.run_id OFFSET 0
             ) r
             ORDER BY c.run_id, c.idx",
        )
        .bind(worker)
        .bind(&runs)
        .bind(&idxs)
        .bind(&from)
        .bind(&from_attempt)
        .bind(&attempt)
        .bind(&tries)
        .bind(millis(lease))
        .bind(&from_tries)
        .fetch_all(&self.pool)
        .await?;
        // Rows come ordered by run: each run's first row carries its input.
        let mut input: Option<(Uuid, Arc<Value>)> = None;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let run_input = match (&input, r.input.take()) {
                    (_, Some(v)) => {
                        let v = Arc::new(v);
                        input = Some((r.run_id, v.clone()));
                        v
                    }
                    (Some((run, v)), None) if *run == r.run_id => v.clone(),
                    _ => Arc::new(Value::Null),
                };
                let node = u32_of(r.idx);
                let waited_s = r
                    .ready_at_ms
                    .map(|at| (r.started_at_ms - at) as f64 / 1000.0);
                Claimed {
                    run_id: r.run_id,
                    node,
                    attempt: u32_of(r.attempt),
                    workflow_id: r.workflow_id,
                    plan_hash: r.plan_hash,
                    run_input,
                    item: r.item,
                    waited_s,
                }
            })
            .collect())
    }
}
