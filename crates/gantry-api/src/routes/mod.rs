//! Route handlers by resource, and the extractors they share: path and query
//! parameters whose rejections answer in the SPEC error shape.

pub(crate) mod agents;
pub(crate) mod bulk;
pub(crate) mod health;
pub(crate) mod instances;
pub(crate) mod metrics;
pub(crate) mod queues;
pub(crate) mod runs;
pub(crate) mod schedules;
pub(crate) mod sent_events;
pub(crate) mod workers;
pub(crate) mod workflows;

use crate::error::{Error, Result};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Path parameters; anything that does not even decode is a 404.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(PathParams(v)),
            Err(e) => {
                tracing::debug!(error = %e, "bad path parameters");
                Err(Error::NotFound("not found".to_owned()))
            }
        }
    }
}

/// Query parameters; a query string that does not decode is a 422.
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(QueryParams(v)),
            Err(e) => Err(Error::invalid(
                "query",
                "bad_value",
                format!("bad query string: {}", e.body_text()),
            )),
        }
    }
}

/// A workflow, agent or node name from a path: a name that can never be
/// registered cannot be found either.
pub(crate) fn path_name<'a>(s: &'a str, what: &str) -> Result<&'a str> {
    if gantry_dag::is_valid_name(s) {
        Ok(s)
    } else {
        Err(Error::NotFound(format!("{what} not found")))
    }
}

/// A run id from a path: anything but a UUID is an unknown run.
pub(crate) fn path_run_id(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::NotFound("run not found".to_owned()))
}

/// Treat `?x=` like an absent parameter.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// A run status filter (`status`), when given; anything else is a 422.
pub(crate) fn run_status_filter(v: Option<String>) -> Result<Option<gantry_dag::RunStatus>> {
    non_empty(v)
        .map(|s| {
            s.parse().map_err(|_| {
                Error::invalid(
                    "status",
                    "bad_value",
                    format!(
                        "status must be one of running, succeeded, failed, cancelled; got {s:?}"
                    ),
                )
            })
        })
        .transpose()
}

/// Page size of every list when `limit` is absent.
pub(crate) const DEFAULT_PAGE: u32 = 50;
/// Largest page of every list.
pub(crate) const MAX_PAGE: u32 = 500;

/// The `limit` of a list: absent is [`DEFAULT_PAGE`]; anything but an
/// integer from 1 to [`MAX_PAGE`] is a 422 naming `limit`, on every list.
pub(crate) fn page_limit(v: Option<String>) -> Result<u32> {
    match non_empty(v) {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Error::invalid(
                    "limit",
                    "bad_value",
                    format!("limit must be an integer from 1 to {MAX_PAGE}, got {l:?}"),
                )
            }),
    }
}
