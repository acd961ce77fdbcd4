//! `/v1/events`: send an event (SPEC section 9), committed to Postgres
//! before the answer and idempotent by `id`, and list events with what each
//! matched.

use super::{non_empty, page_limit, QueryParams};
use crate::body::JsonBody;
use crate::error::{Error, ErrorBody, Result};
use crate::idempotency::request_hash;
use crate::Ctx;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gantry_dag::NewEvent;
use gantry_store::{EventFilter, EventRecord, Recorded};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/v1/events", post(send).get(list))
}

/// The answer to a sent event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventSent {
    /// The event's `id`: the sender's, or a generated one.
    pub(crate) id: String,
    /// `wait` nodes it completed.
    pub(crate) waits_matched: i32,
    /// Runs its triggers started.
    pub(crate) runs_started: i32,
}

/// One stored event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) key: String,
    #[schema(value_type = Object)]
    pub(crate) data: Value,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) waits_matched: i32,
    pub(crate) runs_started: i32,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.id,
            name: e.name,
            key: e.key,
            data: e.data,
            received_at: e.received_at,
            waits_matched: e.waits_matched,
            runs_started: e.runs_started,
        }
    }
}

/// One page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventList {
    pub(crate) events: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

/// Send an event. With an `id` already used, the same event gets the first
/// answer (200) and nothing happens again; another event under that `id`
/// is a 409.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = Object,
        description = "`{\"name\", \"key\", \"data\", \"id\"}`: name ^[a-z0-9][a-z0-9._-]{0,127}$, \
            key at most 256 bytes (default empty), data any json of at most 256 KiB, id optional"),
    responses(
        (status = 202, description = "the event is stored", body = EventSent),
        (status = 200, description = "this event was sent before with this id: the first answer", body = EventSent),
        (status = 400, description = "malformed json", body = ErrorBody),
        (status = 409, description = "another event was sent with this id", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 422, description = "a field out of bounds, every problem listed", body = ErrorBody),
    )
)]
pub(crate) async fn send(
    State(ctx): State<Ctx>,
    JsonBody(event): JsonBody<NewEvent>,
) -> Result<(StatusCode, Json<EventSent>)> {
    let problems = event.problems();
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    // The content a repeat must match; the id itself is the key.
    let hash = request_hash(
        "event",
        &json!({"name": event.name, "key": event.key, "data": event.data}),
    );
    let (status, e) = match ctx.engine().send_event(&event, &hash).await? {
        Recorded::New(e) => (StatusCode::ACCEPTED, e),
        Recorded::Existing(e) => (StatusCode::OK, e),
        Recorded::Conflict => {
            return Err(Error::Conflict(format!(
                "event id {:?} was sent before with another name, key or data",
                event.id.unwrap_or_default()
            )))
        }
    };
    Ok((
        status,
        Json(EventSent {
            id: e.id,
            waits_matched: e.waits_matched,
            runs_started: e.runs_started,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    name: Option<String>,
    key: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// List events, newest first, with what each matched.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(
        ("name" = Option<String>, Query, description = "only events of this name"),
        ("key" = Option<String>, Query, description = "only events with this key"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "one page of events", body = EventList),
        (status = 422, description = "bad name, limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(ctx): State<Ctx>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<EventList>> {
    let name = non_empty(q.name);
    if let Some(n) = name
        .as_deref()
        .filter(|n| !gantry_dag::is_valid_event_name(n))
    {
        return Err(Error::invalid(
            "name",
            "bad_name",
            format!("event name {n:?} must match ^[a-z0-9][a-z0-9._-]{{0,127}}$"),
        ));
    }
    let cursor = non_empty(q.cursor);
    if cursor
        .as_deref()
        .is_some_and(|c| !gantry_store::is_valid_event_cursor(c))
    {
        return Err(Error::bad_cursor("cursor"));
    }
    let filter = EventFilter {
        name,
        // An empty key is a key (the default one), so it filters too.
        key: q.key,
        limit: page_limit(q.limit)?,
        cursor,
    };
    let (events, next_cursor) = ctx.store().list_events(&filter).await?;
    Ok(Json(EventList {
        events: events.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}
