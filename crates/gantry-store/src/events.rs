//! Events sent from outside (SPEC section 9): recorded once per `id`, and
//! listed newest first with what each matched.

use crate::{Reads, Result, Store};
use chrono::{DateTime, Utc};
use gantry_dag::NewEvent;
use serde::Serialize;
use serde_json::Value;

/// A stored event and what it matched.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: String,
    pub name: String,
    pub key: String,
    pub data: Value,
    pub received_at: DateTime<Utc>,
    /// `wait` nodes it completed.
    pub waits_matched: i32,
    /// Runs its triggers started.
    pub runs_started: i32,
    #[serde(skip)]
    pub seq: i64,
    /// Every trigger listening for it has run (see `triggers.rs`).
    #[serde(skip)]
    pub triggered: bool,
}

pub(crate) const EVENT_COLS: &str =
    "id, name, key, data, received_at, waits_matched, runs_started, seq, triggered";

/// Result of [`Store::record_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    New(EventRecord),
    /// The same event under an `id` already used: the first answer.
    Existing(EventRecord),
    /// Another event under an `id` already used: nothing was written.
    Conflict,
}

/// `GET /v1/events` filters: exact name and key, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub name: Option<String>,
    pub key: Option<String>,
    pub limit: u32,
    /// The `seq` of the last event of the previous page, as handed out.
    pub cursor: Option<String>,
}

/// Whether `cursor` is one [`Reads::list_events`] hands out.
pub fn is_valid_event_cursor(cursor: &str) -> bool {
    cursor.parse::<i64>().is_ok_and(|n| n > 0)
}

impl Store {
    /// Record `event` (checked by the caller) under its `id`, or a new
    /// UUIDv7 when it has none, and complete the waits it matches
    /// (`waits.rs`) in the same transaction. `request_hash` identifies its
    /// content: an `id` already used with the same hash is `Existing`, with
    /// another `Conflict`; neither matches anything again.
    pub async fn record_event(&self, event: &NewEvent, request_hash: &str) -> Result<Recorded> {
        let id = event
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let mut tx = self.pool.begin().await?;
        // Before the insert: a node beginning to wait for this name and key
        // either committed already (and is matched below) or waits for this
        // transaction and finds the event then.
        sqlx::query(&format!(
            "SELECT pg_advisory_xact_lock({})",
            crate::waits::wait_lock("$1::text", "$2::text")
        ))
        .bind(&event.name)
        .bind(&event.key)
        .execute(&mut *tx)
        .await?;
        let new: Option<EventRecord> = sqlx::query_as(&format!(
            "INSERT INTO events (id, name, key, data, request_hash, triggered)
             VALUES ($1, $2, $3, $4, $5,
                     NOT EXISTS (SELECT 1 FROM triggers WHERE kind = 'event' AND event = $2))
             ON CONFLICT (id) DO NOTHING
             RETURNING {EVENT_COLS}"
        ))
        .bind(&id)
        .bind(&event.name)
        .bind(&event.key)
        .bind(&event.data)
        .bind(request_hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(mut e) = new {
            let matched =
                crate::waits::match_waits(&mut tx, (e.seq, &e.name, &e.key), &e.data).await?;
            e.waits_matched = i32::try_from(matched).unwrap_or(i32::MAX);
            if e.triggered {
                // No trigger to run: this is the answer.
                sqlx::query(
                    "UPDATE events SET answered = jsonb_build_object(
                         'waits_matched', $2::int, 'runs_started', 0)
                     WHERE seq = $1",
                )
                .bind(e.seq)
                .bind(e.waits_matched)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            return Ok(Recorded::New(e));
        }
        tx.rollback().await?;
        // The id was used (ON CONFLICT waited for that insert to commit).
        let existing: Option<ExistingRow> = sqlx::query_as(&format!(
            "SELECT request_hash, answered, {EVENT_COLS} FROM events WHERE id = $1"
        ))
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match existing {
            Some(e) if e.request_hash == request_hash => {
                let mut first = e.event;
                // The first answer, not what the event matched since.
                if let Some(a) = e.answered {
                    let count = |k: &str| a.get(k).and_then(Value::as_i64).unwrap_or(0);
                    first.waits_matched = i32::try_from(count("waits_matched")).unwrap_or(0);
                    first.runs_started = i32::try_from(count("runs_started")).unwrap_or(0);
                }
                Recorded::Existing(first)
            }
            _ => Recorded::Conflict,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ExistingRow {
    request_hash: String,
    answered: Option<Value>,
    #[sqlx(flatten)]
    event: EventRecord,
}

impl Reads {
    /// One page of events, newest first, and the cursor of the next page.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
    ) -> Result<(Vec<EventRecord>, Option<String>)> {
        let before: Option<i64> = filter.cursor.as_deref().and_then(|c| c.parse().ok());
        let limit = i64::from(filter.limit.max(1));
        let mut rows: Vec<EventRecord> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLS} FROM events
             WHERE ($1::text IS NULL OR name = $1)
               AND ($2::text IS NULL OR key = $2)
               AND ($3::int8 IS NULL OR seq < $3)
             ORDER BY seq DESC
             LIMIT $4"
        ))
        .bind(&filter.name)
        .bind(&filter.key)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Ok((rows, next))
    }
}
