//! `GET /workflows`, `/workflows/{name}` (every version, each one's graph
//! and definition, and the latest one's triggers), `GET /agents` and
//! `/agents/{name}`.

use super::dag::{self, DrawNode};
use super::error::{name, UiError, UiPath, UiQuery, UiResult};
use super::layout::{self, enc, page, Nav};
use super::session::Session;
use super::triggers;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

pub(crate) async fn workflows(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> UiResult<Html<String>> {
    let list = ctx.store().list_workflows().await?;
    let body = html! {
        h1 { "Workflows" }
        @if list.is_empty() {
            p.empty { "No workflow is registered." }
        } @else {
            table.data #workflows {
                thead { tr { th { "name" } th.num { "latest version" } th.num { "versions" } th.num { "nodes" } th { "updated" } th {} } }
                tbody {
                    @for w in &list {
                        tr.workflow data-workflow=(w.name) {
                            td { a href={ "/workflows/" (enc(&w.name)) } { (w.name) } }
                            td.num { (w.latest_version) }
                            td.num { (w.versions) }
                            td.num { (w.nodes) }
                            td { (layout::time(&w.updated_at)) }
                            td { a href={ "/runs?workflow=" (enc(&w.name)) } { "runs" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Workflows", Nav::Workflows, &session, body))
}

#[derive(Debug, Deserialize)]
pub(crate) struct VersionQuery {
    version: Option<String>,
}

pub(crate) async fn workflow(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiPath(wf): UiPath<String>,
    UiQuery(q): UiQuery<VersionQuery>,
) -> UiResult<Html<String>> {
    let wf = name(&wf, "workflow")?;
    let version =
        match q.version.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                UiError::BadRequest("version must be a positive integer".to_owned())
            })?),
        };
    let versions = ctx.store().workflow_versions(wf).await?;
    let shown = match version {
        None => versions.last(),
        Some(v) => versions.iter().find(|w| w.version == v),
    }
    .ok_or_else(|| UiError::NotFound(format!("no workflow {wf:?} with that version")))?;
    let def = &shown.definition;
    let index: HashMap<&str, usize> = def
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let nodes: Vec<DrawNode<'_>> = def
        .nodes
        .iter()
        .map(|n| DrawNode {
            id: &n.id,
            status: "pending",
            instances: n.for_each.as_ref().map(|_| "for_each".to_owned()),
            parents: n
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect(),
        })
        .collect();
    let json = serde_json::to_value(def).unwrap_or_default();
    let latest = versions.last().unwrap_or(shown);
    let triggers = triggers::section(&ctx, latest, &session).await?;
    let body = html! {
        h1 { "Workflow " span.mono { (wf) } }
        p { a href={ "/runs?workflow=" (enc(wf)) } { "Runs of this workflow →" } }
        section #versions {
            h2 { "Versions" }
            table.data {
                thead { tr { th.num { "version" } th { "registered" } th.num { "nodes" } } }
                tbody {
                    @for v in versions.iter().rev() {
                        tr.version data-version=(v.version) class=[(v.version == shown.version).then_some("current")] {
                            td.num { a href={ "/workflows/" (enc(wf)) "?version=" (v.version) } { "v" (v.version) } }
                            td { (layout::time(&v.created_at)) }
                            td.num { (v.definition.nodes.len()) }
                        }
                    }
                }
            }
        }
        (triggers)
        section #definition data-version=(shown.version) {
            h2 { "Version " (shown.version) }
            @if let Some(d) = &def.description { p { (d) } }
            @if nodes.len() <= dag::MAX_DRAWN { div.dag-wrap { (dag::svg(&nodes)) } }
            table.data #workflow-nodes {
                thead { tr { th { "node" } th { "agent" } th { "depends on" } th.num { "timeout" } } }
                tbody {
                    @for n in &def.nodes {
                        tr data-node=(n.id) {
                            td.mono { (n.id) }
                            td { a href={ "/agents/" (enc(&n.agent)) } { (n.agent) } }
                            td { (n.depends_on.join(", ")) }
                            td.num { (n.timeout_s.map_or_else(|| "–".to_owned(), |t| format!("{t} s"))) }
                        }
                    }
                }
            }
            details { summary { "Definition (JSON)" } (layout::json_pre(&json, 256 * 1024)) }
        }
    };
    Ok(page(
        &format!("Workflow {wf}"),
        Nav::Workflows,
        &session,
        body,
    ))
}

pub(crate) async fn agents(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> UiResult<Html<String>> {
    let list = ctx.store().list_agents().await?;
    let body = html! {
        h1 { "Agents" }
        @if list.is_empty() {
            p.empty { "No agent is registered." }
        } @else {
            table.data #agents {
                thead { tr { th { "name" } th { "runtime" } th { "queue" } th { "approval" } th { "updated" } } }
                tbody {
                    @for a in &list {
                        @let v = serde_json::to_value(&a.def).unwrap_or_default();
                        tr.agent data-agent=(a.def.name) {
                            td { a href={ "/agents/" (enc(&a.def.name)) } { (a.def.name) } }
                            td { (v["runtime"].as_str().unwrap_or("")) }
                            td { (v["queue"].as_str().unwrap_or("")) }
                            td { (v["approval"].as_str().unwrap_or("")) }
                            td { (layout::time(&a.updated_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Agents", Nav::Agents, &session, body))
}

pub(crate) async fn agent(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiPath(agent): UiPath<String>,
) -> UiResult<Html<String>> {
    let agent = name(&agent, "agent")?;
    let rec = ctx
        .store()
        .get_agent(agent)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("no agent {agent:?}")))?;
    let json = serde_json::to_value(&rec.def).unwrap_or_default();
    let body = html! {
        h1 { "Agent " span.mono { (agent) } }
        p #agent-meta {
            "registered " (layout::time(&rec.created_at)) " · updated " (layout::time(&rec.updated_at))
            " (registering an agent again replaces its definition; it has no versions)"
        }
        section #definition { h2 { "Definition" } (layout::json_pre(&json, 256 * 1024)) }
    };
    Ok(page(&format!("Agent {agent}"), Nav::Agents, &session, body))
}
