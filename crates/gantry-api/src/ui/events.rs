//! `GET /events`: events sent from outside, newest first, with what each
//! matched, filtered by name, a page at a time (the same store query as
//! `GET /v1/events`).

use super::error::{UiError, UiQuery, UiResult};
use super::layout::{self, enc, page, pager, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_store::EventFilter;
use maud::html;
use serde::Deserialize;

const PAGE: u32 = 50;
/// The data column shows at most this much of an event's JSON.
const DATA_BYTES: usize = 200;

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    name: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
    UiQuery(q): UiQuery<EventsQuery>,
) -> UiResult<Html<String>> {
    let name = q.name.filter(|n| !n.is_empty());
    if name
        .as_deref()
        .is_some_and(|n| !gantry_dag::is_valid_event_name(n))
    {
        return Err(UiError::BadRequest("not a valid event name".to_owned()));
    }
    let cursor = q.cursor.filter(|c| !c.is_empty());
    if cursor
        .as_deref()
        .is_some_and(|c| !gantry_store::is_valid_event_cursor(c))
    {
        return Err(UiError::BadRequest("malformed cursor".to_owned()));
    }
    let filter = EventFilter {
        name: name.clone(),
        key: None,
        limit: PAGE,
        cursor,
    };
    let (events, next) = ctx.store().list_events(&filter).await?;
    let n = name.unwrap_or_default();
    let first = format!("/events?name={}", enc(&n));
    let next = next.map(|c| format!("{first}&cursor={}", enc(&c)));
    let body = html! {
        h1 { "Events" }
        form.filters #event-filter method="get" action="/events" {
            label { "name " input #filter-name name="name" value=(n) placeholder="ci.finished"; }
            button #filter-submit type="submit" { "Filter" }
            @if !n.is_empty() || filter.cursor.is_some() { " " a href="/events" { "clear" } }
        }
        @if events.is_empty() {
            p.empty #no-events { "No events" @if filter.cursor.is_some() { " on this page" } "." }
        } @else {
            table.data #events {
                thead { tr {
                    th { "received" } th { "name" } th { "key" } th { "id" }
                    th.num { "waits matched" } th.num { "runs started" } th { "data" }
                } }
                tbody {
                    @for e in &events {
                        tr.event data-event=(e.id) data-name=(e.name) {
                            td { (layout::time(&e.received_at)) }
                            td.mono { a href={ "/events?name=" (enc(&e.name)) } { (e.name) } }
                            td.mono { (e.key) }
                            td.mono { (e.id) }
                            td.num.waits-matched { (e.waits_matched) }
                            td.num.runs-started { (e.runs_started) }
                            td.mono { (layout::cut(&e.data.to_string(), DATA_BYTES)) }
                        }
                    }
                }
            }
        }
        (pager(filter.cursor.is_some().then(|| first.clone()), next))
    };
    Ok(page("Events", Nav::Events, &session, body))
}
