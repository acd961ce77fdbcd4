//! JSON request bodies: read as bytes under the size limit (whatever the
//! Content-Type), then parse with the failing field named. Syntax errors are
//! 400 `bad_json` with line and column; shape errors are 422 with a
//! `{field, code, message}` problem.

use crate::error::{Error, Result};
use crate::Ctx;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use gantry_dag::Problem;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// A JSON body parsed into `T`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Ctx> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Ctx) -> Result<Self> {
        let bytes = read_body(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// The raw body, bounded by `max_body_bytes`.
pub(crate) struct BodyBytes(pub(crate) Bytes);

impl FromRequest<Ctx> for BodyBytes {
    type Rejection = Error;

    async fn from_request(req: Request, state: &Ctx) -> Result<Self> {
        read_body(req, state).await.map(BodyBytes)
    }
}

/// An oversized body is still read (and dropped) up to this much, so the
/// client gets its 413 instead of a connection reset mid-upload.
const DRAIN_MAX: u64 = 8 << 20;
/// ... and for at most this long.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

async fn read_body(req: Request, state: &Ctx) -> Result<Bytes> {
    let limit = state.state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = req.into_body();
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        if n <= DRAIN_MAX {
            drain(&mut body, 0).await;
        }
        return Err(Error::PayloadTooLarge { limit });
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if is_length_limit(&e) {
                Error::PayloadTooLarge { limit }
            } else {
                Error::BadJson(format!("failed to read request body: {e}"))
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            drain(&mut body, (buf.len() + data.len()) as u64).await;
            return Err(Error::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Read and drop the rest of `body`, up to [`DRAIN_MAX`] in all and
/// [`DRAIN_TIME`]; errors just end it.
async fn drain(body: &mut axum::body::Body, mut seen: u64) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while seen <= DRAIN_MAX {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    })
    .await;
}

/// Whether the body error comes from the length limit (ours or the
/// `DefaultBodyLimit` layer's).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Parse `bytes` as one JSON document of type `T`. Syntax is checked on the
/// whole document first, so trailing garbage or truncation is always a 400,
/// never a 422 about whatever part happened to parse.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| map_error(".", e))?;
    // Every body of this API is an object; serde would otherwise read a
    // struct from an array (`[]` as a run request with no input).
    if !value.is_object() {
        return Err(Error::invalid(
            "$",
            "bad_value",
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        map_error(&path, e.into_inner())
    })
}

fn map_error(path: &str, e: serde_json::Error) -> Error {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::BadJson(format!(
            "malformed json: {} at line {} column {}",
            bare_message(&e),
            e.line(),
            e.column()
        )),
        Category::Data => Error::validation(vec![shape_problem(path, &e)]),
    }
}

/// A 422 problem for JSON of the wrong shape. Serde names unknown and
/// missing fields only in its message; append them to the path.
fn shape_problem(path: &str, e: &serde_json::Error) -> Problem {
    let msg = bare_message(e);
    let (code, field) = if let Some(name) = quoted(&msg, "unknown field `") {
        ("unknown_field", join(path, &name))
    } else if let Some(name) = quoted(&msg, "missing field `") {
        ("missing_field", join(path, &name))
    } else {
        (
            "bad_value",
            if path == "." {
                String::new()
            } else {
                path.to_owned()
            },
        )
    };
    let field = if field.is_empty() {
        "$".to_owned()
    } else {
        field
    };
    Problem {
        message: format!("{field}: {msg}"),
        field,
        code,
    }
}

/// serde_json's message without the " at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The text between `prefix` and the next backquote.
fn quoted(msg: &str, prefix: &str) -> Option<String> {
    let start = msg.find(prefix)? + prefix.len();
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_owned())
}

/// `path.name`, unless serde_path_to_error already ended the path with it.
fn join(path: &str, name: &str) -> String {
    if path == name || path.ends_with(&format!(".{name}")) {
        path.to_owned()
    } else if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_dag::{AgentDef, WorkflowDef};

    fn problem(e: Error) -> (String, &'static str) {
        match e {
            Error::Validation { mut problems, .. } => {
                let p = problems.remove(0);
                (p.field, p.code)
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_bad_json_with_position() {
        let e = parse::<WorkflowDef>(b"{\"name\": \"x\",\n  \"nodes\": [").unwrap_err();
        assert_eq!(e.code(), "bad_json");
        assert!(e.to_string().contains("line 2 column"), "{e}");
        let e = parse::<WorkflowDef>(b"").unwrap_err();
        assert_eq!(e.code(), "bad_json");
        let e = parse::<WorkflowDef>(b"{} {}").unwrap_err();
        assert_eq!(e.code(), "bad_json", "trailing data is a syntax error");
        let e = parse::<WorkflowDef>(br#"{"name": 1, "nodes": ["#).unwrap_err();
        assert_eq!(e.code(), "bad_json", "truncation wins over a type error");
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let body = br#"{"name":"w","nodes":[{"id":"a","agent":"x","colour":1}]}"#;
        let (field, code) = problem(parse::<WorkflowDef>(body).unwrap_err());
        assert_eq!((field.as_str(), code), ("nodes[0].colour", "unknown_field"));

        let body = br#"{"name":"a","runtime":"builtin","builtin":"noop","imagee":"x"}"#;
        let (field, code) = problem(parse::<AgentDef>(body).unwrap_err());
        assert_eq!((field.as_str(), code), ("imagee", "unknown_field"));
    }

    #[test]
    fn wrong_type_and_missing_field_are_named() {
        let body = br#"{"name":"w","nodes":[{"id":"a","agent":"x","timeout_s":"soon"}]}"#;
        let (field, code) = problem(parse::<WorkflowDef>(body).unwrap_err());
        assert_eq!((field.as_str(), code), ("nodes[0].timeout_s", "bad_value"));

        let (field, code) = problem(parse::<WorkflowDef>(br#"{"name":"w"}"#).unwrap_err());
        assert_eq!((field.as_str(), code), ("nodes", "missing_field"));

        let (field, code) = problem(parse::<WorkflowDef>(b"[]").unwrap_err());
        assert_eq!((field.as_str(), code), ("$", "bad_value"));
    }
}
