//! `GET /workers`: live workers with their queues, concurrency, the jobs
//! they run now, their last heartbeat and their circuit breakers.

use super::error::UiResult;
use super::layout::{self, page, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use maud::html;

/// Running jobs listed per worker; the count is always exact.
const MAX_LISTED: usize = 20;

pub(crate) async fn page_handler(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> UiResult<Html<String>> {
    let workers = ctx.engine().workers().await?;
    let now = gantry_queue::unix_ms();
    let body = html! {
        h1 { "Workers " span.count { (workers.len()) } }
        @if workers.is_empty() {
            p.empty #no-workers { "No worker has sent a heartbeat in the last few seconds." }
        } @else {
            table.data #workers {
                thead { tr {
                    th { "worker" } th { "queues" } th.num { "concurrency" } th.num { "running" }
                    th { "jobs running now" } th { "last heartbeat" } th { "up since" } th { "circuit breakers" }
                } }
                tbody {
                    @for w in &workers {
                        tr.worker data-worker=(w.id) {
                            td.mono { (w.id) }
                            td { (w.queues.join(", ")) }
                            td.num.concurrency { (w.concurrency) }
                            td.num.running { (w.running.len()) }
                            td.jobs {
                                @for job in w.running.iter().take(MAX_LISTED) {
                                    @let run = job.split_once(':').map_or(job.as_str(), |(r, _)| r);
                                    @if uuid::Uuid::parse_str(run).is_ok() {
                                        a.mono href={ "/runs/" (run) } { (job) } br;
                                    } @else {
                                        span.mono { (job) } br;
                                    }
                                }
                                @if w.running.len() > MAX_LISTED { "… " (w.running.len() - MAX_LISTED) " more" }
                            }
                            td.heartbeat {
                                (layout::span_ms(now.saturating_sub(w.last_heartbeat_ms) as i64)) " ago"
                            }
                            td { (layout::time_ms(w.started_at_ms)) }
                            td.breakers {
                                @if w.breakers.is_empty() {
                                    span.muted { "none yet" }
                                }
                                @for b in &w.breakers {
                                    span class={ "breaker breaker-" (b.state) } data-agent=(b.agent) data-state=(b.state)
                                        title={ (b.failures) " consecutive runtime failures" } {
                                        (b.agent) ": " (b.state.replace('_', "-"))
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Workers", Nav::Workers, &session, body))
}
