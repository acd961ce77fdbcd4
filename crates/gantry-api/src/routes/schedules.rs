//! `/v1/schedules` and `/v1/workflows/{name}/pause|resume` (SPEC sections
//! 4 and 9): every cron trigger with its next and last tick, and stopping
//! or restarting a workflow's triggers (API starts still work).

use super::{path_name, PathParams};
use crate::error::{ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gantry_engine::ScheduleView;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/schedules", get(list))
        .route("/v1/workflows/{name}/pause", post(pause))
        .route("/v1/workflows/{name}/resume", post(resume))
}

/// One cron trigger.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Schedule {
    pub(crate) workflow: String,
    pub(crate) version: i32,
    /// Its index in the version's `triggers`.
    pub(crate) index: u32,
    pub(crate) cron: String,
    pub(crate) timezone: String,
    /// The next tick that will run; null while paused.
    pub(crate) next_tick: Option<DateTime<Utc>>,
    pub(crate) last_tick: Option<DateTime<Utc>>,
    /// The run the last tick started.
    pub(crate) last_run: Option<Uuid>,
    pub(crate) paused: bool,
}

impl From<ScheduleView> for Schedule {
    fn from(s: ScheduleView) -> Self {
        Self {
            workflow: s.workflow,
            version: s.version,
            index: s.index,
            cron: s.cron,
            timezone: s.timezone,
            next_tick: s.next_tick,
            last_tick: s.last_tick,
            last_run: s.last_run,
            paused: s.paused,
        }
    }
}

/// Every cron trigger.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleList {
    pub(crate) schedules: Vec<Schedule>,
}

/// A workflow's triggers, paused or not.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Paused {
    pub(crate) workflow: String,
    pub(crate) paused: bool,
}

/// List every cron trigger of the workflows' latest versions.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "workflows",
    responses((status = 200, description = "every cron trigger", body = ScheduleList))
)]
pub(crate) async fn list(State(ctx): State<Ctx>) -> Result<Json<ScheduleList>> {
    let schedules = ctx.engine().schedules(Utc::now()).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(Schedule::from).collect(),
    }))
}

/// Stop a workflow's triggers: no tick and no event starts a run until it
/// is resumed, and none of them runs later.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/pause",
    tag = "workflows",
    params(("name" = String, Path, description = "workflow name")),
    responses(
        (status = 200, description = "paused (also when it already was)", body = Paused),
        (status = 404, description = "no such workflow", body = ErrorBody),
    )
)]
pub(crate) async fn pause(
    State(ctx): State<Ctx>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Paused>> {
    set(&ctx, &name, true).await
}

/// Restart a workflow's triggers from now.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/resume",
    tag = "workflows",
    params(("name" = String, Path, description = "workflow name")),
    responses(
        (status = 200, description = "resumed (also when it was not paused)", body = Paused),
        (status = 404, description = "no such workflow", body = ErrorBody),
    )
)]
pub(crate) async fn resume(
    State(ctx): State<Ctx>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Paused>> {
    set(&ctx, &name, false).await
}

async fn set(ctx: &Ctx, name: &str, paused: bool) -> Result<Json<Paused>> {
    let name = path_name(name, "workflow")?;
    ctx.engine().set_paused(name, paused).await?;
    Ok(Json(Paused {
        workflow: name.to_owned(),
        paused,
    }))
}
