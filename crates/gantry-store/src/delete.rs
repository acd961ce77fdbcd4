//! Deleting finished runs (SPEC section 4.1): a run with its child runs,
//! nodes, attempts, waits and tags, in one transaction; never a run that
//! still runs, one with a running descendant, or the child of a running
//! parent. Attempts carry no foreign key (migration 0003), so they are
//! deleted by run id; everything else goes with the run rows. Retention
//! deletes the top-level runs past their workflow's `retention_days` the
//! same way, a bounded batch at a time.

use crate::{Result, Store};
use uuid::Uuid;

/// What [`Store::delete_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The run and its descendants, this many runs in all.
    Runs(u64),
    NotFound,
    /// The run, or one of its descendants, is still running.
    Running(Uuid),
    /// Its parent is still running (it may retry this child).
    ParentRunning(Uuid),
}

impl Store {
    /// Delete run `id` and its descendants, if none of them runs and its
    /// parent does not.
    pub async fn delete_run(&self, id: Uuid) -> Result<Deleted> {
        let mut tx = self.pool.begin().await?;
        let head: Option<(Option<Uuid>, Option<String>)> = sqlx::query_as(
            "SELECT r.parent_run_id, p.status FROM runs r
             LEFT JOIN runs p ON p.id = r.parent_run_id
             WHERE r.id = $1 FOR UPDATE OF r",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((parent, parent_status)) = head else {
            return Ok(Deleted::NotFound);
        };
        if let (Some(p), Some("running")) = (parent, parent_status.as_deref()) {
            return Ok(Deleted::ParentRunning(p));
        }
        // The run and every descendant, locked; any still running stops it.
        let tree: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH RECURSIVE tree AS (
                 SELECT id FROM runs WHERE id = $1
                 UNION ALL
                 SELECT r.id FROM runs r JOIN tree t ON r.parent_run_id = t.id
             )
             SELECT r.id, r.status FROM runs r JOIN tree t ON t.id = r.id
             ORDER BY r.id FOR UPDATE OF r",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if let Some((running, _)) = tree.iter().find(|(_, s)| s == "running") {
            return Ok(Deleted::Running(*running));
        }
        let ids: Vec<Uuid> = tree.into_iter().map(|(id, _)| id).collect();
        sqlx::query("DELETE FROM attempts WHERE run_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM runs WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Deleted::Runs(gone))
    }
}

impl Store {
    /// Delete up to `limit` top-level finished runs past their retention
    /// (their version's `retention_days`, else `default_days`; 0 keeps
    /// runs for ever), oldest first, each with its descendants; a run one
    /// of whose descendants still runs is left for a later pass. Returns
    /// how many runs were deleted, child runs included.
    pub async fn purge_expired(&self, default_days: u32, limit: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<(Uuid,)> = sqlx::query_as(
            "WITH RECURSIVE expired AS (
                 SELECT r.id FROM runs r JOIN workflows w ON w.id = r.workflow_id
                 CROSS JOIN LATERAL (
                     SELECT COALESCE((w.definition ->> 'retention_days')::int, $1) AS days
                 ) k
                 WHERE r.finished_at IS NOT NULL AND r.parent_run_id IS NULL
                   AND r.status <> 'running' AND k.days > 0
                   AND r.finished_at < clock_timestamp() - k.days * interval '1 day'
                 ORDER BY r.finished_at LIMIT $2
                 FOR UPDATE OF r SKIP LOCKED
             ), tree AS (
                 SELECT id, id AS root FROM expired
                 UNION ALL
                 SELECT r.id, t.root FROM runs r JOIN tree t ON r.parent_run_id = t.id
             ), busy AS (
                 SELECT DISTINCT t.root FROM tree t JOIN runs r ON r.id = t.id
                 WHERE r.status = 'running'
             )
             SELECT t.id FROM tree t WHERE t.root NOT IN (SELECT root FROM busy)",
        )
        .bind(i32::try_from(default_days).unwrap_or(i32::MAX))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = ids.into_iter().map(|(id,)| id).collect();
        sqlx::query("DELETE FROM attempts WHERE run_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM runs WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone)
    }
}
