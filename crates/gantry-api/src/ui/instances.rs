//! `GET /runs/{id}/nodes/{node}/instances`: a `for_each` node's instances
//! in item order, 50 to a page by cursor, optionally by status (the same
//! store query as the API's instances route), each with its item, status,
//! attempts, times, error and child run, and for an instance waiting for
//! its approval the Approve and Reject buttons.

use super::error::{UiError, UiPath, UiQuery, UiResult};
use super::layout::{self, csrf, enc, page, pager, status, Nav};
use super::run_detail::run_id;
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_dag::NodeStatus;
use maud::html;
use serde::Deserialize;

const PAGE: u32 = 50;
/// Bytes of an item, an output or an error shown per row.
const CELL_BYTES: usize = 300;

#[derive(Debug, Deserialize)]
pub(crate) struct InstancesQuery {
    status: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiPath((id, node)): UiPath<(String, String)>,
    UiQuery(q): UiQuery<InstancesQuery>,
) -> UiResult<Html<String>> {
    let id = run_id(&id)?;
    let wanted = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<NodeStatus>()
                .map_err(|_| UiError::BadRequest(format!("{s:?} is not a node status")))?,
        ),
    };
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            crate::routes::instances::instance_cursor(c)
                .ok_or_else(|| UiError::BadRequest("malformed cursor".to_owned()))?,
        ),
    };
    let store = ctx.store();
    let idx = store
        .map_node(id, &node)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("run {id} has no for_each node {node:?}")))?;
    let mut rows = store
        .list_instances(id, idx, wanted, after, PAGE + 1)
        .await?;
    let next = (rows.len() > PAGE as usize).then(|| {
        rows.truncate(PAGE as usize);
        rows.last().map_or(0, |i| i.index)
    });
    let st = wanted.map_or("", NodeStatus::as_str);
    let base = format!("/runs/{id}/nodes/{}/instances", enc(&node));
    let first = format!("{base}?status={st}");
    let body = html! {
        h1 { "Instances of " span.mono { (node) } }
        p { "Run " a href={ "/runs/" (id) "#node-" (node) } { span.mono { (id) } } }
        p.filters #instance-filter {
            "status: "
            a href=(base) { "any" } " "
            @for s in ["pending", "waiting_approval", "waiting", "queued", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"] {
                @if s == st { strong { (s) } } @else { a href={ (base) "?status=" (s) } { (s) } }
                " "
            }
        }
        @if rows.is_empty() {
            p.empty #no-instances { "No instances" @if after.is_some() { " on this page" } "." }
        } @else {
            table.data #instances {
                thead { tr { th.num { "index" } th { "item" } th { "status" } th.num { "attempts" } th { "started" } th.num { "took" } th { "output or error" } th { "child run" } } }
                tbody {
                    @for i in &rows {
                        tr.instance data-index=(i.index) data-status=(i.status.as_str()) {
                            td.num { (i.index) }
                            td.mono { (layout::cut(&i.item.to_string(), CELL_BYTES)) }
                            td {
                                (status(i.status.as_str()))
                                @if let Some(at) = &i.approval_deadline {
                                    " " span.approval-deadline title="decided by its approval timeout unless answered first" {
                                        "until " (layout::time_opt(Some(at)))
                                    }
                                }
                                @if let Some(by) = &i.approval_decided_by {
                                    " " span.decided-by { "by " (by) }
                                }
                                @if i.status == NodeStatus::WaitingApproval {
                                    @let gate = format!("{base}/{}", i.index);
                                    form.gate method="post" action={ (gate) "/approve" } {
                                        (csrf(&session))
                                        button.approve type="submit" data-index=(i.index) { "Approve" }
                                    }
                                    form.gate method="post" action={ (gate) "/reject" } {
                                        (csrf(&session))
                                        button.reject type="submit" data-index=(i.index) { "Reject" }
                                    }
                                }
                            }
                            td.num { (i.attempts) }
                            td { (layout::time_opt(i.started_at.as_ref())) }
                            td.num {
                                @if let (Some(s), Some(f)) = (i.started_at, i.finished_at) {
                                    (layout::span_ms((f - s).num_milliseconds()))
                                } @else { "–" }
                            }
                            td.mono {
                                @if let Some(e) = &i.error { span.error { (layout::cut(e, CELL_BYTES)) } }
                                @else if let Some(o) = &i.output { (layout::cut(&o.to_string(), CELL_BYTES)) }
                            }
                            td.mono {
                                @if let Some(c) = i.child_run { a.child-run href={ "/runs/" (c) } { (c) } }
                            }
                        }
                    }
                }
            }
        }
        (pager(after.is_some().then(|| first.clone()), next.map(|n| format!("{first}&cursor={n}"))))
    };
    Ok(page(
        &format!("Instances of {node}"),
        Nav::Runs,
        &session,
        body,
    ))
}
