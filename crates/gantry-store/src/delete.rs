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
        let gone = delete_runs(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(Deleted::Runs(gone))
    }
}

impl Store {
    /// Delete up to `limit` top-level finished runs past their retention
    /// (their workflow's latest `retention_days`, else `default_days`; 0
    /// keeps runs for ever), oldest first, each with its descendants; a
    /// run one of whose descendants still runs is left for a later pass.
    /// Each workflow's candidates are one range of its (name, created_at)
    /// index, so a pass reads only runs past their age, never the young
    /// ones. Returns how many runs were deleted, child runs included.
    pub async fn purge_expired(&self, default_days: u32, limit: i64) -> Result<u64> {
        let days: Vec<(String, i32)> = sqlx::query_as(
            "SELECT name, COALESCE(days, $1) FROM (
                 SELECT DISTINCT ON (name) name, (definition ->> 'retention_days')::int AS days
                 FROM workflows ORDER BY name, version DESC
             ) w WHERE COALESCE(days, $1) > 0",
        )
        .bind(i32::try_from(default_days).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        if days.is_empty() {
            return Ok(0);
        }
        let (names, ages): (Vec<String>, Vec<i32>) = days.into_iter().unzip();
        let mut tx = self.pool.begin().await?;
        let ids: Vec<(Uuid,)> = sqlx::query_as(
            "WITH RECURSIVE expired AS (
                 SELECT e.id FROM unnest($1::text[], $2::int[]) AS w(name, days)
                 CROSS JOIN LATERAL (
                     SELECT r.id, r.created_at FROM runs r
                     WHERE r.workflow_name = w.name
                       AND r.created_at < clock_timestamp() - w.days * interval '1 day'
                       AND r.parent_run_id IS NULL AND r.status <> 'running'
                     ORDER BY r.created_at LIMIT $3
                     FOR UPDATE OF r SKIP LOCKED
                 ) e
                 ORDER BY e.created_at LIMIT $3
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
        .bind(&names)
        .bind(&ages)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = ids.into_iter().map(|(id,)| id).collect();
        let gone = delete_runs(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(gone)
    }
}

/// Delete runs `ids` (a run with all its descendants each) and their
/// attempts, which carry no foreign key; nodes, waits, tags and child rows
/// go by cascade. Returns how many runs.
async fn delete_runs(tx: &mut sqlx::PgConnection, ids: &[Uuid]) -> Result<u64> {
    sqlx::query("DELETE FROM attempts WHERE run_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query("DELETE FROM runs WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?
        .rows_affected())
}
