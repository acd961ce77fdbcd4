//! Runs by tag (SPEC section 4.1, migration 0018): the list of runs that
//! carry every tag of a filter, newest first, driven by the index of the
//! first tag in list order; each further tag is one primary-key probe per
//! candidate.

use crate::reads::page;
use crate::rows::{RunSummaryRow, RUN_SUMMARY_COLS};
use crate::{Reads, Result, RunFilter, RunSummary};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

impl Reads {
    /// [`Reads::list_runs`] for a filter with tags (`limit` clamped and
    /// the cursor decoded by the caller).
    pub(crate) async fn list_tagged_runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        after: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<(Vec<RunSummary>, Option<String>)> {
        let Some(((key, value), rest)) = filter.tags.split_first() else {
            return Ok((Vec::new(), None));
        };
        let cols: Vec<String> = RUN_SUMMARY_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect();
        let mut q = QueryBuilder::new(format!(
            "SELECT {} FROM run_tags t JOIN runs r ON r.id = t.run_id WHERE t.key = ",
            cols.join(", ")
        ));
        q.push_bind(key).push(" AND t.value = ").push_bind(value);
        for (k, v) in rest {
            q.push(" AND EXISTS (SELECT 1 FROM run_tags o WHERE o.run_id = t.run_id AND o.key = ")
                .push_bind(k)
                .push(" AND o.value = ")
                .push_bind(v)
                .push(")");
        }
        if let Some(w) = &filter.workflow {
            q.push(" AND r.workflow_name = ").push_bind(w);
        }
        if let Some(p) = filter.parent {
            q.push(" AND r.parent_run_id = ").push_bind(p);
        }
        if let Some(s) = filter.status {
            q.push(" AND r.status = ").push_bind(s.as_str());
        }
        if let Some((at, id)) = after {
            q.push(" AND (t.created_at, t.run_id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(" ORDER BY t.created_at DESC, t.run_id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows: Vec<RunSummaryRow> = q.build_query_as().fetch_all(&self.pool).await?;
        page(rows, limit)
    }
}
