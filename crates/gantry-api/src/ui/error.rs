//! Errors of the dashboard, answered as HTML pages with the right status.
//! As in the API, internal details are only logged, never shown.

use super::layout;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::de::DeserializeOwned;

/// What a dashboard handler can fail with.
#[derive(Debug)]
pub(crate) enum UiError {
    /// A malformed query, cursor or form (400).
    BadRequest(String),
    /// Refused: cross-site, no CSRF token, no session for a POST (403).
    Forbidden(&'static str),
    /// No such page, run, queue, job or definition (404).
    NotFound(String),
    /// Anything the API would answer with (409, 429, 503, 500...).
    Api(crate::Error),
}

pub(crate) type UiResult<T> = Result<T, UiError>;

impl<E: Into<crate::Error>> From<E> for UiError {
    fn from(e: E) -> Self {
        UiError::Api(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            UiError::Api(crate::Error::TooManyRequests { retry_after_s, .. }) => {
                Some(*retry_after_s)
            }
            _ => None,
        };
        let (status, message) = match self {
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.to_owned()),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            UiError::Api(e) => {
                let status = e.status();
                match &e {
                    crate::Error::Internal(_) => {
                        tracing::error!(error = %e, "dashboard page failed")
                    }
                    crate::Error::Unavailable { .. } => {
                        tracing::warn!(error = %e, "dependency unavailable")
                    }
                    _ => tracing::debug!(error = %e, "dashboard request refused"),
                }
                let message = match e {
                    crate::Error::Internal(_) => "internal server error".to_owned(),
                    crate::Error::Unavailable { what, .. } => {
                        format!("{what} is unavailable, try again later")
                    }
                    other => other.to_string(),
                };
                (status, message)
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            main #content.error-page {
                h1 { (status.as_u16()) " " (title) }
                p #error-message .error { (layout::cut(&message, 300)) }
                p { a href="/" { "Overview" } }
            }
        };
        let mut res = (status, layout::bare(title, body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

/// Path parameters; anything that does not decode is a 404 page.
pub(crate) struct UiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for UiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> UiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| UiPath(v))
            .map_err(|_| UiError::NotFound("not found".to_owned()))
    }
}

/// Query parameters; a query string that does not decode is a 400 page.
pub(crate) struct UiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for UiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> UiResult<Self> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| UiQuery(v))
            .map_err(|e| UiError::BadRequest(format!("bad query string: {}", e.body_text())))
    }
}

/// A name from a path (queue, workflow, agent, node): one that can never
/// exist is not found.
pub(crate) fn name<'a>(s: &'a str, what: &str) -> UiResult<&'a str> {
    if gantry_dag::is_valid_name(s) {
        Ok(s)
    } else {
        Err(UiError::NotFound(format!("no such {what}")))
    }
}
