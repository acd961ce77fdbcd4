//! `/v1/queues`: queue inspection (job counts per state, jobs by state) and
//! replay of dead jobs.

use super::{non_empty, page_limit, path_name, PathParams, QueryParams};
use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use gantry_queue::{JobState, JobView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/queues", get(list))
        .route("/v1/queues/{queue}/jobs", get(jobs))
        .route("/v1/queues/{queue}/dead/{job}/replay", post(replay))
}

/// Job counts of one queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueView {
    pub(crate) name: String,
    pub(crate) ready: u64,
    pub(crate) delayed: u64,
    pub(crate) in_flight: u64,
    pub(crate) dead: u64,
}

/// Every queue that has had a job.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueList {
    pub(crate) queues: Vec<QueueView>,
}

/// Every queue with its job counts.
#[utoipa::path(
    get,
    path = "/v1/queues",
    tag = "queues",
    responses(
        (status = 200, description = "job counts per queue", body = QueueList),
        (status = 503, description = "redis unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(ctx): State<Ctx>) -> Result<Json<QueueList>> {
    let queues = ctx
        .engine()
        .all_queue_stats()
        .await?
        .into_iter()
        .map(|(name, s)| QueueView {
            name,
            ready: s.ready,
            delayed: s.delayed,
            in_flight: s.in_flight,
            dead: s.dead,
        })
        .collect();
    Ok(Json(QueueList { queues }))
}

/// Query of `GET /v1/queues/{queue}/jobs`; parsed by hand so every mistake
/// is a 422 naming its field.
#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One job in a queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobItem {
    /// `RUN_ID:NODE_INDEX` for node jobs.
    pub(crate) id: String,
    /// `ready`, `delayed`, `in_flight` or `dead`.
    pub(crate) state: String,
    /// The job's payload (JSON when it parses, else the raw text).
    #[schema(value_type = Object)]
    pub(crate) payload: Value,
    pub(crate) entry: Option<String>,
    /// The worker holding it (in flight).
    pub(crate) worker: Option<String>,
    pub(crate) deliveries: Option<u64>,
    pub(crate) idle_ms: Option<u64>,
    /// When it is due (delayed) or when it died (dead), unix ms.
    pub(crate) at_ms: Option<u64>,
    /// Why it died (dead).
    pub(crate) error: Option<String>,
}

impl From<JobView> for JobItem {
    fn from(j: JobView) -> Self {
        let state = serde_json::to_value(j.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            id: j.id,
            state,
            payload: serde_json::from_str(&j.payload).unwrap_or(Value::String(j.payload)),
            entry: j.entry,
            worker: j.consumer,
            deliveries: j.deliveries,
            idle_ms: j.idle_ms,
            at_ms: j.at_ms,
            error: j.error,
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    pub(crate) jobs: Vec<JobItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

fn jobs_query(q: JobsQuery) -> Result<(JobState, usize, Option<String>)> {
    let state = match non_empty(q.state).as_deref() {
        None | Some("ready") => JobState::Ready,
        Some("delayed") => JobState::Delayed,
        Some("in_flight") => JobState::InFlight,
        Some("dead") => JobState::Dead,
        Some(other) => {
            return Err(Error::invalid(
                "state",
                "bad_value",
                format!("state must be ready, delayed, in_flight or dead, got {other:?}"),
            ))
        }
    };
    let limit = page_limit(q.limit)? as usize;
    let cursor = non_empty(q.cursor);
    if cursor
        .as_deref()
        .is_some_and(|c| !gantry_queue::is_valid_cursor(state, c))
    {
        return Err(Error::bad_cursor("cursor"));
    }
    Ok((state, limit, cursor))
}

/// A queue's jobs in one state, paginated.
#[utoipa::path(
    get,
    path = "/v1/queues/{queue}/jobs",
    tag = "queues",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("state" = Option<String>, Query, description = "ready (default), delayed, in_flight or dead"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "a page of jobs", body = JobList),
        (status = 404, description = "not a queue name", body = ErrorBody),
        (status = 422, description = "bad state or limit, or `bad_cursor`", body = ErrorBody),
        (status = 503, description = "redis unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn jobs(
    State(ctx): State<Ctx>,
    PathParams(queue): PathParams<String>,
    QueryParams(q): QueryParams<JobsQuery>,
) -> Result<Json<JobList>> {
    let queue = path_name(&queue, "queue")?;
    let (state, limit, cursor) = jobs_query(q)?;
    let page = ctx
        .engine()
        .queue_jobs(queue, state, limit, cursor.as_deref())
        .await?;
    Ok(Json(JobList {
        jobs: page.jobs.into_iter().map(JobItem::from).collect(),
        next_cursor: page.next,
    }))
}

/// Replay a dead job. A node's job re-runs its run's failed, cancelled and
/// skipped nodes (409 while the run is still running); any other job goes
/// back on its queue as it was.
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/dead/{job}/replay",
    tag = "queues",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("job" = String, Path, description = "dead job id"),
    ),
    responses(
        (status = 200, description = "the job as it was when dead, now queued again", body = JobItem),
        (status = 404, description = "no such dead job", body = ErrorBody),
        (status = 409, description = "the job's run is still running", body = ErrorBody),
        (status = 503, description = "redis unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn replay(
    State(ctx): State<Ctx>,
    PathParams((queue, job)): PathParams<(String, String)>,
) -> Result<Json<JobItem>> {
    let queue = path_name(&queue, "queue")?;
    if job.is_empty() || job.len() > 128 {
        return Err(Error::NotFound("dead job not found".to_owned()));
    }
    let view = ctx
        .engine()
        .replay_dead(queue, &job)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no dead job {job:?} in queue {queue:?}")))?;
    tracing::info!(queue, job = %job, "replayed a dead job");
    Ok(Json(view.into()))
}
