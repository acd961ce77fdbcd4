//! Read models of the dashboard: run counts, the last hour's activity, every
//! attempt of a run in one query, and a bulk seed for its benchmark.

use crate::rows::{run_status, u32_of};
use crate::{AttemptRecord, Reads, Result, Store};
use chrono::{DateTime, Utc};
use gantry_dag::RunStatus;
use uuid::Uuid;

/// Runs finished within one time bucket, by final status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinishedCounts {
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// What happened over a recent window, in equal buckets (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub since: DateTime<Utc>,
    pub bucket_s: i64,
    /// Runs created within the window.
    pub started: i64,
    pub finished: Vec<FinishedCounts>,
}

impl Reads {
    /// How many runs are in each status (statuses with none are left out).
    pub async fn run_counts(&self) -> Result<Vec<(RunStatus, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(s, n)| Ok((run_status(&s)?, n)))
            .collect()
    }

    /// Runs started and finished over the last `buckets * bucket_s`
    /// seconds, by the database clock.
    pub async fn run_activity(&self, buckets: u32, bucket_s: u32) -> Result<Activity> {
        let window = i64::from(buckets) * i64::from(bucket_s);
        let (since, started): (DateTime<Utc>, i64) = sqlx::query_as(
            "SELECT now() - make_interval(secs => $1),
                    (SELECT count(*) FROM runs
                      WHERE created_at >= now() - make_interval(secs => $1))",
        )
        .bind(window as f64)
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<(i32, String, i64)> = sqlx::query_as(
            "SELECT LEAST(floor(extract(epoch FROM finished_at - $1) / $2)::int, $3 - 1),
                    status, count(*)
             FROM runs WHERE finished_at >= $1
             GROUP BY 1, 2",
        )
        .bind(since)
        .bind(f64::from(bucket_s))
        .bind(i32::try_from(buckets).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut finished = vec![FinishedCounts::default(); buckets as usize];
        for (bucket, status, n) in rows {
            let Some(slot) = usize::try_from(bucket)
                .ok()
                .and_then(|b| finished.get_mut(b))
            else {
                continue;
            };
            match run_status(&status)? {
                RunStatus::Succeeded => slot.succeeded += n,
                RunStatus::Failed => slot.failed += n,
                RunStatus::Cancelled => slot.cancelled += n,
                RunStatus::Running => {}
            }
        }
        Ok(Activity {
            since,
            bucket_s: i64::from(bucket_s),
            started,
            finished,
        })
    }

    /// Every attempt of the first `nodes` nodes of a run (by index), by
    /// node then attempt. Log tails are cut to their last `log_bytes` bytes
    /// in the database.
    pub async fn run_attempts(
        &self,
        run: Uuid,
        nodes: u32,
        log_bytes: i32,
    ) -> Result<Vec<(String, AttemptRecord)>> {
        type Row = (
            String,
            i32,
            String,
            String,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<i32>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT n.node_id, a.attempt, a.worker, a.status, a.started_at, a.finished_at,
                    a.exit_code, a.error, right(a.log_tail, $2)
             FROM attempts a JOIN nodes n ON n.run_id = a.run_id AND n.idx = a.idx
             WHERE a.run_id = $1 AND a.idx < $3
             ORDER BY a.idx, a.attempt",
        )
        .bind(run)
        .bind(log_bytes)
        .bind(crate::rows::i32_of(nodes))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.0,
                    AttemptRecord {
                        attempt: u32_of(r.1),
                        worker: r.2,
                        status: r.3,
                        started_at: r.4,
                        finished_at: r.5,
                        exit_code: r.6,
                        error: r.7,
                        log_tail: r.8,
                    },
                )
            })
            .collect())
    }
}

impl Store {
    /// Benchmarks only: `count` copies of run `template` (its nodes too),
    /// created over the last two hours, a quarter each running, succeeded,
    /// failed and cancelled, in one statement per table, then analyzed.
    /// Returns how many runs were written.
    pub async fn seed_runs_like(&self, template: Uuid, count: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "CREATE TEMP TABLE seeded ON COMMIT DROP AS
             SELECT gen_random_uuid() AS id, g AS n,
                    (ARRAY['running', 'succeeded', 'failed', 'cancelled'])[g % 4 + 1] AS status,
                    now() - make_interval(secs => (g * 7200.0 / $1::bigint)::float8) AS created_at
             FROM generate_series(1, $1::bigint) AS g",
        )
        .bind(count)
        .execute(&mut *tx)
        .await?;
        let written = sqlx::query(
            "INSERT INTO runs (id, workflow_id, workflow_name, workflow_version, plan_hash,
                               input, status, remaining, failed, created_at, updated_at,
                               finished_at)
             SELECT s.id, t.workflow_id, t.workflow_name, t.workflow_version, t.plan_hash,
                    jsonb_build_object('seed', s.n), s.status,
                    CASE WHEN s.status = 'running' THEN t.remaining ELSE 0 END,
                    CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END,
                    s.created_at, s.created_at,
                    CASE WHEN s.status <> 'running'
                         THEN s.created_at + interval '3 seconds' END
             FROM seeded s, runs t WHERE t.id = $1",
        )
        .bind(template)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO nodes (run_id, idx, node_id, agent, queue, status, attempt, tries,
                                waiting_on, queued_at, started_at, finished_at, error)
             SELECT s.id, n.idx, n.node_id, n.agent, n.queue,
                    CASE s.status WHEN 'running' THEN n.status
                                  WHEN 'succeeded' THEN 'succeeded'
                                  WHEN 'failed' THEN CASE WHEN n.idx = 0 THEN 'failed'
                                                          ELSE 'skipped' END
                                  ELSE 'cancelled' END,
                    CASE WHEN s.status IN ('succeeded', 'failed') AND n.idx = 0 THEN 1
                         WHEN s.status = 'succeeded' THEN 1 ELSE 0 END,
                    0, n.waiting_on, s.created_at, s.created_at,
                    CASE WHEN s.status <> 'running' THEN s.created_at + interval '3 seconds' END,
                    CASE WHEN s.status = 'failed' AND n.idx = 0
                         THEN 'seeded failure: exit code 1' END
             FROM seeded s, nodes n WHERE n.run_id = $1",
        )
        .bind(template)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // What autovacuum would do soon after such a load.
        sqlx::query("ANALYZE runs, nodes")
            .execute(&self.pool)
            .await?;
        Ok(written)
    }
}

/// Benchmarks only: create (`drop: false`) or drop a database named `name`
/// (`[a-z0-9_]`, at most 63 bytes) on the server `store` is connected to.
pub async fn scratch_database(store: &Store, name: &str, drop: bool) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(crate::Error::Corrupt {
            what: "database name",
            reason: format!("{name:?} is not [a-z0-9_]{{1,63}}"),
        });
    }
    // Identifiers cannot be bound; the name was checked above.
    let sql = if drop {
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    } else {
        format!("CREATE DATABASE {name}")
    };
    sqlx::query(&sql).execute(&store.pool).await?;
    Ok(())
}
