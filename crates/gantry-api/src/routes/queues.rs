//! `/v1/queues`: queue inspection (job counts per state).

use crate::error::{ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/v1/queues", get(list))
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
    let queue = &ctx.engine().queue;
    let mut names = queue.queues().await?;
    names.sort_unstable();
    names.dedup();
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        let s = queue.stats(&name).await?;
        queues.push(QueueView {
            name,
            ready: s.ready,
            delayed: s.delayed,
            in_flight: s.in_flight,
            dead: s.dead,
        });
    }
    Ok(Json(QueueList { queues }))
}
