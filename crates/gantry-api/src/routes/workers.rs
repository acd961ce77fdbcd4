//! `/v1/workers`: live workers, from the presence each one renews in Redis
//! (with the state of each of their circuit breakers).

use crate::error::{ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/v1/workers", get(list))
}

/// One live worker.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkerView {
    pub(crate) id: String,
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    /// Job ids (`RUN_ID:NODE_INDEX`) running now.
    pub(crate) running: Vec<String>,
    pub(crate) running_count: usize,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) last_heartbeat: Option<DateTime<Utc>>,
    /// This worker's circuit breakers: `{agent, state, failures}`, state
    /// `closed`, `open` or `half_open`.
    #[schema(value_type = Vec<Object>)]
    pub(crate) breakers: Vec<gantry_queue::BreakerInfo>,
    /// The agent runtimes it runs: `builtin`, `process`, `docker`.
    pub(crate) runtimes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkerList {
    pub(crate) workers: Vec<WorkerView>,
}

fn at(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// Workers that sent a heartbeat within their presence time (three beats).
#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "workers",
    responses(
        (status = 200, description = "live workers", body = WorkerList),
        (status = 503, description = "redis unreachable", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(ctx): State<Ctx>) -> Result<Json<WorkerList>> {
    let workers = ctx.engine().workers().await?;
    Ok(Json(WorkerList {
        workers: workers
            .into_iter()
            .map(|w| WorkerView {
                running_count: w.running.len(),
                started_at: at(w.started_at_ms),
                last_heartbeat: at(w.last_heartbeat_ms),
                id: w.id,
                queues: w.queues,
                concurrency: w.concurrency,
                running: w.running,
                breakers: w.breakers,
                runtimes: w.runtimes,
            })
            .collect(),
    }))
}
