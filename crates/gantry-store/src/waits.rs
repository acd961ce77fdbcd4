//! Waits of `wait` nodes (SPEC 2.1 and 9, migration 0016): recorded when a
//! node begins to wait (matched at once by an event already received since
//! its run started), matched by an event sent later (`events.rs`), timed
//! out by the reconciler, closed when their node ends another way.
//!
//! Lock order, the same in every writer: the advisory lock of the wait's
//! (name, key) first, then node rows, then wait rows, then attempts. The
//! advisory lock makes "an event arrives while a node begins to wait" two
//! transactions in a row, so the later one sees the earlier one's row and
//! exactly one of them makes the match.

use crate::rows::i32_of;
use crate::{Result, RunTx, Store, ADVANCE_CHANNEL};
use gantry_dag::{NodeIdx, WaitStart};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// The advisory lock key of an event name and key, as SQL over two text
/// expressions (the same expression wherever it is taken).
pub(crate) fn wait_lock(name: &str, key: &str) -> String {
    format!("hashtextextended({name} || chr(31) || {key}, 0)")
}

/// What an attempt that timed out stores as its error, before the event
/// name (SPEC 2.1: `timed out waiting for event NAME`).
pub const WAIT_TIMEOUT_ERROR: &str = "timed out waiting for event ";

impl RunTx<'_> {
    /// Take the advisory locks of `waits`' (name, key)s, in key order, so
    /// that no event for them commits in between. [`RunTx::save`] calls it
    /// before it writes any node.
    pub(crate) async fn lock_wait_keys(&mut self, waits: &[WaitStart]) -> Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = waits.iter().map(|w| w.event.as_str()).collect();
        let keys: Vec<&str> = waits.iter().map(|w| w.key.as_str()).collect();
        sqlx::query(&format!(
            "SELECT pg_advisory_xact_lock(h) FROM (
                 SELECT DISTINCT {} AS h FROM unnest($1::text[], $2::text[]) AS t(n, k)
             ) l ORDER BY h",
            wait_lock("t.n", "t.k")
        ))
        .bind(&names)
        .bind(&keys)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Record `waits` of `run` (their nodes are saved `waiting`): an attempt
    /// and a wait row each, with the deadline. A wait for which an event
    /// was received since the run started is matched at once by the
    /// earliest such event: its attempt succeeds with the event's data, the
    /// node is flagged `pending_advance` and the coordinators are woken.
    /// Returns how many matched at once.
    pub(crate) async fn begin_waits(&mut self, run: Uuid, waits: &[WaitStart]) -> Result<u64> {
        if waits.is_empty() {
            return Ok(0);
        }
        let idxs: Vec<i32> = waits.iter().map(|w| i32_of(w.node)).collect();
        let attempts: Vec<i32> = waits.iter().map(|w| i32_of(w.attempt)).collect();
        let names: Vec<&str> = waits.iter().map(|w| w.event.as_str()).collect();
        let keys: Vec<&str> = waits.iter().map(|w| w.key.as_str()).collect();
        let timeouts: Vec<i64> = waits
            .iter()
            .map(|w| i64::try_from(w.timeout_s).unwrap_or(i64::MAX))
            .collect();
        let matched: Vec<(i32,)> = sqlx::query_as(
            "WITH w AS (
                 SELECT t.*, r.created_at AS run_started_at
                 FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::bigint[])
                     AS t(idx, attempt, name, key, timeout_s)
                 CROSS JOIN (SELECT created_at FROM runs WHERE id = $1) r
             ), found AS (
                 SELECT w.*, e.seq, e.data FROM w
                 LEFT JOIN LATERAL (
                     SELECT e.seq, e.data FROM events e
                     WHERE e.name = w.name AND e.key = w.key
                       AND e.received_at >= w.run_started_at
                     ORDER BY e.seq LIMIT 1
                 ) e ON true
             ), opened AS (
                 INSERT INTO attempts (run_id, idx, attempt, worker, status, output, finished_at)
                 SELECT $1, idx, attempt, 'event',
                        CASE WHEN seq IS NULL THEN 'running' ELSE 'succeeded' END,
                        data, CASE WHEN seq IS NULL THEN NULL ELSE clock_timestamp() END
                 FROM found
                 ON CONFLICT DO NOTHING
                 RETURNING idx
             ), recorded AS (
                 INSERT INTO waits (run_id, idx, attempt, name, key, run_started_at, deadline,
                                    state, event_seq, ended_at)
                 SELECT $1, f.idx, f.attempt, f.name, f.key, f.run_started_at,
                        clock_timestamp() + LEAST(f.timeout_s, $7)::float8 * interval '1 second',
                        CASE WHEN f.seq IS NULL THEN 'open' ELSE 'matched' END, f.seq,
                        CASE WHEN f.seq IS NULL THEN NULL ELSE clock_timestamp() END
                 FROM found f JOIN opened o ON o.idx = f.idx
                 ON CONFLICT DO NOTHING
                 RETURNING idx, event_seq
             ), counted AS (
                 UPDATE events e SET waits_matched = e.waits_matched + c.n
                 FROM (SELECT event_seq, count(*)::int AS n FROM recorded
                       WHERE event_seq IS NOT NULL GROUP BY event_seq) c
                 WHERE e.seq = c.event_seq
             )
             SELECT idx FROM recorded WHERE event_seq IS NOT NULL",
        )
        .bind(run)
        .bind(&idxs)
        .bind(&attempts)
        .bind(&names)
        .bind(&keys)
        .bind(&timeouts)
        .bind(i64::try_from(gantry_dag::limits::MAX_WAIT_TIMEOUT_S).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await?;
        let matched: Vec<i32> = matched.into_iter().map(|(i,)| i).collect();
        sqlx::query(
            "UPDATE nodes SET started_at = clock_timestamp(),
                              pending_advance = pending_advance OR idx = ANY($3)
             WHERE run_id = $1 AND idx = ANY($2)",
        )
        .bind(run)
        .bind(&idxs)
        .bind(&matched)
        .execute(&mut *self.tx)
        .await?;
        if !matched.is_empty() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(ADVANCE_CHANNEL)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(matched.len() as u64)
    }

    /// Close the open waits of `run`'s nodes in `ended` (they failed, were
    /// skipped or cancelled while waiting): no event matches them any more.
    pub(crate) async fn close_waits(&mut self, run: Uuid, ended: &[i32]) -> Result<()> {
        sqlx::query(
            "UPDATE waits SET state = 'closed', ended_at = clock_timestamp()
             WHERE run_id = $1 AND idx = ANY($2) AND state = 'open'",
        )
        .bind(run)
        .bind(ended)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// The open waits an event named `name` with `key`, received at the
/// current transaction's time, matches: each one's attempt succeeds with
/// `data` and its node is flagged `pending_advance`. The caller holds the
/// (name, key) advisory lock. Returns how many matched.
pub(crate) async fn match_waits(
    tx: &mut sqlx::PgConnection,
    (seq, name, key): (i64, &str, &str),
    data: &Value,
) -> Result<u64> {
    let (matched,): (i64,) = sqlx::query_as(
        "WITH candidates AS (
             SELECT w.run_id, w.idx, w.attempt FROM waits w
             WHERE w.name = $2 AND w.key = $3 AND w.state = 'open'
               AND w.run_started_at <= (SELECT received_at FROM events WHERE seq = $1)
         ), locked AS (
             SELECT n.run_id, n.idx, n.attempt FROM nodes n
             JOIN candidates c ON n.run_id = c.run_id AND n.idx = c.idx AND n.attempt = c.attempt
             WHERE n.status = 'waiting'
             ORDER BY n.run_id, n.idx
             FOR NO KEY UPDATE OF n
         ), matched AS (
             UPDATE waits w SET state = 'matched', event_seq = $1, ended_at = clock_timestamp()
             FROM locked l
             WHERE w.run_id = l.run_id AND w.idx = l.idx AND w.attempt = l.attempt
               AND w.state = 'open'
             RETURNING w.run_id, w.idx, w.attempt
         ), done AS (
             UPDATE attempts a SET status = 'succeeded', output = $4,
                                   finished_at = clock_timestamp()
             FROM matched m
             WHERE a.run_id = m.run_id AND a.idx = m.idx AND a.attempt = m.attempt
               AND a.finished_at IS NULL
             RETURNING a.run_id, a.idx
         ), flagged AS (
             UPDATE nodes n SET pending_advance = true
             FROM done d WHERE n.run_id = d.run_id AND n.idx = d.idx
             RETURNING 1
         )
         SELECT count(*) FROM flagged",
    )
    .bind(seq)
    .bind(name)
    .bind(key)
    .bind(data)
    .fetch_one(&mut *tx)
    .await?;
    if matched > 0 {
        sqlx::query("UPDATE events SET waits_matched = waits_matched + $2 WHERE seq = $1")
            .bind(seq)
            .bind(i32::try_from(matched).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(ADVANCE_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    Ok(u64::try_from(matched).unwrap_or(0))
}

impl Store {
    /// Time out up to `limit` open waits past their deadline: each one's
    /// attempt fails as `timed_out` with `timed out waiting for event NAME`,
    /// its node is flagged `pending_advance` (the state machine fails or
    /// skips it), and the coordinators are woken. Waits whose node is
    /// locked are left for the next pass. Returns how many timed out.
    pub async fn expire_waits(&self, limit: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let (expired,): (i64,) = sqlx::query_as(
            "WITH due AS (
                 SELECT run_id, idx, attempt FROM waits
                 WHERE state = 'open' AND deadline < clock_timestamp()
                 ORDER BY deadline LIMIT $1
             ), locked AS (
                 SELECT n.run_id, n.idx FROM nodes n
                 JOIN due d ON n.run_id = d.run_id AND n.idx = d.idx
                 ORDER BY n.run_id, n.idx
                 FOR NO KEY UPDATE OF n SKIP LOCKED
             ), closed AS (
                 UPDATE waits w SET state = 'timed_out', ended_at = clock_timestamp()
                 FROM due d JOIN locked l ON l.run_id = d.run_id AND l.idx = d.idx
                 WHERE w.run_id = d.run_id AND w.idx = d.idx AND w.attempt = d.attempt
                   AND w.state = 'open'
                 RETURNING w.run_id, w.idx, w.attempt, w.name
             ), done AS (
                 UPDATE attempts a
                 SET status = 'failed', retryable = false, timed_out = true,
                     error = $2 || c.name, finished_at = clock_timestamp()
                 FROM closed c
                 WHERE a.run_id = c.run_id AND a.idx = c.idx AND a.attempt = c.attempt
                   AND a.finished_at IS NULL
                 RETURNING a.run_id, a.idx, a.attempt
             ), flagged AS (
                 UPDATE nodes n SET pending_advance = true
                 FROM done d
                 WHERE n.run_id = d.run_id AND n.idx = d.idx AND n.attempt = d.attempt
                   AND n.status = 'waiting'
                 RETURNING 1
             )
             SELECT count(*) FROM flagged",
        )
        .bind(limit)
        .bind(WAIT_TIMEOUT_ERROR)
        .fetch_one(&mut *tx)
        .await?;
        if expired > 0 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(ADVANCE_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(expired).unwrap_or(0))
    }
}

/// A wait row as [`crate::Reads::waits_of`] reads it: idx, event name,
/// key, deadline, the matching event's id.
type WaitRow = (
    i32,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    Option<String>,
);

/// Where a waiting node's wait stands, for its run page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitView {
    pub event: String,
    pub key: String,
    pub deadline: chrono::DateTime<chrono::Utc>,
    /// The id of the event that matched it, once one did.
    pub matched_event: Option<String>,
}

impl crate::Reads {
    /// The latest wait of each node of `run` that began to wait.
    pub async fn waits_of(&self, run: Uuid) -> Result<HashMap<NodeIdx, WaitView>> {
        let rows: Vec<WaitRow> = sqlx::query_as(
            "SELECT DISTINCT ON (w.idx) w.idx, w.name, w.key, w.deadline, e.id
                 FROM waits w LEFT JOIN events e ON e.seq = w.event_seq
                 WHERE w.run_id = $1
                 ORDER BY w.idx, w.attempt DESC",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(idx, event, key, deadline, matched_event)| {
                let view = WaitView {
                    event,
                    key,
                    deadline,
                    matched_event,
                };
                (crate::rows::u32_of(idx), view)
            })
            .collect())
    }
}
