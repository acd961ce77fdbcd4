//! What workers do besides claiming (`claim.rs`): read upstream outputs,
//! renew leases, record attempt results fenced by attempt number.

use crate::rows::{i32_of, millis, node_status, u32_of};
use crate::text::storable_text;
use crate::{AttemptResult, Dispatch, Reads, Result, Store, ADVANCE_CHANNEL};
use gantry_dag::{NodeIdx, NodeStatus, NodeView, Outcome};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct DispatchRow {
    run_id: Uuid,
    idx: i32,
    queue: String,
    workflow_id: i64,
    plan_hash: String,
    traceparent: Option<String>,
    /// Attempt and tries of a `queued` node (null for a retrying one).
    queued_attempt: Option<i32>,
    queued_tries: Option<i32>,
}

impl Reads {
    /// Outputs of succeeded nodes, by `(run, node index)`, for template
    /// rendering.
    pub async fn outputs(
        &self,
        wanted: &[(Uuid, NodeIdx)],
    ) -> Result<HashMap<(Uuid, NodeIdx), Value>> {
        Ok(self
            .node_views(wanted)
            .await?
            .into_iter()
            .filter(|(_, v)| v.status == NodeStatus::Succeeded)
            .map(|(k, v)| (k, v.output))
            .collect())
    }

    /// Status, output and error of nodes, by `(run, node index)`: what the
    /// templates of a node about to run read of its ancestors. One
    /// primary-key probe each: the caller's DAG names the index.
    pub async fn node_views(
        &self,
        wanted: &[(Uuid, NodeIdx)],
    ) -> Result<HashMap<(Uuid, NodeIdx), NodeView>> {
        node_views_in(&self.pool, wanted).await
    }
}

impl Store {
    /// Extend the leases `worker` holds on these attempts to now + `lease`.
    /// Returns the attempts whose lease was no longer ours (to abandon).
    pub async fn renew_leases(
        &self,
        worker: &str,
        held: &[(Uuid, NodeIdx, u32)],
        lease: Duration,
    ) -> Result<Vec<(Uuid, NodeIdx, u32)>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<Uuid> = held.iter().map(|h| h.0).collect();
        let idxs: Vec<i32> = held.iter().map(|h| i32_of(h.1)).collect();
        let attempts: Vec<i32> = held.iter().map(|h| i32_of(h.2)).collect();
        // An attempt already finished (its lease expired and was reaped) is
        // no longer ours even if the node has not moved on yet.
        let renewed: Vec<(Uuid, i32, i32)> = sqlx::query_as(
            "UPDATE nodes n
             SET lease_expires_at = clock_timestamp() + $5::float8 * interval '1 millisecond'
             FROM (SELECT DISTINCT * FROM unnest($2::uuid[], $3::int[], $4::int[]))
                  AS h(run_id, idx, attempt)
             WHERE n.run_id = h.run_id AND n.idx = h.idx AND n.attempt = h.attempt
               AND n.status = 'running' AND n.lease_owner = $1
               AND EXISTS (SELECT 1 FROM attempts a
                           WHERE a.run_id = n.run_id AND a.idx = n.idx
                             AND a.attempt = n.attempt AND a.finished_at IS NULL)
             RETURNING n.run_id, n.idx, n.attempt",
        )
        .bind(worker)
        .bind(&runs)
        .bind(&idxs)
        .bind(&attempts)
        .bind(millis(lease))
        .fetch_all(&self.pool)
        .await?;
        let renewed: HashSet<(Uuid, u32, u32)> = renewed
            .into_iter()
            .map(|(r, i, a)| (r, u32_of(i), u32_of(a)))
            .collect();
        Ok(held
            .iter()
            .filter(|h| !renewed.contains(h))
            .copied()
            .collect())
    }

    /// Record results in one transaction. A result is accepted only when the
    /// node is `running` with the same `attempt` (fencing): the attempt row is
    /// finished (`finished_at` = `clock_timestamp()`, status, output, error,
    /// exit code, log tail) and the node is flagged `pending_advance`. Notifies
    /// [`crate::ADVANCE_CHANNEL`]. Returns, per input, whether it was accepted.
    pub async fn record_results(
        &self,
        worker: &str,
        results: &[AttemptResult],
    ) -> Result<Vec<bool>> {
        // The attempt number is the fencing token; `worker` is only for logs.
        tracing::trace!(worker, results = results.len(), "recording attempt results");
        let mut tx = self.pool.begin().await?;
        let accepted = record_in(&mut tx, results, &[]).await?;
        if accepted.iter().any(|a| *a) {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(ADVANCE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(accepted)
    }

    /// Finish every running attempt whose lease ran out as lost (`lost`, the
    /// error of [`gantry_dag::Outcome::Lost`]), flag those nodes
    /// `pending_advance`, and notify. Returns how many.
    pub async fn expire_leases(&self, limit: i64) -> Result<u64> {
        Ok(self
            .expire_leases_by_queue(limit)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum())
    }

    /// [`Store::expire_leases`], counted by the nodes' queue (sorted).
    pub async fn expire_leases_by_queue(&self, limit: i64) -> Result<Vec<(String, u64)>> {
        let mut tx = self.pool.begin().await?;
        let by_queue: Vec<(String, i64)> = sqlx::query_as(
            "WITH expired AS (
                 SELECT n.run_id, n.idx, n.attempt FROM nodes n
                 WHERE n.status = 'running' AND n.lease_expires_at < clock_timestamp()
                   AND EXISTS (SELECT 1 FROM attempts a
                               WHERE a.run_id = n.run_id AND a.idx = n.idx
                                 AND a.attempt = n.attempt AND a.finished_at IS NULL)
                 ORDER BY n.lease_expires_at
                 LIMIT $1
                 FOR NO KEY UPDATE SKIP LOCKED
             ), done AS (
                 UPDATE attempts a
                 SET status = 'failed', retryable = true, lost = true, error = $2,
                     finished_at = clock_timestamp()
                 FROM expired e
                 WHERE a.run_id = e.run_id AND a.idx = e.idx AND a.attempt = e.attempt
                   AND a.finished_at IS NULL
                 RETURNING a.run_id, a.idx
             ), flagged AS (
                 UPDATE nodes n SET pending_advance = true
                 FROM done d WHERE n.run_id = d.run_id AND n.idx = d.idx
                 RETURNING n.queue
             )
             SELECT queue, count(*) FROM flagged GROUP BY queue ORDER BY queue",
        )
        .bind(limit)
        .bind(gantry_dag::Outcome::Lost.stored_error())
        .fetch_all(&mut *tx)
        .await?;
        if !by_queue.is_empty() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(ADVANCE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(by_queue
            .into_iter()
            .map(|(q, n)| (q, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

impl Reads {
    /// Nodes that should be in a queue and may have been lost: `queued` since
    /// before now - `older_than`, or `retrying` with `retry_at` before now -
    /// `older_than`. The reconciler checks each against Redis. A queued
    /// node's dispatch says how it is queued, as its first one did.
    pub async fn deliverable(&self, older_than: Duration, limit: i64) -> Result<Vec<Dispatch>> {
        let rows: Vec<DispatchRow> = sqlx::query_as(
            "SELECT n.run_id, n.idx, n.queue, r.workflow_id, r.plan_hash, r.traceparent,
                    n.queued_attempt, n.queued_tries
             FROM (
                 (SELECT run_id, idx, queue, queued_at AS due,
                         attempt AS queued_attempt, tries AS queued_tries FROM nodes
                  WHERE status = 'queued'
                    AND queued_at < clock_timestamp() - $1::float8 * interval '1 millisecond'
                  ORDER BY queued_at LIMIT $2)
                 UNION ALL
                 (SELECT run_id, idx, queue, retry_at AS due, NULL::int, NULL::int FROM nodes
                  WHERE status = 'retrying'
                    AND retry_at < clock_timestamp() - $1::float8 * interval '1 millisecond'
                  ORDER BY retry_at LIMIT $2)
             ) n
             JOIN runs r ON r.id = n.run_id
             WHERE r.status = 'running'
             ORDER BY n.due
             LIMIT $2",
        )
        .bind(millis(older_than))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Dispatch {
                run_id: r.run_id,
                node: u32_of(r.idx),
                queue: r.queue,
                workflow_id: r.workflow_id,
                plan_hash: r.plan_hash,
                delay_ms: None,
                traceparent: r.traceparent,
                queued: r
                    .queued_attempt
                    .zip(r.queued_tries)
                    .map(|(attempt, tries)| crate::Queued {
                        attempt: u32_of(attempt),
                        tries: u32_of(tries),
                    }),
            })
            .collect())
    }
}

/// Record results inside `conn`'s transaction (see [`Store::record_results`]);
/// the caller notifies and commits. Results of the runs in `held` (locked
/// by this transaction, which applies them itself) are not flagged.
pub(crate) async fn record_in(
    conn: &mut sqlx::PgConnection,
    results: &[AttemptResult],
    held: &[Uuid],
) -> Result<Vec<bool>> {
    // A result repeated inside the batch counts once: the first wins.
    let mut seen = HashSet::new();
    let first: Vec<bool> = results
        .iter()
        .map(|r| seen.insert((r.run_id, r.node, r.attempt)))
        .collect();
    let batch: Vec<&AttemptResult> = results
        .iter()
        .zip(&first)
        .filter(|(_, f)| **f)
        .map(|(r, _)| r)
        .collect();
    if batch.is_empty() {
        return Ok(vec![false; results.len()]);
    }
    let runs: Vec<Uuid> = batch.iter().map(|r| r.run_id).collect();
    let idxs: Vec<i32> = batch.iter().map(|r| i32_of(r.node)).collect();
    let attempts: Vec<i32> = batch.iter().map(|r| i32_of(r.attempt)).collect();
    let (statuses, retryable): (Vec<&str>, Vec<bool>) = batch
        .iter()
        .map(|r| match r.outcome {
            Outcome::Succeeded => ("succeeded", false),
            Outcome::Failed { retryable } => ("failed", retryable),
            // Lease expiry loses an attempt (see `expire_leases_by_queue`).
            Outcome::Lost => ("failed", true),
            // Only the reconciler times a wait out (see `expire_waits`).
            Outcome::TimedOut => ("failed", false),
        })
        .unzip();
    let lost: Vec<bool> = batch.iter().map(|r| r.outcome == Outcome::Lost).collect();
    let outputs: Vec<Option<&Value>> = batch.iter().map(|r| r.output.as_ref()).collect();
    // Agent-supplied text: a NUL in it made Postgres refuse the batch.
    let errors: Vec<Option<Cow<str>>> = batch
        .iter()
        .map(|r| r.error.as_deref().map(storable_text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let codes: Vec<Option<i32>> = batch.iter().map(|r| r.exit_code).collect();
    let logs: Vec<Option<Cow<str>>> = batch
        .iter()
        .map(|r| r.log_tail.as_deref().map(storable_text))
        .collect();
    let logs: Vec<Option<&str>> = logs.iter().map(|l| l.as_deref()).collect();

    // Lock the nodes in key order (as every writer does) so concurrent
    // batches cannot deadlock; re-checked after any wait.
    let accepted: Vec<(i64,)> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::bool[],
                                  $6::jsonb[], $7::text[], $8::int[], $9::text[], $11::bool[])
                  WITH ORDINALITY
                  AS t(run_id, idx, attempt, status, retryable, output, error,
                       exit_code, log_tail, lost, ord)
         ), locked AS (
             SELECT n.run_id, n.idx, n.attempt FROM nodes n
             JOIN input i ON n.run_id = i.run_id AND n.idx = i.idx AND n.attempt = i.attempt
             WHERE n.status = 'running'
             ORDER BY n.run_id, n.idx
             FOR NO KEY UPDATE OF n
         ), done AS (
             UPDATE attempts a
             SET status = i.status, retryable = i.retryable, lost = i.lost, output = i.output,
                 error = i.error, exit_code = i.exit_code, log_tail = i.log_tail,
                 finished_at = clock_timestamp()
             FROM input i, locked l
             WHERE a.run_id = i.run_id AND a.idx = i.idx AND a.attempt = i.attempt
               AND l.run_id = i.run_id AND l.idx = i.idx AND l.attempt = i.attempt
               AND a.finished_at IS NULL AND a.status = 'running'
             RETURNING a.run_id, a.idx, a.attempt
         ), flagged AS (
             UPDATE nodes n SET pending_advance = true
             FROM done d WHERE n.run_id = d.run_id AND n.idx = d.idx
               AND d.run_id <> ALL($10::uuid[])
         )
         SELECT i.ord FROM input i
         JOIN done d ON d.run_id = i.run_id AND d.idx = i.idx AND d.attempt = i.attempt",
    )
    .bind(&runs)
    .bind(&idxs)
    .bind(&attempts)
    .bind(&statuses)
    .bind(&retryable)
    .bind(&outputs)
    .bind(&errors)
    .bind(&codes)
    .bind(&logs)
    .bind(held)
    .bind(&lost)
    .fetch_all(&mut *conn)
    .await?;

    let mut ok = vec![false; batch.len()];
    for (ord,) in accepted {
        if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| ok.get_mut(i)) {
            *slot = true;
        }
    }
    let mut ok = ok.into_iter();
    Ok(first
        .into_iter()
        .map(|f| f && ok.next().unwrap_or(false))
        .collect())
}

/// [`Reads::node_views`] on any connection (a worker's pool, or the
/// transaction that starts child runs).
pub(crate) async fn node_views_in<'e, E: sqlx::PgExecutor<'e>>(
    exec: E,
    wanted: &[(Uuid, NodeIdx)],
) -> Result<HashMap<(Uuid, NodeIdx), NodeView>> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let runs: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
    let idxs: Vec<i32> = wanted.iter().map(|w| i32_of(w.1)).collect();
    let rows: Vec<(Uuid, i32, String, Value, Option<String>)> = sqlx::query_as(
        "SELECT n.run_id, n.idx, n.status, COALESCE(n.output, 'null'::jsonb), n.error
         FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::int[])) AS w(run_id, idx)
         CROSS JOIN LATERAL (
             SELECT * FROM nodes n WHERE n.run_id = w.run_id AND n.idx = w.idx
         ) n",
    )
    .bind(&runs)
    .bind(&idxs)
    .fetch_all(exec)
    .await?;
    rows.into_iter()
        .map(|(run, idx, status, output, error)| {
            let view = NodeView {
                status: node_status(&status)?,
                output,
                error,
            };
            Ok(((run, u32_of(idx)), view))
        })
        .collect()
}
