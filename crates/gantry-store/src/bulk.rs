//! The runs a bulk cancel or retry applies to (SPEC section 4): top-level
//! runs in one of the statuses the action applies to that match a filter,
//! oldest first. Child runs follow their parent's cancel and retry.

use crate::{Reads, Result};
use chrono::{DateTime, Utc};
use gantry_dag::RunStatus;
use sqlx::QueryBuilder;
use uuid::Uuid;

/// `POST /v1/runs/cancel` and `/retry`: which runs.
#[derive(Debug, Clone, Default)]
pub struct BulkFilter {
    pub workflow: Option<String>,
    pub status: Option<RunStatus>,
    /// Every one must match.
    pub tags: Vec<(String, String)>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl Reads {
    /// Up to `limit` ids of top-level runs in one of `statuses` that match
    /// `filter`, oldest first.
    pub async fn bulk_targets(
        &self,
        filter: &BulkFilter,
        statuses: &[RunStatus],
        limit: i64,
    ) -> Result<Vec<Uuid>> {
        let statuses: Vec<&str> = statuses
            .iter()
            .filter(|s| filter.status.is_none_or(|f| f == **s))
            .map(|s| s.as_str())
            .collect();
        let mut q = QueryBuilder::new(
            "SELECT r.id FROM runs r WHERE r.parent_run_id IS NULL AND r.status = ANY(",
        );
        q.push_bind(statuses).push(")");
        if let Some(w) = &filter.workflow {
            q.push(" AND r.workflow_name = ").push_bind(w);
        }
        if let Some(t) = filter.created_after {
            q.push(" AND r.created_at > ").push_bind(t);
        }
        if let Some(t) = filter.created_before {
            q.push(" AND r.created_at < ").push_bind(t);
        }
        for (k, v) in &filter.tags {
            q.push(" AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.key = ")
                .push_bind(k)
                .push(" AND t.value = ")
                .push_bind(v)
                .push(")");
        }
        q.push(" ORDER BY r.created_at, r.id LIMIT ")
            .push_bind(limit);
        let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
