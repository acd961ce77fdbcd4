//! `GET /runs/{id}`: the run, its DAG as SVG (colours follow node status,
//! live over SSE through `app.js`), and per node its attempts, error, log
//! tail and output, with cancel, retry, approve and reject buttons. A
//! `for_each` node links to its paged instances, a `workflow` node to its
//! child runs, and a child run back to its parent.

use super::dag::{self, DrawNode};
use super::error::{UiError, UiPath, UiResult};
use super::layout::{self, csrf, enc, page, status, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_dag::NodeDef;
use gantry_dag::NodeStatus;
use gantry_store::{AttemptRecord, ChildOf, NodeSummary, RunDetail};
use maud::{html, Markup};
use std::collections::HashMap;
use uuid::Uuid;

/// Bytes of each attempt's log tail shown.
const LOG_BYTES: i32 = 4096;
/// Bytes of a node's output shown.
const OUTPUT_BYTES: usize = 16 * 1024;
/// Node sections shown in full; larger runs list the rest briefly.
const MAX_DETAILED: usize = 300;
/// Child runs listed on a parent's page; the rest are one API call away.
const MAX_CHILDREN: u32 = 200;

pub(crate) fn run_id(s: &str) -> UiResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| UiError::NotFound("no such run".to_owned()))
}

pub(crate) async fn page_handler(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiPath(id): UiPath<String>,
) -> UiResult<Html<String>> {
    let id = run_id(&id)?;
    let store = ctx.store();
    let (run, attempts) = tokio::try_join!(
        async { store.get_run(id).await.map_err(crate::Error::from) },
        async {
            store
                .run_attempts(id, MAX_DETAILED as u32, LOG_BYTES)
                .await
                .map_err(crate::Error::from)
        },
    )?;
    let run = run.ok_or_else(|| UiError::NotFound(format!("no run {id}")))?;
    let def = store
        .get_workflow(&run.run.workflow, Some(run.run.version))
        .await?;
    let defs: HashMap<&str, &NodeDef> = def
        .as_ref()
        .map(|d| {
            d.definition
                .nodes
                .iter()
                .map(|n| (n.id.as_str(), n))
                .collect()
        })
        .unwrap_or_default();
    let deps: HashMap<&str, &[String]> = defs
        .iter()
        .map(|(id, n)| (*id, n.depends_on.as_slice()))
        .collect();
    let children = if defs.values().any(|n| n.workflow.is_some()) {
        store.children_of(id, MAX_CHILDREN).await?
    } else {
        Vec::new()
    };
    // Nodes are listed in definition order, so a child's node index names it.
    let mut children_by_node: HashMap<&str, Vec<&ChildOf>> = HashMap::new();
    for c in &children {
        if let Some(n) = run.nodes.get(c.node as usize) {
            children_by_node.entry(n.id.as_str()).or_default().push(c);
        }
    }
    let mut by_node: HashMap<&str, Vec<&AttemptRecord>> = HashMap::new();
    for (node, a) in &attempts {
        by_node.entry(node.as_str()).or_default().push(a);
    }
    let body = html! {
        (header(&run, &session))
        section #graph {
            h2 { "Graph" }
            @if run.nodes.len() > dag::MAX_DRAWN {
                p.empty { "This run has " (run.nodes.len()) " nodes; graphs of more than "
                    (dag::MAX_DRAWN) " are not drawn." }
            } @else {
                div.dag-wrap { (graph(&run, &deps)) }
            }
            (legend())
        }
        section #nodes {
            h2 { "Nodes" }
            @for n in run.nodes.iter().take(MAX_DETAILED) {
                (node_detail(id, n, NodeExtras {
                    def: defs.get(n.id.as_str()).copied(),
                    attempts: by_node.get(n.id.as_str()).map_or(&[][..], Vec::as_slice),
                    children: children_by_node.get(n.id.as_str()).map_or(&[][..], Vec::as_slice),
                }, &session))
            }
            @if run.nodes.len() > MAX_DETAILED {
                p.empty { (run.nodes.len() - MAX_DETAILED) " more nodes are not shown; see "
                    code { "GET /v1/runs/" (id) "/nodes/NODE" } "." }
            }
            @if children.len() == MAX_CHILDREN as usize {
                p.empty { "The first " (MAX_CHILDREN) " child runs are listed; see "
                    code { "GET /v1/runs?parent=" (id) } " for all." }
            }
        }
    };
    Ok(page(&format!("Run {id}"), Nav::Runs, &session, body))
}

fn header(run: &RunDetail, session: &Session) -> Markup {
    let r = &run.run;
    let mut by_status: Vec<(NodeStatus, usize)> = Vec::new();
    for n in &run.nodes {
        match by_status.iter_mut().find(|(s, _)| *s == n.status) {
            Some((_, c)) => *c += 1,
            None => by_status.push((n.status, 1)),
        }
    }
    html! {
        div.run-head #run data-run=(r.id) data-status=(r.status.as_str()) {
            h1 { "Run " span.mono { (r.id) } }
            p {
                "Status: " span #run-status class={ "status status-" (r.status.as_str()) } { (r.status.as_str()) }
                span #live {}
                " · workflow " a href={ "/workflows/" (enc(&r.workflow)) "?version=" (r.version) } { (r.workflow) " v" (r.version) }
                " · created " (layout::time(&r.created_at))
                " · finished " span #run-finished { (layout::time_opt(r.finished_at.as_ref())) }
            }
            @if let Some(p) = &run.parent {
                p #parent {
                    "Child run of " a href={ "/runs/" (p.run) "#node-" (p.node) } { span.mono { (p.run) } }
                    " · node " span.mono { (p.node) }
                    @if let Some(i) = p.index { " · instance " (i) }
                }
            }
            @if !r.tags.is_empty() {
                p #run-tags {
                    "Tags: "
                    @for (k, v) in &r.tags {
                        a.tag href={ "/runs?tag=" (enc(&format!("{k}:{v}"))) } { (k) "=" (v) } " "
                    }
                }
            }
            p #node-counts {
                @for (s, c) in &by_status { (status(s.as_str())) " " (c) " " }
            }
            div.actions {
                form method="post" action={ "/runs/" (r.id) "/cancel" } {
                    (csrf(session))
                    button #cancel type="submit" title="stop the run: nothing new starts, running attempts are stopped" { "Cancel run" }
                }
                form method="post" action={ "/runs/" (r.id) "/retry" } {
                    (csrf(session))
                    button #retry type="submit" title="re-run failed, cancelled and skipped nodes" { "Retry failed nodes" }
                }
            }
            details.input {
                summary { "Input" }
                (layout::json_pre(&run.input, OUTPUT_BYTES))
            }
        }
    }
}

fn graph(run: &RunDetail, deps: &HashMap<&str, &[String]>) -> Markup {
    let index: HashMap<&str, usize> = run
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let nodes: Vec<DrawNode<'_>> = run
        .nodes
        .iter()
        .map(|n| DrawNode {
            id: &n.id,
            status: n.status.as_str(),
            instances: n.instances.as_ref().map(instance_label),
            parents: deps
                .get(n.id.as_str())
                .map(|ds| {
                    ds.iter()
                        .filter_map(|d| index.get(d.as_str()).copied())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    dag::svg(&nodes)
}

/// The first block of a run id, enough to tell siblings apart.
fn short_id(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// `3/10 succeeded` for a map node's counts.
fn instance_label(counts: &gantry_store::InstanceCounts) -> String {
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    format!("{}/{} succeeded", get("succeeded"), get("total"))
}

fn legend() -> Markup {
    html! {
        p.legend {
            @for s in ["pending", "waiting_approval", "waiting", "queued", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"] {
                (status(s)) " "
            }
        }
    }
}

/// What a node's section shows besides its summary.
struct NodeExtras<'a> {
    /// Its definition (absent only if the workflow version is gone).
    def: Option<&'a NodeDef>,
    attempts: &'a [&'a AttemptRecord],
    /// Its child runs, for a `workflow` node.
    children: &'a [&'a ChildOf],
}

fn node_detail(run: Uuid, n: &NodeSummary, extras: NodeExtras<'_>, session: &Session) -> Markup {
    let NodeExtras {
        def,
        attempts,
        children,
    } = extras;
    let deps = def.map_or(&[][..], |d| d.depends_on.as_slice());
    let child_workflow = def.and_then(|d| d.workflow.as_deref());
    let waits_for = def.and_then(|d| d.wait.as_ref());
    let s = n.status.as_str();
    // Nodes that may still wait for approval get the buttons; `app.js` shows
    // them only while the node is `waiting_approval`.
    let may_wait = matches!(n.status, NodeStatus::Pending | NodeStatus::WaitingApproval);
    html! {
        div.node-detail #{ "node-" (n.id) } data-node=(n.id) data-status=(s) {
            h3 {
                span.mono { (n.id) } " "
                span class={ "status node-status status-" (s) } { (s) }
            }
            p.meta {
                @if let Some(w) = child_workflow {
                    "workflow " a href={ "/workflows/" (enc(w)) } { (w) }
                } @else if let Some(w) = waits_for {
                    "waits for event " span.mono { (w.event) }
                } @else {
                    "agent " a href={ "/agents/" (enc(&n.agent)) } { (n.agent) }
                }
                " · attempts " span.attempts { (n.attempts) }
                @if !deps.is_empty() { " · after " (deps.join(", ")) }
                " · queued " (layout::time_opt(n.queued_at.as_ref()))
                " · started " (layout::time_opt(n.started_at.as_ref()))
                " · finished " (layout::time_opt(n.finished_at.as_ref()))
            }
            @if let Some(at) = &n.approval_deadline {
                p.approval-deadline {
                    "decided by its approval timeout at " (layout::time_opt(Some(at)))
                    " unless answered first"
                }
            }
            @if let Some(w) = &n.wait {
                p.wait data-event=(w.event) data-key=(w.key) {
                    "event " span.mono.wait-event { (w.event) }
                    " with key " span.mono.wait-key { (w.key) }
                    @if let Some(id) = &w.matched_event {
                        " · matched by event " span.mono.wait-matched { (id) }
                    } @else if n.status == NodeStatus::Waiting {
                        " · times out at " span.wait-deadline { (layout::time_opt(Some(&w.deadline))) }
                    }
                }
            }
            @if let Some(by) = &n.approval_decided_by {
                p.approval-decided { "approval decided by " span.mono.decided-by { (by) } }
            }
            @if may_wait {
                div.approval hidden[n.status != NodeStatus::WaitingApproval] {
                    form method="post" action={ "/runs/" (run) "/nodes/" (enc(&n.id)) "/approve" } {
                        (csrf(session))
                        button.approve type="submit" data-node=(n.id) { "Approve" }
                    }
                    form method="post" action={ "/runs/" (run) "/nodes/" (enc(&n.id)) "/reject" } {
                        (csrf(session))
                        button.reject type="submit" data-node=(n.id) { "Reject" }
                    }
                }
            }
            @if let Some(reason) = n.skip_reason {
                p.skip-reason { "skipped: " span.mono { (reason.as_str()) } }
            }
            @if let Some(counts) = &n.instances {
                p.instances {
                    "instances: "
                    @for (k, v) in counts {
                        span class={ "instance-count count-" (k) } { (k) " " (v) } " "
                    }
                    a.instances-link href={ "/runs/" (run) "/nodes/" (enc(&n.id)) "/instances" } { "list" }
                }
            }
            @if !children.is_empty() {
                div.child-runs {
                    "child runs: "
                    @for c in children {
                        a.child-run href={ "/runs/" (c.id) } data-run=(c.id) data-status=(c.status.as_str()) {
                            @if let Some(i) = c.index { "[" (i) "] " }
                            span.mono { (short_id(c.id)) }
                        }
                        " " (status(c.status.as_str())) " "
                    }
                }
            }
            @if let Some(e) = &n.error {
                div.node-error { h4 { "Error" } pre.error { (layout::cut(e, 4000)) } }
            }
            @if !attempts.is_empty() {
                table.data.attempts {
                    thead { tr { th.num { "#" } th { "worker" } th { "status" } th { "started" } th.num { "took" } th.num { "exit" } th { "error" } } }
                    tbody {
                        @for a in attempts {
                            tr.attempt data-attempt=(a.attempt) {
                                td.num { (a.attempt) }
                                td.mono { (a.worker) }
                                td { (status(&a.status)) }
                                td { (layout::time(&a.started_at)) }
                                td.num { @if let Some(f) = a.finished_at { (layout::span_ms((f - a.started_at).num_milliseconds())) } @else { "–" } }
                                td.num { (a.exit_code.map_or_else(|| "–".to_owned(), |c| c.to_string())) }
                                td { (layout::cut(a.error.as_deref().unwrap_or(""), 500)) }
                            }
                        }
                    }
                }
                @if let Some(log) = attempts.iter().rev().find_map(|a| a.log_tail.as_deref().filter(|l| !l.is_empty())) {
                    details.log open {
                        summary { "Log tail" }
                        pre.log { (layout::tail(log, LOG_BYTES as usize)) }
                    }
                }
            }
            @if let Some(out) = &n.output {
                details.output {
                    summary { "Output" }
                    (layout::json_pre(out, OUTPUT_BYTES))
                }
            }
        }
    }
}
