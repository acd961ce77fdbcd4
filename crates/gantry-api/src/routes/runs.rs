//! `/v1/runs`: list and read runs and nodes, cancel, retry, approve, reject.

use super::{non_empty, page_limit, path_name, path_run_id, PathParams, QueryParams};
use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gantry_dag::RunStatus;
use gantry_store::{NodeDetail, RunDetail, RunFilter, RunSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/runs", get(list))
        .route("/v1/runs/{id}", get(get_one).delete(delete_one))
        .route("/v1/runs/{id}/nodes/{node}", get(get_node))
        .route(
            "/v1/runs/{id}/nodes/{node}/instances",
            get(super::instances::list),
        )
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/retry", post(retry))
        .route("/v1/runs/{id}/rerun", post(rerun))
        .route("/v1/runs/{id}/nodes/{node}/approve", post(approve))
        .route("/v1/runs/{id}/nodes/{node}/reject", post(reject))
}

/// Query of `GET /v1/runs`; parsed by hand so every mistake is a 422.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    workflow: Option<String>,
    parent: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A run as listed and as answered when started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunView {
    pub(crate) id: Uuid,
    pub(crate) workflow: String,
    pub(crate) version: i32,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(value_type = String)]
    pub(crate) status: RunStatus,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Its tags; a child run's are its parent's.
    #[schema(value_type = Object)]
    pub(crate) tags: gantry_dag::Tags,
    /// The run it re-runs (only in the answer to a re-run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rerun_of: Option<Uuid>,
}

impl From<RunSummary> for RunView {
    fn from(r: RunSummary) -> Self {
        Self {
            id: r.id,
            workflow: r.workflow,
            version: r.version,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
            tags: r.tags,
            rerun_of: None,
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunList {
    pub(crate) runs: Vec<RunView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

fn filter(q: ListQuery, tags: Vec<(String, String)>) -> Result<RunFilter> {
    let workflow = match non_empty(q.workflow) {
        Some(w) if !gantry_dag::is_valid_name(&w) => {
            return Err(Error::invalid(
                "workflow",
                "bad_name",
                format!("{w:?} is not a valid workflow name"),
            ))
        }
        w => w,
    };
    let status = super::run_status_filter(q.status)?;
    let parent = match non_empty(q.parent) {
        None => None,
        Some(p) => Some(Uuid::parse_str(&p).map_err(|_| {
            Error::invalid(
                "parent",
                "bad_value",
                format!("parent must be a run id, got {p:?}"),
            )
        })?),
    };
    let limit = page_limit(q.limit)?;
    let cursor = non_empty(q.cursor);
    // A cursor we never handed out is a 422, not an empty page (or a
    // database error for a time Postgres cannot hold).
    if cursor
        .as_deref()
        .is_some_and(|c| !gantry_store::is_valid_run_cursor(c))
    {
        return Err(Error::bad_cursor("cursor"));
    }
    Ok(RunFilter {
        workflow,
        parent,
        status,
        tags,
        limit,
        cursor,
    })
}

/// The `tag=KEY:VALUE` filters of a query string (the parameter may
/// repeat; every one must match).
fn tag_filters(raw: Option<&str>) -> Result<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| Error::invalid("query", "bad_value", format!("bad query string: {e}")))?;
    pairs
        .into_iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| {
            gantry_dag::parse_tag_filter(&v).ok_or_else(|| {
                Error::invalid(
                    "tag",
                    "bad_value",
                    format!("tag must be KEY:VALUE with a tag key and a value of at most 128 bytes, got {v:?}"),
                )
            })
        })
        .collect()
}

/// List runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    params(
        ("workflow" = Option<String>, Query, description = "only runs of this workflow"),
        ("status" = Option<String>, Query, description = "running, succeeded, failed or cancelled"),
        ("parent" = Option<String>, Query, description = "only the child runs of this run"),
        ("tag" = Option<String>, Query, description = "KEY:VALUE; may repeat, every one must match"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "one page of runs", body = RunList),
        (status = 422, description = "bad filter or limit, or `bad_cursor`", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(ctx): State<Ctx>,
    QueryParams(q): QueryParams<ListQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RunList>> {
    let filter = filter(q, tag_filters(raw.as_deref())?)?;
    let (runs, next_cursor) = ctx.store().list_runs(&filter).await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(RunView::from).collect(),
        next_cursor,
    }))
}

async fn load_run(ctx: &Ctx, id: Uuid) -> Result<RunDetail> {
    ctx.store()
        .get_run(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("run {id} not found")))
}

/// A run and every node.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    responses(
        (status = 200, description = "the run with its nodes", body = Object),
        (status = 404, description = "no such run", body = ErrorBody),
    )
)]
pub(crate) async fn get_one(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
) -> Result<Json<RunDetail>> {
    let id = path_run_id(&id)?;
    Ok(Json(load_run(&ctx, id).await?))
}

/// One node with every attempt.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/nodes/{node}",
    tag = "runs",
    params(
        ("id" = String, Path, description = "run id (uuid)"),
        ("node" = String, Path, description = "node id"),
    ),
    responses(
        (status = 200, description = "the node with its attempts", body = Object),
        (status = 404, description = "no such run or node", body = ErrorBody),
    )
)]
pub(crate) async fn get_node(
    State(ctx): State<Ctx>,
    PathParams((id, node)): PathParams<(String, String)>,
) -> Result<Json<NodeDetail>> {
    let id = path_run_id(&id)?;
    let node = path_name(&node, "node")?;
    ctx.store()
        .get_node(id, node)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("node {node:?} of run {id} not found")))
}

/// Cancel a run: nothing new starts, running attempts are stopped.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    responses(
        (status = 200, description = "the run after cancelling", body = Object),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run already ended", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
) -> Result<Json<RunDetail>> {
    let id = path_run_id(&id)?;
    ctx.engine().cancel(id).await?;
    Ok(Json(load_run(&ctx, id).await?))
}

/// Body of `POST /v1/runs/{id}/rerun`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RerunBody {
    /// Nodes to run again, with everything downstream of them.
    from: Vec<String>,
    /// A new run input (default: the old run's).
    #[schema(value_type = Option<Object>)]
    input: Option<Value>,
}

/// Re-run a finished run from chosen nodes: a new run of the same version
/// in which every succeeded node neither in `from` nor downstream of it
/// keeps its output (`reused: true`, no attempt) and the rest run again.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/rerun",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    request_body(content = RerunBody),
    responses(
        (status = 201, description = "the new run", body = RunView),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run is still running", body = ErrorBody),
        (status = 422, description = "an unknown node, or an input the schema refuses", body = ErrorBody),
    )
)]
pub(crate) async fn rerun(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
    crate::body::JsonBody(body): crate::body::JsonBody<RerunBody>,
) -> Result<(StatusCode, Json<RunView>)> {
    let id = path_run_id(&id)?;
    if body.input.as_ref().is_some_and(|i| !i.is_object()) {
        return Err(Error::invalid(
            "input",
            "bad_value",
            "input must be a json object",
        ));
    }
    let run = ctx.engine().rerun(id, &body.from, body.input).await?;
    let mut view = RunView::from(run);
    view.rerun_of = Some(id);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Delete a finished run with its child runs, nodes, attempts and tags.
#[utoipa::path(
    delete,
    path = "/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run, a child of it or its parent is still running", body = ErrorBody),
    )
)]
pub(crate) async fn delete_one(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    let id = path_run_id(&id)?;
    ctx.engine().delete_run(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-run failed, cancelled and skipped nodes; succeeded outputs are kept.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/retry",
    tag = "runs",
    params(("id" = String, Path, description = "run id (uuid)")),
    responses(
        (status = 200, description = "the run after retrying", body = Object),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run is running or succeeded", body = ErrorBody),
    )
)]
pub(crate) async fn retry(
    State(ctx): State<Ctx>,
    PathParams(id): PathParams<String>,
) -> Result<Json<RunDetail>> {
    let id = path_run_id(&id)?;
    ctx.engine().retry(id).await?;
    Ok(Json(load_run(&ctx, id).await?))
}

/// Which gate an approval or rejection decides; parsed by hand so a bad
/// index is a 422 that names it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GateQuery {
    /// The instance (item index, from 0) of a `for_each` node to decide
    /// alone; without it, every instance of the node that waits is decided.
    #[param(value_type = Option<u32>)]
    index: Option<String>,
}

impl GateQuery {
    fn index(self) -> Result<Option<u32>> {
        let Some(raw) = non_empty(self.index) else {
            return Ok(None);
        };
        raw.parse::<u32>().map(Some).map_err(|_| {
            Error::invalid(
                "index",
                "bad_value",
                format!("index must be a whole number (an item's index, from 0), got {raw:?}"),
            )
        })
    }
}

/// Approve a node waiting for approval: it is queued. For a `for_each`
/// node each instance has its own gate: `index` approves one, and without
/// it every instance that waits is approved.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/nodes/{node}/approve",
    tag = "runs",
    params(
        ("id" = String, Path, description = "run id (uuid)"),
        ("node" = String, Path, description = "node id"),
        GateQuery,
    ),
    responses(
        (status = 200, description = "the run after approving", body = Object),
        (status = 404, description = "no such run or node", body = ErrorBody),
        (status = 409, description = "the node is not waiting for approval", body = ErrorBody),
    )
)]
pub(crate) async fn approve(
    State(ctx): State<Ctx>,
    PathParams((id, node)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<GateQuery>,
) -> Result<Json<RunDetail>> {
    let id = path_run_id(&id)?;
    let node = path_name(&node, "node")?;
    ctx.engine().approve(id, node, q.index()?).await?;
    Ok(Json(load_run(&ctx, id).await?))
}

/// Reject a node waiting for approval: it fails, its dependents are skipped.
/// For a `for_each` node, `index` rejects one instance (the node fails,
/// and instances still waiting are cancelled); without it, every instance
/// that waits is rejected.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/nodes/{node}/reject",
    tag = "runs",
    params(
        ("id" = String, Path, description = "run id (uuid)"),
        ("node" = String, Path, description = "node id"),
        GateQuery,
    ),
    responses(
        (status = 200, description = "the run after rejecting", body = Object),
        (status = 404, description = "no such run or node", body = ErrorBody),
        (status = 409, description = "the node is not waiting for approval", body = ErrorBody),
    )
)]
pub(crate) async fn reject(
    State(ctx): State<Ctx>,
    PathParams((id, node)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<GateQuery>,
) -> Result<Json<RunDetail>> {
    let id = path_run_id(&id)?;
    let node = path_name(&node, "node")?;
    ctx.engine().reject(id, node, q.index()?).await?;
    Ok(Json(load_run(&ctx, id).await?))
}
