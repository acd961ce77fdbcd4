//! Draining recorded results: the coordinator loop's transactions. Each
//! locks runs with results waiting (skipping those another transaction
//! holds), applies them through the pure state machine, commits, then
//! carries out what is left to do.

use crate::{apply::advance_heads, Engine, Result};
use gantry_store::ADVANCE_CHANNEL;
use uuid::Uuid;

impl Engine {
    /// Woken whenever a worker leaves results for the coordinator.
    pub async fn listen_advance(&self) -> Result<Wakeups> {
        Ok(Wakeups(self.store.listen(&[ADVANCE_CHANNEL]).await?))
    }

    /// One transaction: lock at most `limit` runs with pending results (but
    /// those in `skip`), apply them, commit, deliver. Returns how many runs
    /// it advanced (0: nothing is pending).
    pub async fn advance_pending(&self, limit: i64, skip: &[Uuid]) -> Result<usize> {
        let mut tx = self.store.begin().await?;
        let heads = tx.lock_pending_runs_except(limit, skip).await?;
        if heads.is_empty() {
            return Ok(0);
        }
        let applied = advance_heads(self, &mut tx, &heads).await?;
        tx.commit().await?;
        applied.deliver(self).await;
        Ok(heads.len())
    }

    /// The ids of at most `limit` runs with pending results (but those in
    /// `skip`), to advance one by one with [`Engine::advance_run`].
    pub async fn pending_runs(&self, limit: i64, skip: &[Uuid]) -> Result<Vec<Uuid>> {
        let mut tx = self.store.begin().await?;
        let heads = tx.lock_pending_runs_except(limit, skip).await?;
        // Dropping the transaction releases the locks.
        Ok(heads.iter().map(|h| h.id).collect())
    }

    /// Apply the pending results of run `id` in a transaction of its own
    /// (nothing when another transaction holds the run).
    pub async fn advance_run(&self, id: Uuid) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let heads = tx.try_lock_runs(&[id]).await?;
        let applied = advance_heads(self, &mut tx, &heads).await?;
        tx.commit().await?;
        applied.deliver(self).await;
        Ok(())
    }
}

/// Notifications that results wait for the coordinator ([`Engine::listen_advance`]).
pub struct Wakeups(gantry_store::PgListener);

impl Wakeups {
    /// Wait for the next notification; an error when the connection broke.
    pub async fn recv(&mut self) -> Result<()> {
        self.0.recv().await.map_err(gantry_store::Error::from)?;
        Ok(())
    }
}
