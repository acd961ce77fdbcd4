//! The dashboard's buttons: cancel, retry, approve, reject, replay, pause
//! and resume call the very engine functions the `/v1` routes call, then
//! answer 303 back to the page. The session guard has already checked
//! origin and CSRF token.

use super::error::{name, UiError, UiPath, UiResult};
use super::layout::enc;
use super::run_detail::run_id;
use crate::Ctx;
use axum::extract::State;
use axum::response::Redirect;

fn back_to_run(id: uuid::Uuid) -> Redirect {
    Redirect::to(&format!("/runs/{id}"))
}

pub(crate) async fn cancel(
    State(ctx): State<Ctx>,
    UiPath(id): UiPath<String>,
) -> UiResult<Redirect> {
    let id = run_id(&id)?;
    ctx.engine().cancel(id).await?;
    tracing::info!(run = %id, "run cancelled from the dashboard");
    Ok(back_to_run(id))
}

pub(crate) async fn retry(
    State(ctx): State<Ctx>,
    UiPath(id): UiPath<String>,
) -> UiResult<Redirect> {
    let id = run_id(&id)?;
    ctx.engine().retry(id).await?;
    tracing::info!(run = %id, "run retried from the dashboard");
    Ok(back_to_run(id))
}

pub(crate) async fn approve(
    State(ctx): State<Ctx>,
    UiPath((id, node)): UiPath<(String, String)>,
) -> UiResult<Redirect> {
    let id = run_id(&id)?;
    let node = name(&node, "node")?;
    ctx.engine().approve(id, node, None).await?;
    tracing::info!(run = %id, node, "node approved from the dashboard");
    Ok(back_to_run(id))
}

pub(crate) async fn reject(
    State(ctx): State<Ctx>,
    UiPath((id, node)): UiPath<(String, String)>,
) -> UiResult<Redirect> {
    let id = run_id(&id)?;
    let node = name(&node, "node")?;
    ctx.engine().reject(id, node, None).await?;
    tracing::info!(run = %id, node, "node rejected from the dashboard");
    Ok(back_to_run(id))
}

/// Approve or reject instance `index` of a `for_each` node from its
/// instance page, then go back to that page.
async fn decide_instance(
    ctx: &Ctx,
    (id, node, index): (String, String, u32),
    approve: bool,
) -> UiResult<Redirect> {
    let id = run_id(&id)?;
    let node = name(&node, "node")?;
    if approve {
        ctx.engine().approve(id, node, Some(index)).await?;
    } else {
        ctx.engine().reject(id, node, Some(index)).await?;
    }
    let verb = if approve { "approved" } else { "rejected" };
    tracing::info!(run = %id, node, index, "instance {verb} from the dashboard");
    Ok(Redirect::to(&format!(
        "/runs/{id}/nodes/{}/instances",
        enc(node)
    )))
}

pub(crate) async fn approve_instance(
    State(ctx): State<Ctx>,
    UiPath(path): UiPath<(String, String, u32)>,
) -> UiResult<Redirect> {
    decide_instance(&ctx, path, true).await
}

pub(crate) async fn reject_instance(
    State(ctx): State<Ctx>,
    UiPath(path): UiPath<(String, String, u32)>,
) -> UiResult<Redirect> {
    decide_instance(&ctx, path, false).await
}

pub(crate) async fn replay(
    State(ctx): State<Ctx>,
    UiPath((queue, job)): UiPath<(String, String)>,
) -> UiResult<Redirect> {
    let queue = name(&queue, "queue")?;
    if job.is_empty() || job.len() > 128 {
        return Err(UiError::NotFound("no such dead job".to_owned()));
    }
    ctx.engine()
        .replay_dead(queue, &job)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("no dead job {job:?} in queue {queue:?}")))?;
    tracing::info!(queue, job = %job, "dead job replayed from the dashboard");
    Ok(Redirect::to(&format!("/queues/{}?state=dead", enc(queue))))
}

/// Pause or resume `workflow`'s triggers, then go back to its page.
async fn set_paused(ctx: &Ctx, workflow: &str, paused: bool) -> UiResult<Redirect> {
    let workflow = name(workflow, "workflow")?;
    ctx.engine().set_paused(workflow, paused).await?;
    let verb = if paused { "paused" } else { "resumed" };
    tracing::info!(workflow, "triggers {verb} from the dashboard");
    Ok(Redirect::to(&format!("/workflows/{}", enc(workflow))))
}

pub(crate) async fn pause(
    State(ctx): State<Ctx>,
    UiPath(workflow): UiPath<String>,
) -> UiResult<Redirect> {
    set_paused(&ctx, &workflow, true).await
}

pub(crate) async fn resume(
    State(ctx): State<Ctx>,
    UiPath(workflow): UiPath<String>,
) -> UiResult<Redirect> {
    set_paused(&ctx, &workflow, false).await
}
