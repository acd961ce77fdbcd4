//! Workflow triggers (SPEC section 9): the cron ticks a coordinator's
//! scheduler starts, the runs an event starts through event triggers, the
//! schedules `GET /v1/schedules` lists, and pausing a workflow's triggers.
//!
//! Every run a trigger starts has an idempotency key that names what
//! started it: `cron:WORKFLOW:INDEX:TICK` for a tick, `event:ID:WORKFLOW`
//! for an event. Coordinators racing for one tick, an event sent twice, a
//! process killed between a start and its bookkeeping: each starts the run
//! once, because the second start finds the first.

use crate::{Engine, Error, Result, Started};
use chrono::{DateTime, Utc};
use gantry_dag::{tick_key, Trigger};
use gantry_store::{CronRow, EventRecord};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// One cron trigger as `GET /v1/schedules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    pub workflow: String,
    pub version: i32,
    /// Its index in the version's `triggers`.
    pub index: u32,
    pub cron: String,
    pub timezone: String,
    /// The next tick that will run (none while paused).
    pub next_tick: Option<DateTime<Utc>>,
    pub last_tick: Option<DateTime<Utc>>,
    /// The run `last_tick` started.
    pub last_run: Option<Uuid>,
    pub paused: bool,
}

impl Engine {
    /// Start the run of every cron tick due at `now` that has not run: the
    /// latest tick after the trigger's last one (and after its `since`),
    /// never the ones missed before it. A trigger that cannot start its
    /// run is logged and the others go on. Returns the earliest next tick,
    /// for the scheduler to sleep until.
    pub async fn fire_schedules(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let mut earliest: Option<DateTime<Utc>> = None;
        for row in self.reads().cron_triggers().await? {
            metrics::counter!(gantry_telemetry::SCHEDULE_TICKS, "workflow" => row.workflow.clone())
                .increment(0);
            if row.paused {
                continue;
            }
            let dag = self.dag(row.workflow_id).await?;
            let Some(Trigger::Cron {
                schedule, input, ..
            }) = dag.triggers().get(row.idx as usize)
            else {
                tracing::warn!(workflow = %row.workflow, trigger = row.idx, "cron trigger row without its trigger");
                continue;
            };
            let after = row.last_tick.map_or(row.since, |t| t.max(row.since));
            if let Some(tick) = schedule.latest_due(after, now) {
                match self.start_tick(&row, tick, input).await {
                    Ok(()) => {}
                    // An outage stops the pass; a full queue is this trigger's.
                    Err(e) if e.is_retryable() && !matches!(e, Error::QueueFull { .. }) => {
                        return Err(e)
                    }
                    Err(e) => {
                        tracing::warn!(workflow = %row.workflow, trigger = row.idx, %tick, error = %e, "a cron tick could not start its run");
                    }
                }
            }
            if let Some(next) = schedule.next_after(now) {
                earliest = Some(earliest.map_or(next, |e| e.min(next)));
            }
        }
        Ok(earliest)
    }

    async fn start_tick(&self, row: &CronRow, tick: DateTime<Utc>, input: &Value) -> Result<()> {
        let key = tick_key(&row.workflow, row.idx as usize, tick);
        let wf = self
            .reads()
            .workflow_by_id(row.workflow_id)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("workflow {} missing", row.workflow_id)))?;
        let run = match self.start_run(&wf, input, Some((&key, &key))).await? {
            Started::New(run) => {
                tracing::info!(workflow = %row.workflow, %tick, run = %run.id, "cron tick started a run");
                metrics::counter!(gantry_telemetry::SCHEDULE_TICKS, "workflow" => row.workflow.clone())
                    .increment(1);
                run.id
            }
            // Another coordinator started it, or this one before a crash.
            Started::Existing(run) => run.id,
            Started::Conflict => {
                return Err(Error::Conflict(format!(
                    "idempotency key {key} belongs to another run"
                )))
            }
        };
        self.store
            .note_tick((&row.workflow, row.idx), tick, run)
            .await?;
        Ok(())
    }

    /// Every cron trigger with its next tick after `now`.
    pub async fn schedules(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleView>> {
        let mut out = Vec::new();
        for row in self.reads().cron_triggers().await? {
            let dag = self.dag(row.workflow_id).await?;
            let next_tick = match dag.triggers().get(row.idx as usize) {
                Some(Trigger::Cron { schedule, .. }) if !row.paused => schedule.next_after(now),
                _ => None,
            };
            out.push(ScheduleView {
                timezone: row.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
                workflow: row.workflow,
                version: row.version,
                index: row.idx,
                cron: row.cron,
                next_tick,
                last_tick: row.last_tick,
                last_run: row.last_run_id,
                paused: row.paused,
            });
        }
        Ok(out)
    }

    /// Pause or resume `workflow`'s triggers (ticks and events meanwhile
    /// are never run later). `NotFound` for an unknown workflow.
    pub async fn set_paused(&self, workflow: &str, paused: bool) -> Result<()> {
        if self.store.set_paused(workflow, paused).await? {
            Ok(())
        } else {
            Err(Error::WorkflowNotFound(workflow.to_owned()))
        }
    }

    /// Start a run of every workflow whose latest version has an event
    /// trigger that `event` satisfies (one run per workflow, however many
    /// of its triggers match), with the event's data as input, unless the
    /// workflow is paused; then note the event as triggered. Returns how
    /// many runs this call started. A workflow whose run cannot start is
    /// logged and the others go on. `answering`: the event's sender is
    /// answered with what this call did (its first answer).
    pub(crate) async fn run_event_triggers(
        &self,
        event: &EventRecord,
        answering: bool,
    ) -> Result<u32> {
        let rows = self.reads().event_triggers(&event.name).await?;
        let seen = json!({"name": event.name, "key": event.key, "data": event.data});
        let mut started = 0;
        let mut done: Vec<&str> = Vec::new();
        for row in &rows {
            if row.paused || done.contains(&row.workflow.as_str()) {
                continue;
            }
            let dag = self.dag(row.workflow_id).await?;
            let Some(trigger) = dag.triggers().get(row.idx as usize) else {
                continue;
            };
            match trigger.matches(&seen) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(workflow = %row.workflow, trigger = row.idx, event = %event.id, error = %e, "an event trigger's filter failed; no run");
                    continue;
                }
            }
            done.push(&row.workflow);
            match self.start_for_event(event, row.workflow_id).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(e) if e.is_retryable() && !matches!(e, Error::QueueFull { .. }) => {
                    return Err(e)
                }
                Err(e) => {
                    tracing::warn!(workflow = %row.workflow, event = %event.id, error = %e, "an event trigger could not start its run");
                }
            }
        }
        let answer = answering.then_some(event.waits_matched);
        self.store
            .mark_triggered(event.seq, started, answer)
            .await?;
        Ok(started)
    }

    /// Start `event`'s run of workflow version `workflow_id`; `false` when
    /// it was started before.
    async fn start_for_event(&self, event: &EventRecord, workflow_id: i64) -> Result<bool> {
        let wf = self
            .reads()
            .workflow_by_id(workflow_id)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("workflow {workflow_id} missing")))?;
        let key = format!("event:{}:{}", event.id, wf.name);
        Ok(
            match self.start_run(&wf, &event.data, Some((&key, &key))).await? {
                Started::New(_) => true,
                Started::Existing(_) => false,
                Started::Conflict => {
                    return Err(Error::Conflict(format!(
                        "idempotency key {key} belongs to another run"
                    )))
                }
            },
        )
    }

    /// Run the triggers of at most `limit` events stored more than five
    /// seconds ago whose triggers never ran (their sender died after the
    /// commit). Returns how many runs that started.
    pub async fn retrigger_events(&self, limit: i64) -> Result<u32> {
        let mut started = 0;
        let older = std::time::Duration::from_secs(5);
        for event in self.reads().untriggered_events(older, limit).await? {
            started += self.run_event_triggers(&event, false).await?;
        }
        Ok(started)
    }
}
