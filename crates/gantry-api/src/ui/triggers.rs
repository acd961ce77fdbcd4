//! The triggers section of `/workflows/{name}`: the latest version's cron
//! triggers (with their next and last tick and the run that tick started)
//! and event triggers (with their filter), whether they are paused, and
//! the Pause or Resume button.

use super::error::UiResult;
use super::layout::{self, csrf, enc};
use super::session::Session;
use crate::Ctx;
use chrono::Utc;
use gantry_engine::ScheduleView;
use gantry_store::WorkflowRecord;
use maud::{html, Markup};

/// Bytes of a cron trigger's input shown.
const INPUT_BYTES: usize = 200;

/// The section for `latest`, the version whose triggers run (an older
/// version shown on the page has no live triggers).
pub(crate) async fn section(
    ctx: &Ctx,
    latest: &WorkflowRecord,
    session: &Session,
) -> UiResult<Markup> {
    let wf = latest.name.as_str();
    let triggers = &latest.definition.triggers;
    if triggers.is_empty() {
        return Ok(html! {
            section #triggers {
                h2 { "Triggers" }
                p.empty #no-triggers { "This workflow has no triggers." }
            }
        });
    }
    let paused = ctx.store().is_paused(wf).await?;
    let schedules: Vec<ScheduleView> = if triggers.iter().any(|t| t.cron.is_some()) {
        ctx.engine()
            .schedules(Utc::now())
            .await?
            .into_iter()
            .filter(|s| s.workflow == wf && s.version == latest.version)
            .collect()
    } else {
        Vec::new()
    };
    let (state, badge, verb) = if paused {
        ("paused", "waiting", "resume")
    } else {
        ("active", "succeeded", "pause")
    };
    Ok(html! {
        section #triggers data-paused=(paused) data-version=(latest.version) {
            h2 { "Triggers" }
            p #trigger-state {
                "Triggers of v" (latest.version) " (the latest version) are "
                span class={ "paused-state status status-" (badge) } { (state) }
                @if paused { " · ticks and events are not run, now or later; API starts still work" }
            }
            div.actions {
                form method="post" action={ "/workflows/" (enc(wf)) "/" (verb) } {
                    (csrf(session))
                    @if paused {
                        button.resume type="submit" title="run the triggers again from now" { "Resume" }
                    } @else {
                        button.pause type="submit" title="stop the triggers: no tick or event starts a run" { "Pause" }
                    }
                }
            }
            table.data #trigger-list {
                thead { tr {
                    th.num { "#" } th { "kind" } th { "cron / event" } th { "time zone" } th { "filter" }
                    th { "input" } th { "next tick" } th { "last tick" } th { "last run" }
                } }
                tbody {
                    @for (i, t) in triggers.iter().enumerate() {
                        @let s = schedules.iter().find(|s| s.index as usize == i);
                        @if let Some(cron) = &t.cron {
                            tr.trigger data-index=(i) data-kind="cron" {
                                td.num { (i) }
                                td { "cron" }
                                td.mono.cron { (cron) }
                                td.timezone { (t.timezone.as_deref().unwrap_or("UTC")) }
                                td { "–" }
                                td.mono { (t.input.as_ref().map_or_else(|| "{}".to_owned(), |v| layout::cut(&v.to_string(), INPUT_BYTES))) }
                                td.next-tick data-tick=[s.and_then(|s| s.next_tick).map(|t| t.to_rfc3339())] {
                                    (layout::time_opt(s.and_then(|s| s.next_tick.as_ref())))
                                }
                                td.last-tick { (layout::time_opt(s.and_then(|s| s.last_tick.as_ref()))) }
                                td.last-run {
                                    @if let Some(run) = s.and_then(|s| s.last_run) {
                                        a href={ "/runs/" (run) } { span.mono { (run) } }
                                    } @else { "–" }
                                }
                            }
                        } @else {
                            tr.trigger data-index=(i) data-kind="event" {
                                td.num { (i) }
                                td { "event" }
                                td.mono.event { a href={ "/events?name=" (enc(t.event.as_deref().unwrap_or(""))) } { (t.event.as_deref().unwrap_or("")) } }
                                td { "–" }
                                td.mono.filter { (t.filter.as_deref().unwrap_or("every event")) }
                                td { "the event's data" }
                                td { "–" } td { "–" } td { "–" }
                            }
                        }
                    }
                }
            }
        }
    })
}
