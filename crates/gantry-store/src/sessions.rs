//! Dashboard sessions: one row per login, looked up by the hash of the
//! cookie's random id, deleted on logout and once expired.

use crate::{Reads, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// Record a session that lasts until `expires_at`; expired sessions
    /// are deleted on the way, so the table stays as small as the live set.
    pub async fn create_session(
        &self,
        id_hash: &str,
        token_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= now()")
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO ui_sessions (id_hash, token_id, expires_at) VALUES ($1, $2, $3)")
            .bind(id_hash)
            .bind(token_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Reads {
    /// The token id of a live (not expired, not logged out) session.
    pub async fn session_token(&self, id_hash: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT token_id FROM ui_sessions WHERE id_hash = $1 AND expires_at > now()",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }
}

impl Store {
    /// End a session (logout); ending one that is gone already is fine.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
