//! `GET /v1/runs/{id}/nodes/{node}/instances`: the instances of a
//! `for_each` node in index order, paged, optionally by status.

use super::{non_empty, page_limit, path_name, path_run_id, PathParams, QueryParams};
use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::Json;
use gantry_dag::NodeStatus;
use gantry_store::InstanceSummary;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::ToSchema;

/// Query of the instances route; parsed by hand so every mistake is a 422.
#[derive(Debug, Deserialize)]
pub(crate) struct InstanceQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page of a map node's instances.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InstanceList {
    /// Each with `index`, `item`, `status`, `attempts`, `output`, `error`,
    /// `started_at`, `finished_at`, `child_run`, and for a gate
    /// `approval_deadline` (while it waits) and `approval_decided_by`.
    #[schema(value_type = Vec<Object>)]
    pub(crate) instances: Vec<InstanceSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// An instance list's cursor: the index of the last instance of the
/// previous page (the dashboard's instance pages use the same).
pub(crate) fn instance_cursor(c: &str) -> Option<u32> {
    c.parse::<u32>().ok().filter(|i| *i < gantry_dag::MAX_ITEMS)
}

/// The instances of a `for_each` node in index order.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/nodes/{node}/instances",
    tag = "runs",
    params(
        ("id" = String, Path, description = "run id (uuid)"),
        ("node" = String, Path, description = "id of a for_each node"),
        ("status" = Option<String>, Query, description = "only instances in this node status"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "one page of instances", body = InstanceList),
        (status = 404, description = "no such run, or no such for_each node", body = ErrorBody),
        (status = 422, description = "bad status or limit, or `bad_cursor`", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(ctx): State<Ctx>,
    PathParams((id, node)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<InstanceQuery>,
) -> Result<Json<InstanceList>> {
    let id = path_run_id(&id)?;
    let node = path_name(&node, "node")?;
    let status = match non_empty(q.status) {
        None => None,
        Some(s) => Some(NodeStatus::from_str(&s).map_err(|_| {
            Error::invalid("status", "bad_value", format!("{s:?} is not a node status"))
        })?),
    };
    let limit = page_limit(q.limit)?;
    // The cursor is the index of the last instance of the previous page.
    let after = match non_empty(q.cursor) {
        None => None,
        Some(c) => Some(instance_cursor(&c).ok_or_else(|| Error::bad_cursor("cursor"))?),
    };
    let store = ctx.store();
    let Some(idx) = store.map_node(id, node).await? else {
        return Err(Error::NotFound(format!(
            "run {id} has no for_each node {node:?}"
        )));
    };
    let mut instances = store
        .list_instances(id, idx, status, after, limit + 1)
        .await?;
    let next_cursor = if instances.len() > limit as usize {
        instances.truncate(limit as usize);
        instances.last().map(|i| i.index.to_string())
    } else {
        None
    };
    Ok(Json(InstanceList {
        instances,
        next_cursor,
    }))
}
