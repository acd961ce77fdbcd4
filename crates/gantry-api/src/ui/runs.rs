//! `GET /runs`: runs newest first, filtered by workflow and status, a page
//! at a time by keyset cursor (the same store query as `GET /v1/runs`).

use super::error::{UiError, UiQuery, UiResult};
use super::layout::{self, enc, page, pager, status, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_dag::RunStatus;
use gantry_store::RunFilter;
use maud::html;
use serde::Deserialize;

const PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct RunsQuery {
    workflow: Option<String>,
    status: Option<String>,
    /// One `KEY:VALUE` tag.
    tag: Option<String>,
    cursor: Option<String>,
}

fn filter(q: RunsQuery) -> UiResult<RunFilter> {
    let workflow = q.workflow.filter(|w| !w.is_empty());
    if workflow
        .as_deref()
        .is_some_and(|w| !gantry_dag::is_valid_name(w))
    {
        return Err(UiError::BadRequest("not a valid workflow name".to_owned()));
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<RunStatus>().map_err(|_| {
            UiError::BadRequest("status must be running, succeeded, failed or cancelled".to_owned())
        })?),
    };
    let cursor = q.cursor.filter(|c| !c.is_empty());
    if cursor
        .as_deref()
        .is_some_and(|c| !gantry_store::is_valid_run_cursor(c))
    {
        return Err(UiError::BadRequest("malformed cursor".to_owned()));
    }
    let tags = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        None => Vec::new(),
        Some(t) => vec![gantry_dag::parse_tag_filter(t)
            .ok_or_else(|| UiError::BadRequest("tag must be KEY:VALUE".to_owned()))?],
    };
    Ok(RunFilter {
        parent: None,
        workflow,
        status,
        tags,
        limit: PAGE,
        cursor,
    })
}

pub(crate) async fn list(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiQuery(q): UiQuery<RunsQuery>,
) -> UiResult<Html<String>> {
    let filter = filter(q)?;
    let (workflows, (runs, next)) = tokio::try_join!(
        async {
            ctx.store()
                .list_workflows()
                .await
                .map_err(crate::Error::from)
        },
        async {
            ctx.store()
                .list_runs(&filter)
                .await
                .map_err(crate::Error::from)
        },
    )?;
    let wf = filter.workflow.clone().unwrap_or_default();
    let st = filter.status.map_or("", RunStatus::as_str);
    let tag = filter
        .tags
        .first()
        .map(|(k, v)| format!("{k}:{v}"))
        .unwrap_or_default();
    let next = next.map(|c| format!("{}&cursor={}", first_page(&wf, st, &tag), enc(&c)));
    let body = html! {
        h1 { "Runs" }
        form.filters #run-filter method="get" action="/runs" {
            label { "workflow "
                select #filter-workflow name="workflow" {
                    option value="" { "any" }
                    @for w in &workflows {
                        option value=(w.name) selected[w.name == wf] { (w.name) }
                    }
                }
            }
            label { "status "
                select #filter-status name="status" {
                    option value="" { "any" }
                    @for s in ["running", "succeeded", "failed", "cancelled"] {
                        option value=(s) selected[s == st] { (s) }
                    }
                }
            }
            label { "tag "
                input #filter-tag type="text" name="tag" value=(tag) placeholder="key:value" size="18";
            }
            button #filter-submit type="submit" { "Filter" }
            @if !wf.is_empty() || !st.is_empty() || !tag.is_empty() || filter.cursor.is_some() {
                " " a href="/runs" { "clear" }
            }
        }
        @if runs.is_empty() {
            p.empty #no-runs { "No runs" @if filter.cursor.is_some() { " on this page" } "." }
        } @else {
            table.data #runs {
                thead { tr { th { "run" } th { "workflow" } th.num { "version" } th { "status" } th { "tags" } th { "created" } th { "finished" } th.num { "took" } } }
                tbody {
                    @for r in &runs {
                        tr.run data-run=(r.id) data-status=(r.status.as_str()) {
                            td.mono { a href={ "/runs/" (r.id) } { (r.id) } }
                            td { a href={ "/workflows/" (enc(&r.workflow)) } { (r.workflow) } }
                            td.num { (r.version) }
                            td { (status(r.status.as_str())) }
                            td.tags {
                                @for (k, v) in &r.tags {
                                    a.tag href={ "/runs?tag=" (enc(&format!("{k}:{v}"))) } { (k) "=" (v) } " "
                                }
                            }
                            td { (layout::time(&r.created_at)) }
                            td { (layout::time_opt(r.finished_at.as_ref())) }
                            td.num {
                                @if let Some(f) = r.finished_at {
                                    (layout::span_ms((f - r.created_at).num_milliseconds()))
                                } @else { "–" }
                            }
                        }
                    }
                }
            }
        }
        (pager(filter.cursor.is_some().then(|| first_page(&wf, st, &tag)), next))
    };
    Ok(page("Runs", Nav::Runs, &session, body))
}

/// The first page of the same filter.
fn first_page(workflow: &str, status: &str, tag: &str) -> String {
    format!(
        "/runs?workflow={}&status={status}&tag={}",
        enc(workflow),
        enc(tag)
    )
}
