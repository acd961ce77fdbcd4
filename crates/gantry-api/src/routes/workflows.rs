//! `/v1/workflows`: register versions, read them, and start runs.

use super::runs::RunView;
use super::{non_empty, path_name, PathParams, QueryParams};
use crate::body::{parse, BodyBytes, JsonBody};
use crate::error::{Error, ErrorBody, Result};
use crate::{idempotency, Ctx};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gantry_dag::{Problem, ValidatedDag, WorkflowDef};
use gantry_engine::Started;
use gantry_store::{WorkflowRecord, WorkflowSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/workflows", post(register).get(list))
        .route("/v1/workflows/{name}", get(get_one))
        .route("/v1/workflows/{name}/runs", post(start_run))
}

/// Every workflow name with its latest version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowList {
    /// `{name, latest_version, versions, nodes, updated_at}` per workflow.
    #[schema(value_type = Vec<Object>)]
    pub(crate) workflows: Vec<WorkflowSummary>,
}

/// One version of a workflow and the list of all its versions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowView {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) version: i32,
    /// The workflow definition (SPEC section 2).
    #[schema(value_type = Object)]
    pub(crate) definition: WorkflowDef,
    pub(crate) created_at: DateTime<Utc>,
    /// Every version number of this workflow, oldest first.
    pub(crate) versions: Vec<i32>,
}

/// Query of `GET /v1/workflows/{name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionQuery {
    version: Option<String>,
}

/// Body of `POST /v1/workflows/{name}/runs`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartRunBody {
    /// The run input, a JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(crate) input: Option<Value>,
    /// Tags (at most 16; keys follow the name rule, values are strings of
    /// at most 128 bytes).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(crate) tags: Option<serde_json::Map<String, Value>>,
}

/// Register a new version of a workflow.
#[utoipa::path(
    post,
    path = "/v1/workflows",
    tag = "workflows",
    request_body(content = Object, description = "a workflow definition (SPEC section 2)"),
    responses(
        (status = 201, description = "the stored version: id, name, version, definition", body = Object),
        (status = 400, description = "malformed json", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 422, description = "invalid definition, every problem listed", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(ctx): State<Ctx>,
    JsonBody(def): JsonBody<WorkflowDef>,
) -> Result<(StatusCode, Json<WorkflowRecord>)> {
    let mut names: Vec<String> = def
        .nodes
        .iter()
        .filter(|n| gantry_dag::is_valid_name(&n.agent))
        .map(|n| n.agent.clone())
        .collect();
    names.sort_unstable();
    names.dedup();
    let agents = ctx.store().agents_by_name(&names).await?;
    let unknown = unknown_children(&ctx, &def).await?;
    let dag = match ValidatedDag::new(
        def,
        &|name| agents.contains_key(name),
        ctx.state.config.max_nodes,
    ) {
        Ok(dag) if unknown.is_empty() => dag,
        Ok(_) => return Err(Error::validation(unknown)),
        Err(mut problems) => {
            problems.extend(unknown);
            return Err(Error::validation(problems));
        }
    };
    let rec = ctx.engine().register_workflow(dag.def()).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// `workflow` nodes naming a workflow (or a pinned version) that is not
/// registered. A workflow may name itself (recursion, bounded by depth):
/// its new version is then the latest.
async fn unknown_children(ctx: &Ctx, def: &WorkflowDef) -> Result<Vec<Problem>> {
    let mut names: Vec<String> = def
        .nodes
        .iter()
        .filter_map(|n| n.workflow.clone())
        .filter(|n| gantry_dag::is_valid_name(n))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    names.sort_unstable();
    names.dedup();
    let mut latest = ctx.store().latest_versions(&names).await?;
    if let Some(v) = latest.get_mut(&def.name) {
        *v += 1;
    } else {
        latest.insert(def.name.clone(), 1);
    }
    let mut out = Vec::new();
    for (i, n) in def.nodes.iter().enumerate() {
        let Some(name) = n
            .workflow
            .as_deref()
            .filter(|n| gantry_dag::is_valid_name(n))
        else {
            continue;
        };
        match (latest.get(name), n.version) {
            (None, _) => out.push(Problem {
                field: format!("nodes[{i}].workflow"),
                code: "unknown_workflow",
                message: format!("node {:?} starts unknown workflow {name:?}", n.id),
            }),
            (Some(&last), Some(v)) if i64::from(v) > i64::from(last) => out.push(Problem {
                field: format!("nodes[{i}].version"),
                code: "unknown_workflow",
                message: format!(
                    "node {:?} pins version {v} of workflow {name:?}, whose latest is {last}",
                    n.id
                ),
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// List workflows by name.
#[utoipa::path(
    get,
    path = "/v1/workflows",
    tag = "workflows",
    responses((status = 200, description = "every workflow", body = WorkflowList))
)]
pub(crate) async fn list(State(ctx): State<Ctx>) -> Result<Json<WorkflowList>> {
    let workflows = ctx.store().list_workflows().await?;
    Ok(Json(WorkflowList { workflows }))
}

/// The latest version of a workflow, or `?version=N`.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "workflow name"),
        ("version" = Option<i32>, Query, description = "a version number; the latest when absent"),
    ),
    responses(
        (status = 200, description = "the workflow version", body = WorkflowView),
        (status = 404, description = "no such workflow or version", body = ErrorBody),
        (status = 422, description = "bad version", body = ErrorBody),
    )
)]
pub(crate) async fn get_one(
    State(ctx): State<Ctx>,
    PathParams(name): PathParams<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Json<WorkflowView>> {
    let name = path_name(&name, "workflow")?;
    let version = match non_empty(q.version) {
        None => None,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(Error::invalid(
                    "version",
                    "bad_value",
                    format!("version must be a positive integer, got {v:?}"),
                ))
            }
        },
    };
    let rec = ctx
        .store()
        .get_workflow(name, version)
        .await?
        .ok_or_else(|| Error::NotFound(format!("workflow {name:?} not found")))?;
    let versions = ctx
        .store()
        .workflow_versions(name)
        .await?
        .into_iter()
        .map(|w| w.version)
        .collect();
    Ok(Json(WorkflowView {
        id: rec.id,
        name: rec.name,
        version: rec.version,
        definition: rec.definition,
        created_at: rec.created_at,
        versions,
    }))
}

/// Start a run of the latest version of a workflow.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/runs",
    tag = "runs",
    params(
        ("name" = String, Path, description = "workflow name"),
        ("Idempotency-Key" = Option<String>, Header,
         description = "1 to 255 visible ascii characters; the same key and body return the same run"),
    ),
    request_body(content = Option<StartRunBody>, description = "optional; `{}` when empty"),
    responses(
        (status = 201, description = "a new run", body = RunView),
        (status = 200, description = "the run started earlier with this key and body", body = RunView),
        (status = 404, description = "no such workflow", body = ErrorBody),
        (status = 409, description = "the key was used with another body", body = ErrorBody),
        (status = 422, description = "bad input or key", body = ErrorBody),
    )
)]
pub(crate) async fn start_run(
    State(ctx): State<Ctx>,
    PathParams(name): PathParams<String>,
    headers: HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<(StatusCode, Json<RunView>)> {
    let name = path_name(&name, "workflow")?;
    let body: StartRunBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartRunBody::default()
    } else {
        parse(&bytes)?
    };
    let input = body
        .input
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !input.is_object() {
        return Err(Error::invalid(
            "input",
            "bad_value",
            "input must be a json object",
        ));
    }
    let tags = match &body.tags {
        None => gantry_dag::Tags::new(),
        Some(t) => gantry_dag::parse_tags(t).map_err(Error::validation)?,
    };
    let key = idempotency::key(&headers)?;
    let workflow = ctx
        .store()
        .get_workflow(name, None)
        .await?
        .ok_or_else(|| Error::NotFound(format!("workflow {name:?} not found")))?;
    // Tags join the request only when there are any: a key used before
    // tags existed keeps its hash.
    let canonical = if tags.is_empty() {
        serde_json::json!({ "input": input })
    } else {
        serde_json::json!({ "input": input, "tags": tags })
    };
    let hash = idempotency::request_hash(name, &canonical);
    let idem = key.as_deref().map(|k| (k, hash.as_str()));
    match ctx
        .engine()
        .start_tagged_run(&workflow, &input, idem, &tags)
        .await?
    {
        Started::New(run) => Ok((StatusCode::CREATED, Json(run.into()))),
        Started::Existing(run) => Ok((StatusCode::OK, Json(run.into()))),
        Started::Conflict => Err(Error::Conflict(
            "idempotency key was already used with a different request".to_owned(),
        )),
    }
}
