//! The API's error type and its mapping onto the SPEC error body
//! `{"error": {"code", "message", "details"}}`. Internal text never reaches
//! the client: it is logged and replaced by a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gantry_dag::Problem;
use serde::Serialize;
use utoipa::ToSchema;

/// Errors a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed or truncated JSON (400).
    #[error("{0}")]
    BadJson(String),
    /// Unknown resource or route (404).
    #[error("{0}")]
    NotFound(String),
    /// No bearer token, or one that is not accepted (401).
    #[error("a valid bearer token is required (Authorization: Bearer TOKEN)")]
    Unauthorized,
    /// Known route, wrong method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request does not apply to the resource in its current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is over the configured limit (413).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Invalid definition or input; every problem is listed (422).
    #[error("{message}")]
    Validation {
        message: String,
        problems: Vec<Problem>,
    },
    /// A dependency (Postgres or Redis) cannot be reached (503). The string
    /// is internal and only logged.
    #[error("{what} unavailable: {reason}")]
    Unavailable { what: &'static str, reason: String },
    /// Readiness failed; `down` names each unreachable dependency (503).
    #[error("{message}")]
    NotReady { message: String, down: Vec<Problem> },
    /// Rate limited or a queue is full (429); retry after this many seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// Already handling the most requests it may (503, `Retry-After`):
    /// shed at once rather than queued for a database connection.
    #[error("the server is busy with {limit} requests; retry shortly")]
    Overloaded { limit: usize },
    /// A refusal about one field or header, with its own status and code
    /// (403 `process_agents_disabled`, `cross_site`, `bad_host`; 408
    /// `request_timeout`; 415 `unsupported_media_type`; 422 `bad_cursor`,
    /// `duplicate_key`). `details` names the field.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        field: String,
        message: String,
    },
    /// Anything else (500). The string is internal and only logged.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn validation(problems: Vec<Problem>) -> Self {
        let message = match problems.as_slice() {
            [one] => format!("invalid request: {}", one.message),
            many => format!("invalid request: {} problems", many.len()),
        };
        Error::Validation { message, problems }
    }

    pub(crate) fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::validation(vec![Problem {
            field: field.to_owned(),
            code,
            message: message.into(),
        }])
    }

    pub(crate) fn refused(
        status: StatusCode,
        code: &'static str,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Error::Refused {
            status,
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// 422 `bad_cursor` naming `field`: a cursor this API never handed out.
    pub(crate) fn bad_cursor(field: &str) -> Self {
        Self::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_cursor",
            field,
            format!("{field} is not a cursor from a previous page; pass next_cursor as it came"),
        )
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Error::BadJson(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unavailable { .. } | Error::NotReady { .. } | Error::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Refused { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::BadJson(_) => "bad_json",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Unauthorized => "unauthorized",
            Error::Conflict(_) => "conflict",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Validation { .. } => "validation_failed",
            Error::Unavailable { .. } | Error::NotReady { .. } => "unavailable",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Overloaded { .. } => "overloaded",
            Error::Refused { code, .. } => code,
            Error::Internal(_) => "internal",
        }
    }

    /// What the client may read.
    fn public_message(&self) -> String {
        match self {
            Error::Unavailable { what, .. } => {
                format!("{what} is unavailable, try again later")
            }
            Error::Internal(_) => "internal server error".to_owned(),
            other => capped(other.to_string()),
        }
    }
}

impl From<gantry_store::Error> for Error {
    fn from(e: gantry_store::Error) -> Self {
        if e.is_retryable() {
            Error::Unavailable {
                what: "database",
                reason: e.to_string(),
            }
        } else {
            Error::Internal(e.to_string())
        }
    }
}

impl From<gantry_queue::Error> for Error {
    fn from(e: gantry_queue::Error) -> Self {
        if e.is_retryable() {
            Error::Unavailable {
                what: "queue",
                reason: e.to_string(),
            }
        } else {
            Error::Internal(e.to_string())
        }
    }
}

impl From<gantry_engine::Error> for Error {
    fn from(e: gantry_engine::Error) -> Self {
        use gantry_engine::Error as C;
        match e {
            C::Store(e) => e.into(),
            C::Queue(e) => e.into(),
            C::RunNotFound(id) => Error::NotFound(format!("run {id} not found")),
            C::NodeNotFound(n) => Error::NotFound(format!("node {n:?} not found")),
            C::WorkflowNotFound(w) => Error::NotFound(format!("workflow {w:?} not found")),
            C::Conflict(m) => Error::Conflict(m),
            C::Invalid(problems) => Error::validation(problems),
            C::Corrupt(m) => Error::Internal(format!("corrupt {m}")),
            e @ C::QueueFull { .. } => Error::TooManyRequests {
                message: format!("{e}; retry later"),
                retry_after_s: 1,
            },
        }
    }
}

/// The SPEC error body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `bad_json`, `unauthorized`, `not_found`, `method_not_allowed`, `conflict`,
    /// `payload_too_large`, `validation_failed`, `too_many_requests`, `unavailable`,
    /// `overloaded`, `process_agents_disabled`, `cross_site`, `bad_host`,
    /// `request_timeout`, `unsupported_media_type`, `bad_cursor`, `duplicate_key` or
    /// `internal`.
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// For `validation_failed`: every problem, `{field, code, message}`; for a
    /// refusal about one field or header, that field.
    pub(crate) details: Vec<ProblemView>,
}

/// One item of `error.details`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProblemView {
    /// JSON path of the offending field, e.g. `nodes[2].depends_on[0]`.
    pub(crate) field: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Longest message or field path sent back. Problems quote what the client
/// sent (a name, an id); a 100 KB name must not come back 100 KB long.
const MAX_SHOWN_CHARS: usize = 300;

/// `s`, cut to [`MAX_SHOWN_CHARS`] characters with a marker when longer.
fn capped(s: String) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}... ({} bytes in all)", &s[..cut], s.len()),
        None => s,
    }
}

impl From<Problem> for ProblemView {
    fn from(p: Problem) -> Self {
        Self {
            field: capped(p.field),
            code: p.code.to_owned(),
            message: capped(p.message),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Error::Internal(_) => tracing::error!(error = %self, "request failed"),
            Error::Unavailable { .. } => tracing::warn!(error = %self, "dependency unavailable"),
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let code = self.code();
        let message = self.public_message();
        let retry_after = match &self {
            Error::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            Error::Overloaded { .. } => Some(1),
            _ => None,
        };
        let details = match self {
            Error::Validation { problems, .. } | Error::NotReady { down: problems, .. } => {
                problems.into_iter().map(Into::into).collect()
            }
            Error::Refused {
                code,
                field,
                message,
                ..
            } => vec![ProblemView::from(Problem {
                field,
                code,
                message,
            })],
            _ => Vec::new(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
