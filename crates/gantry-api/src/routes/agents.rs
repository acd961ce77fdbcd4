//! `/v1/agents`: register (upsert by name) and read agent definitions.

use super::{path_name, PathParams};
use crate::body::JsonBody;
use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use gantry_dag::{AgentDef, Runtime};
use gantry_store::AgentRecord;
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/agents", post(register).get(list))
        .route("/v1/agents/{name}", get(get_one))
}

/// Every registered agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentList {
    /// Agent definitions with `created_at` and `updated_at`.
    #[schema(value_type = Vec<Object>)]
    pub(crate) agents: Vec<AgentRecord>,
}

/// Register an agent, replacing the one of the same name.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    request_body(content = Object, description = "an agent definition (SPEC section 3)"),
    responses(
        (status = 201, description = "the stored agent", body = Object),
        (status = 400, description = "malformed json", body = ErrorBody),
        (status = 403, description = "process agents are not allowed on this API", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 422, description = "invalid definition, every problem listed", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(ctx): State<Ctx>,
    JsonBody(def): JsonBody<AgentDef>,
) -> Result<(StatusCode, Json<AgentRecord>)> {
    // A process agent runs any argv on a worker host: only where the
    // operator said so.
    if def.runtime == Runtime::Process && !ctx.state.config.allow_process_agents {
        return Err(Error::refused(
            StatusCode::FORBIDDEN,
            "process_agents_disabled",
            "runtime",
            "runtime process is disabled on this API; an operator can allow it with \
             GANTRY_ALLOW_PROCESS_AGENTS=1 (and an allow-list of commands on the workers)",
        ));
    }
    let problems = def.problems();
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    let rec = ctx.engine().upsert_agent(&def).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// List agents by name.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    responses((status = 200, description = "every agent", body = AgentList))
)]
pub(crate) async fn list(State(ctx): State<Ctx>) -> Result<Json<AgentList>> {
    let agents = ctx.store().list_agents().await?;
    Ok(Json(AgentList { agents }))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/v1/agents/{name}",
    tag = "agents",
    params(("name" = String, Path, description = "agent name")),
    responses(
        (status = 200, description = "the agent", body = Object),
        (status = 404, description = "no such agent", body = ErrorBody),
    )
)]
pub(crate) async fn get_one(
    State(ctx): State<Ctx>,
    PathParams(name): PathParams<String>,
) -> Result<Json<AgentRecord>> {
    let name = path_name(&name, "agent")?;
    ctx.store()
        .get_agent(name)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("agent {name:?} not found")))
}
