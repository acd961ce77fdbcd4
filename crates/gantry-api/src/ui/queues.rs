//! `GET /queues` (counts per state) and `GET /queues/{queue}` (one state's
//! jobs, a page at a time by cursor; dead jobs with their errors and a
//! replay button).

use super::error::{name, UiError, UiPath, UiQuery, UiResult};
use super::layout::{self, csrf, enc, page, pager, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_queue::{JobState, JobView};
use maud::{html, Markup};
use serde::Deserialize;

const PAGE: usize = 50;
const STATES: [(JobState, &str); 4] = [
    (JobState::Ready, "ready"),
    (JobState::Delayed, "delayed"),
    (JobState::InFlight, "in_flight"),
    (JobState::Dead, "dead"),
];

pub(crate) async fn list(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> UiResult<Html<String>> {
    let queues = ctx.engine().all_queue_stats().await?;
    let body = html! {
        h1 { "Queues" }
        @if queues.is_empty() {
            p.empty { "No queue has had a job yet." }
        } @else {
            table.data #queues {
                thead { tr { th { "queue" } th.num { "ready" } th.num { "delayed" } th.num { "in flight" } th.num { "dead" } } }
                tbody {
                    @for (q, s) in &queues {
                        tr.queue data-queue=(q) {
                            td { a href={ "/queues/" (enc(q)) } { (q) } }
                            td.num.ready { a href={ "/queues/" (enc(q)) "?state=ready" } { (s.ready) } }
                            td.num.delayed { a href={ "/queues/" (enc(q)) "?state=delayed" } { (s.delayed) } }
                            td.num.in_flight { a href={ "/queues/" (enc(q)) "?state=in_flight" } { (s.in_flight) } }
                            td.num.dead { a href={ "/queues/" (enc(q)) "?state=dead" } { (s.dead) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Queues", Nav::Queues, &session, body))
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    state: Option<String>,
    cursor: Option<String>,
}

fn parse_state(s: Option<&str>) -> UiResult<(JobState, &'static str)> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(STATES[0]),
        Some(s) => STATES
            .iter()
            .copied()
            .find(|(_, n)| *n == s)
            .ok_or_else(|| {
                UiError::BadRequest("state must be ready, delayed, in_flight or dead".to_owned())
            }),
    }
}

pub(crate) async fn jobs(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiPath(queue): UiPath<String>,
    UiQuery(q): UiQuery<JobsQuery>,
) -> UiResult<Html<String>> {
    let queue = name(&queue, "queue")?;
    let (state, state_name) = parse_state(q.state.as_deref())?;
    let cursor = q.cursor.filter(|c| !c.is_empty());
    if let Some(c) = &cursor {
        if !gantry_queue::is_valid_cursor(state, c) {
            return Err(UiError::BadRequest("malformed cursor".to_owned()));
        }
    }
    let engine = ctx.engine();
    let (known, stats, page_of_jobs) = tokio::try_join!(
        async { engine.queue_names().await.map_err(crate::Error::from) },
        async { engine.queue_stats(queue).await.map_err(crate::Error::from) },
        async {
            engine
                .queue_jobs(queue, state, PAGE, cursor.as_deref())
                .await
                .map_err(crate::Error::from)
        },
    )?;
    if !known.iter().any(|k| k == queue) {
        return Err(UiError::NotFound(format!("no queue {queue:?}")));
    }
    let counts = [stats.ready, stats.delayed, stats.in_flight, stats.dead];
    let next = page_of_jobs.next.map(|c| {
        format!(
            "/queues/{}?state={state_name}&cursor={}",
            enc(queue),
            enc(&c)
        )
    });
    let body = html! {
        h1 { "Queue " span.mono { (queue) } }
        nav.tabs #states {
            @for ((s, label), n) in STATES.iter().zip(counts) {
                a href={ "/queues/" (enc(queue)) "?state=" (label) }
                    class=[(*s == state).then_some("current")] data-state=(label) {
                    (label.replace('_', " ")) " " span.count { (n) }
                }
            }
        }
        @if page_of_jobs.jobs.is_empty() {
            p.empty #no-jobs { "No " (state_name.replace('_', " ")) " jobs" @if cursor.is_some() { " on this page" } "." }
        } @else if state == JobState::Dead {
            (dead_table(queue, &page_of_jobs.jobs, &session))
        } @else {
            (job_table(state, &page_of_jobs.jobs))
        }
        (pager(cursor.is_some().then(|| format!("/queues/{}?state={state_name}", enc(queue))), next))
    };
    Ok(page(&format!("Queue {queue}"), Nav::Queues, &session, body))
}

/// The run a node job belongs to, from its payload.
fn run_of(job: &JobView) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&job.payload).ok()?;
    let id = v.get("run_id")?.as_str()?;
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

fn run_link(job: &JobView) -> Markup {
    html! {
        @match run_of(job) {
            Some(run) => a.mono href={ "/runs/" (run) } { (layout::cut(&run, 40)) },
            None => span.muted { "–" },
        }
    }
}

fn job_table(state: JobState, jobs: &[JobView]) -> Markup {
    html! {
        table.data #jobs {
            thead { tr {
                th { "job" } th { "run" }
                @match state {
                    JobState::Delayed => th { "due" },
                    JobState::InFlight => { th { "worker" } th.num { "deliveries" } th.num { "idle" } },
                    _ => th { "entry" },
                }
            } }
            tbody {
                @for j in jobs {
                    tr.job data-job=(j.id) {
                        td.mono { (j.id) }
                        td { (run_link(j)) }
                        @match state {
                            JobState::Delayed => td { (j.at_ms.map_or_else(|| "–".to_owned(), layout::time_ms)) },
                            JobState::InFlight => {
                                td.mono { (j.consumer.as_deref().unwrap_or("–")) }
                                td.num { (j.deliveries.unwrap_or(0)) }
                                td.num { (layout::span_ms(j.idle_ms.unwrap_or(0) as i64)) }
                            },
                            _ => td.mono { (j.entry.as_deref().unwrap_or("–")) },
                        }
                    }
                }
            }
        }
    }
}

fn dead_table(queue: &str, jobs: &[JobView], session: &Session) -> Markup {
    html! {
        table.data #dead-jobs {
            thead { tr { th { "job" } th { "run" } th { "died" } th.num { "deliveries" } th { "error" } th {} } }
            tbody {
                @for j in jobs {
                    tr.dead-job data-job=(j.id) {
                        td.mono { (j.id) }
                        td { (run_link(j)) }
                        td { (j.at_ms.map_or_else(|| "–".to_owned(), layout::time_ms)) }
                        td.num { (j.deliveries.unwrap_or(0)) }
                        td { pre.error { (layout::cut(j.error.as_deref().unwrap_or(""), 2000)) } }
                        td {
                            form method="post" action={ "/queues/" (enc(queue)) "/dead/" (enc(&j.id)) "/replay" } {
                                (csrf(session))
                                button.replay type="submit" data-job=(j.id) { "Replay" }
                            }
                        }
                    }
                }
            }
        }
    }
}
