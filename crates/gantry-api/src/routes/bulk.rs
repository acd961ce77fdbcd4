//! `POST /v1/runs/cancel` and `/v1/runs/retry` (SPEC section 4): cancel or
//! retry, by filter, at most 10,000 top-level runs per call (child runs
//! follow their parent), each under its own run lock as a single action.

use crate::body::JsonBody;
use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gantry_engine::Bulk;
use gantry_store::BulkFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/runs/cancel", post(cancel))
        .route("/v1/runs/retry", post(retry))
}

/// Which runs: every field optional, all must match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkBody {
    workflow: Option<String>,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    status: Option<String>,
    /// `{"KEY": "VALUE"}`: runs carrying every one.
    #[schema(value_type = Option<Object>)]
    tags: Option<Map<String, Value>>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// What a bulk call did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkAnswer {
    /// Runs the filter matched that the action applies to, each acted on.
    pub(crate) matched: usize,
    /// More runs match than one call takes (10,000): call again.
    pub(crate) more: bool,
}

fn filter(body: BulkBody) -> Result<BulkFilter> {
    let status = super::run_status_filter(body.status)?;
    let tags = match &body.tags {
        None => Vec::new(),
        Some(t) => gantry_dag::parse_tags(t)
            .map_err(Error::validation)?
            .into_iter()
            .collect(),
    };
    Ok(BulkFilter {
        workflow: body.workflow.filter(|w| !w.is_empty()),
        status,
        tags,
        created_after: body.created_after,
        created_before: body.created_before,
    })
}

async fn apply(ctx: &Ctx, action: Bulk, body: BulkBody) -> Result<Json<BulkAnswer>> {
    let out = ctx.engine().bulk(action, &filter(body)?).await?;
    Ok(Json(BulkAnswer {
        matched: out.matched,
        more: out.more,
    }))
}

/// Cancel the running top-level runs a filter matches (their child runs
/// with them).
#[utoipa::path(
    post,
    path = "/v1/runs/cancel",
    tag = "runs",
    request_body(content = BulkBody),
    responses(
        (status = 200, description = "what was cancelled", body = BulkAnswer),
        (status = 422, description = "a bad filter field", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(ctx): State<Ctx>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Result<Json<BulkAnswer>> {
    apply(&ctx, Bulk::Cancel, body).await
}

/// Retry the failed and cancelled top-level runs a filter matches.
#[utoipa::path(
    post,
    path = "/v1/runs/retry",
    tag = "runs",
    request_body(content = BulkBody),
    responses(
        (status = 200, description = "what was retried", body = BulkAnswer),
        (status = 422, description = "a bad filter field", body = ErrorBody),
    )
)]
pub(crate) async fn retry(
    State(ctx): State<Ctx>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Result<Json<BulkAnswer>> {
    apply(&ctx, Bulk::Retry, body).await
}
