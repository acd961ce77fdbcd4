//! Read models for the API and benchmarks.

use crate::rows::{u32_of, NodeRow, RunSummaryRow, NODE_COLS, RUN_SUMMARY_COLS};
use crate::{
    AttemptRecord, AttemptTimes, NodeDetail, Reads, Result, RunDetail, RunFilter, RunSummary,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::QueryBuilder;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct RunDetailRow {
    #[sqlx(flatten)]
    run: RunSummaryRow,
    input: Value,
    output: Option<Value>,
    updated_at: DateTime<Utc>,
    parent_run_id: Option<Uuid>,
    parent_idx: Option<i32>,
    parent_node: Option<String>,
    rerun_of: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i32,
    worker: String,
    status: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    exit_code: Option<i32>,
    error: Option<String>,
    log_tail: Option<String>,
}

type TimesRow = (i32, i32, DateTime<Utc>, Option<DateTime<Utc>>);

/// A page boundary: the last listed run's creation time and id. Encoded as
/// hex of `MICROS:UUID` so it stays opaque and URL-safe.
pub(crate) fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    hex::encode(format!("{}:{id}", created_at.timestamp_micros()))
}

/// 9999-12-31T23:59:59.999999Z in microseconds.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (micros, id) = raw.split_once(':')?;
    // Only times Postgres can compare with (and runs can have): 1970 to
    // the end of year 9999; anything else is no cursor we handed out.
    let micros: i64 = micros.parse().ok()?;
    if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
        return None;
    }
    let at = DateTime::from_timestamp_micros(micros)?;
    Some((at, id.parse().ok()?))
}

/// Whether `cursor` is one [`Reads::list_runs`] hands out (callers that
/// must tell a bad cursor from an empty page check it first).
pub fn is_valid_run_cursor(cursor: &str) -> bool {
    cursor.len() <= 512 && decode_cursor(cursor).is_some()
}

/// One page of runs from `limit + 1` rows, with the next page's cursor
/// when there is one more.
pub(crate) fn page(
    rows: Vec<RunSummaryRow>,
    limit: u32,
) -> Result<(Vec<RunSummary>, Option<String>)> {
    let mut runs = rows
        .into_iter()
        .map(RunSummaryRow::into_summary)
        .collect::<Result<Vec<_>>>()?;
    let next = if runs.len() > limit as usize {
        runs.truncate(limit as usize);
        runs.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    Ok((runs, next))
}

impl Reads {
    /// Runs newest first, `filter.limit` at most (clamped to 1..=500), and the
    /// cursor of the next page when there is one. A cursor that does not
    /// decode is an empty page, never an error 500.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<(Vec<RunSummary>, Option<String>)> {
        let limit = filter.limit.clamp(1, 500);
        let after = match filter.cursor.as_deref() {
            Some(c) => match decode_cursor(c) {
                Some(after) => Some(after),
                None => return Ok((Vec::new(), None)),
            },
            None => None,
        };
        if !filter.tags.is_empty() {
            return self.list_tagged_runs(filter, limit, after).await;
        }
        let mut q = QueryBuilder::new(format!("SELECT {RUN_SUMMARY_COLS} FROM runs WHERE true"));
        if let Some(w) = &filter.workflow {
            q.push(" AND workflow_name = ").push_bind(w);
        }
        if let Some(p) = filter.parent {
            q.push(" AND parent_run_id = ").push_bind(p);
        }
        if let Some(s) = filter.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some((at, id)) = after {
            q.push(" AND (created_at, id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows: Vec<RunSummaryRow> = q.build_query_as().fetch_all(&self.pool).await?;
        page(rows, limit)
    }

    pub async fn get_run(&self, id: Uuid) -> Result<Option<RunDetail>> {
        let row: Option<RunDetailRow> = sqlx::query_as(&format!(
            "SELECT {RUN_SUMMARY_COLS}, input, output, updated_at, parent_run_id, parent_idx, rerun_of,
                    (SELECT p.node_id FROM nodes p
                     WHERE p.run_id = runs.parent_run_id AND p.idx = runs.parent_idx)
                        AS parent_node
             FROM runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        // The nodes of the definition; instances are counted, not listed.
        let nodes: Vec<NodeRow> = sqlx::query_as(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE run_id = $1 AND idx < $2 ORDER BY idx"
        ))
        .bind(id)
        .bind(crate::rows::i32_of(gantry_dag::FIRST_SLOT))
        .fetch_all(&self.pool)
        .await?;
        let mut waits = self.waits_of(id).await?;
        let reruns: Vec<(Uuid,)> =
            sqlx::query_as("SELECT id FROM runs WHERE rerun_of = $1 ORDER BY created_at, id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let mut counts = if nodes.iter().any(|n| n.items.is_some()) {
            self.instance_counts(id).await?
        } else {
            Default::default()
        };
        let nodes = nodes
            .into_iter()
            .map(|n| {
                let idx = crate::rows::u32_of(n.idx);
                let map = n.items.is_some();
                let mut summary = n.into_summary()?;
                summary.wait = waits.remove(&idx);
                if map {
                    summary.instances = Some(
                        counts
                            .remove(&idx)
                            .unwrap_or_else(|| [("total".to_owned(), 0)].into_iter().collect()),
                    );
                }
                Ok(summary)
            })
            .collect::<Result<Vec<_>>>()?;
        let parent = match (row.parent_run_id, row.parent_idx) {
            (Some(run), Some(idx)) => {
                let slot = gantry_dag::Slot::of(u32_of(idx));
                let node = row.parent_node.unwrap_or_default();
                // An instance's node_id is `NODE[INDEX]`.
                let node = match slot.item() {
                    Some(_) => node.split('[').next().unwrap_or_default().to_owned(),
                    None => node,
                };
                Some(crate::ParentView {
                    run,
                    node,
                    index: slot.item(),
                })
            }
            _ => None,
        };
        Ok(Some(RunDetail {
            run: row.run.into_summary()?,
            input: row.input,
            output: row.output,
            parent,
            rerun_of: row.rerun_of,
            reruns: reruns.into_iter().map(|(r,)| r).collect(),
            updated_at: row.updated_at,
            nodes,
        }))
    }

    /// One node by id, with every attempt oldest first. Only the
    /// definition's nodes are looked at (an instance's `NODE[INDEX]` is not
    /// a node id).
    pub async fn get_node(&self, run: Uuid, node_id: &str) -> Result<Option<NodeDetail>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            node: NodeRow,
            depends_on: Option<Value>,
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {cols}, w.definition -> 'nodes' -> n.idx -> 'depends_on' AS depends_on
             FROM nodes n
             JOIN runs r ON r.id = n.run_id
             JOIN workflows w ON w.id = r.workflow_id
             WHERE n.run_id = $1 AND n.idx < $3 AND n.node_id = $2",
            cols = NODE_COLS
                .split(", ")
                .map(|c| format!("n.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(run)
        .bind(node_id)
        .bind(crate::rows::i32_of(gantry_dag::FIRST_SLOT))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT attempt, worker, status, started_at, finished_at, exit_code, error, log_tail
             FROM attempts WHERE run_id = $1 AND idx = $2 ORDER BY attempt",
        )
        .bind(run)
        .bind(row.node.idx)
        .fetch_all(&self.pool)
        .await?;
        // A workflow node's child, or those of its instances' slots.
        let idx = crate::rows::u32_of(row.node.idx);
        let (from, to) = if idx < gantry_dag::FIRST_SLOT {
            let first = gantry_dag::instance_slot(idx, 0);
            (first, gantry_dag::instance_slot(idx, gantry_dag::MAX_ITEMS))
        } else {
            (idx, idx)
        };
        let children: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM runs WHERE parent_run_id = $1
               AND (parent_idx = $2 OR (parent_idx >= $3 AND parent_idx < $4))
             ORDER BY parent_idx",
        )
        .bind(run)
        .bind(row.node.idx)
        .bind(crate::rows::i32_of(from))
        .bind(crate::rows::i32_of(to))
        .fetch_all(&self.pool)
        .await?;
        let depends_on = match row.depends_on {
            Some(v) => serde_json::from_value(v).map_err(|e| crate::Error::Corrupt {
                what: "workflow",
                reason: format!("depends_on of {node_id}: {e}"),
            })?,
            None => Vec::new(),
        };
        let is_map = row.node.items.is_some();
        let mut node = row.node.into_summary()?;
        node.wait = self.waits_of(run).await?.remove(&idx);
        if is_map {
            // A map node's counts, as the run detail shows them.
            let mut counts = self.node_instance_counts(run, idx).await?;
            counts.entry("total".to_owned()).or_insert(0);
            node.instances = Some(counts);
        }
        Ok(Some(NodeDetail {
            node,
            run_id: run,
            depends_on,
            attempts_detail: attempts
                .into_iter()
                .map(|a| AttemptRecord {
                    attempt: u32_of(a.attempt),
                    worker: a.worker,
                    status: a.status,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                    exit_code: a.exit_code,
                    error: a.error,
                    log_tail: a.log_tail,
                })
                .collect(),
            child_runs: children.into_iter().map(|(id,)| id).collect(),
        }))
    }

    /// Every attempt's start and finish, for benchmarks.
    pub async fn attempt_times(&self, run: Uuid) -> Result<Vec<AttemptTimes>> {
        let rows: Vec<TimesRow> = sqlx::query_as(
            "SELECT idx, attempt, started_at, finished_at FROM attempts
             WHERE run_id = $1 ORDER BY idx, attempt",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(idx, attempt, started_at, finished_at)| AttemptTimes {
                node: u32_of(idx),
                attempt: u32_of(attempt),
                started_at,
                finished_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_garbage_is_rejected() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("12:not-a-uuid")), None);
        assert_eq!(decode_cursor(""), None);
        let far = hex::encode(format!("-99999999999999999:{id}"));
        assert_eq!(decode_cursor(&far), None, "out of Postgres' range");
        let far = hex::encode(format!("{}:{id}", i64::MAX));
        assert_eq!(decode_cursor(&far), None, "out of range");
    }
}
