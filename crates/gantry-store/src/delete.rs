//! Deleting finished runs (SPEC section 4.1): a run with its child runs,
//! nodes, attempts, waits and tags, in one transaction; never a run that
//! still runs, one with a running descendant, or the child of a running
//! parent. Attempts carry no foreign key (migration 0003), so they are
//! deleted by run id; everything else goes with the run rows.

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
