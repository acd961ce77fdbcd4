//! Workflow triggers as the store keeps them (SPEC section 9, migration
//! 0017): the rows of each workflow's latest triggers, replaced with every
//! version, the cron triggers' progress, paused workflows, and the events
//! whose triggers still have to run.

use crate::{Reads, Result, Store};
use chrono::{DateTime, Utc};
use gantry_dag::WorkflowDef;
use sqlx::PgConnection;
use uuid::Uuid;

/// One cron trigger and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CronRow {
    pub workflow: String,
    /// Its index in the version's `triggers`.
    #[sqlx(try_from = "i32")]
    pub idx: u32,
    pub workflow_id: i64,
    pub version: i32,
    pub cron: String,
    pub timezone: Option<String>,
    /// Only ticks after this may run.
    pub since: DateTime<Utc>,
    pub last_tick: Option<DateTime<Utc>>,
    pub last_run_id: Option<Uuid>,
    pub paused: bool,
}

/// An event trigger listening for one event name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventTriggerRow {
    pub workflow: String,
    #[sqlx(try_from = "i32")]
    pub idx: u32,
    pub workflow_id: i64,
    pub paused: bool,
}

/// Replace the trigger rows of `def.name` with those of version `id`
/// (checked by the caller), in the registration's transaction. A cron
/// trigger whose expression and time zone are unchanged keeps its
/// progress; any other starts from now.
pub(crate) async fn replace_triggers(
    tx: &mut PgConnection,
    id: i64,
    def: &WorkflowDef,
) -> Result<()> {
    let mut idxs = Vec::new();
    let mut kinds = Vec::new();
    let mut crons = Vec::new();
    let mut zones = Vec::new();
    let mut events = Vec::new();
    for (i, t) in def.triggers.iter().enumerate() {
        idxs.push(i32::try_from(i).unwrap_or(i32::MAX));
        kinds.push(if t.cron.is_some() { "cron" } else { "event" });
        crons.push(t.cron.as_deref());
        zones.push(t.timezone.as_deref());
        events.push(t.event.as_deref());
    }
    sqlx::query(
        "WITH old AS (
             DELETE FROM triggers WHERE workflow = $1 RETURNING *
         )
         INSERT INTO triggers (workflow, idx, workflow_id, kind, cron, timezone, event,
                               since, last_tick, last_run_id)
         SELECT $1, t.idx, $2, t.kind, t.cron, t.timezone, t.event,
                COALESCE(o.since, clock_timestamp()), o.last_tick, o.last_run_id
         FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS t(idx, kind, cron, timezone, event)
         LEFT JOIN old o ON o.idx = t.idx AND t.kind = 'cron' AND o.kind = 'cron'
             AND o.cron = t.cron AND o.timezone IS NOT DISTINCT FROM t.timezone",
    )
    .bind(&def.name)
    .bind(id)
    .bind(&idxs)
    .bind(&kinds)
    .bind(&crons)
    .bind(&zones)
    .bind(&events)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

const CRON_COLS: &str = "t.workflow, t.idx, t.workflow_id, w.version, t.cron, t.timezone, \
     t.since, t.last_tick, t.last_run_id, (p.workflow IS NOT NULL) AS paused";

impl Reads {
    /// Every cron trigger, by workflow and index.
    pub async fn cron_triggers(&self) -> Result<Vec<CronRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {CRON_COLS} FROM triggers t
             JOIN workflows w ON w.id = t.workflow_id
             LEFT JOIN workflow_pauses p ON p.workflow = t.workflow
             WHERE t.kind = 'cron'
             ORDER BY t.workflow, t.idx"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The event triggers listening for `name`.
    pub async fn event_triggers(&self, name: &str) -> Result<Vec<EventTriggerRow>> {
        Ok(sqlx::query_as(
            "SELECT t.workflow, t.idx, t.workflow_id, (p.workflow IS NOT NULL) AS paused
             FROM triggers t LEFT JOIN workflow_pauses p ON p.workflow = t.workflow
             WHERE t.kind = 'event' AND t.event = $1
             ORDER BY t.workflow, t.idx",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether `workflow`'s triggers are paused.
    pub async fn is_paused(&self, workflow: &str) -> Result<bool> {
        let (paused,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM workflow_pauses WHERE workflow = $1)")
                .bind(workflow)
                .fetch_one(&self.pool)
                .await?;
        Ok(paused)
    }

    /// Events stored before `older_than` ago whose triggers have not all
    /// run (their sender's process died in between), oldest first.
    pub async fn untriggered_events(
        &self,
        older_than: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<crate::EventRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {} FROM events
             WHERE NOT triggered
               AND received_at < clock_timestamp() - $1::float8 * interval '1 millisecond'
             ORDER BY seq LIMIT $2",
            crate::events::EVENT_COLS
        ))
        .bind(older_than.as_secs_f64() * 1000.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// Note that cron trigger `idx` of `workflow` started `run` for `tick`
    /// (a later tick already noted is kept).
    pub async fn note_tick(
        &self,
        (workflow, idx): (&str, u32),
        tick: DateTime<Utc>,
        run: Uuid,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE triggers SET last_tick = $3, last_run_id = $4
             WHERE workflow = $1 AND idx = $2 AND (last_tick IS NULL OR last_tick < $3)",
        )
        .bind(workflow)
        .bind(i32::try_from(idx).unwrap_or(i32::MAX))
        .bind(tick)
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pause or resume `workflow`'s triggers. Resuming moves every cron
    /// trigger's `since` to now: ticks of the pause are never run. Returns
    /// `false` when no workflow has that name.
    pub async fn set_paused(&self, workflow: &str, paused: bool) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM workflows WHERE name = $1)")
                .bind(workflow)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Ok(false);
        }
        if paused {
            sqlx::query(
                "INSERT INTO workflow_pauses (workflow) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(workflow)
            .execute(&mut *tx)
            .await?;
        } else {
            let resumed = sqlx::query("DELETE FROM workflow_pauses WHERE workflow = $1")
                .bind(workflow)
                .execute(&mut *tx)
                .await?;
            if resumed.rows_affected() > 0 {
                sqlx::query(
                    "UPDATE triggers SET since = clock_timestamp()
                     WHERE workflow = $1 AND kind = 'cron'",
                )
                .bind(workflow)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The triggers of event `seq` have all run: `runs` runs were started
    /// for it (added to its count). `answer` is the waits the event matched
    /// when it was stored, when its sender is being answered now: with
    /// `runs`, the first answer a repeat gets.
    pub async fn mark_triggered(&self, seq: i64, runs: u32, answer: Option<i32>) -> Result<()> {
        sqlx::query(
            "UPDATE events SET triggered = true, runs_started = runs_started + $2,
                 answered = COALESCE(answered, CASE WHEN $3::int IS NOT NULL THEN
                     jsonb_build_object('waits_matched', $3::int, 'runs_started', $2) END)
             WHERE seq = $1",
        )
        .bind(seq)
        .bind(i32::try_from(runs).unwrap_or(i32::MAX))
        .bind(answer)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
