//! JSON request bodies: [`buffer`] reads each `/v1` body under the size
//! limit and [`crate::BODY_READ_TIMEOUT`] before the request may take an
//! in-flight permit; handlers then parse it with the failing field named.
//! Syntax errors are 400 `bad_json` with line and column; shape errors are
//! 422 with a `{field, code, message}` problem; a duplicate key is 422
//! `duplicate_key` and a NUL character (which Postgres cannot store) 422
//! `nul_character`, both with their JSON path.

use crate::error::{Error, Result};
use crate::Ctx;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gantry_dag::Problem;
use http_body_util::BodyExt;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Value};
use std::cell::RefCell;

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

/// Middleware on `/v1`: read the whole body, at most `max_body_bytes`
/// (413) within [`crate::BODY_READ_TIMEOUT`] (408), and hand it on
/// buffered. A non-empty body must be declared JSON (415).
pub(crate) async fn buffer(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = ctx.state.config.max_body_bytes;
    let timeout = crate::BODY_READ_TIMEOUT;
    let bytes = match tokio::time::timeout(timeout, read_limited(&parts.headers, body, limit)).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            return Error::refused(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "body",
                format!("the request body did not arrive within {timeout:?}"),
            )
            .into_response()
        }
    };
    if !bytes.is_empty() && !crate::site::is_json(&parts.headers) {
        return crate::site::not_json().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn read_body(req: Request, state: &Ctx) -> Result<Bytes> {
    let (parts, body) = req.into_parts();
    read_limited(&parts.headers, body, state.state.config.max_body_bytes).await
}

async fn read_limited(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
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
    let value = strict_value(bytes)?;
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

/// What the strict reader refused, with the JSON path of the value.
enum Flaw {
    DuplicateKey(String),
    Nul(String),
}

/// Read `bytes` as a JSON value, refusing a key that appears twice in one
/// object (serde_json would keep the last silently) and any NUL character
/// in a key or string, at any depth.
fn strict_value(bytes: &[u8]) -> Result<Value> {
    let flaw = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let read = Strict {
        path: String::new(),
        flaw: &flaw,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (read, flaw.into_inner()) {
        (Ok(v), _) => Ok(v),
        (Err(e), None) => Err(map_error(".", e)),
        (Err(_), Some(flaw)) => {
            // A syntax error anywhere still wins: the document is not JSON.
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return Err(map_error(".", e));
            }
            Err(match flaw {
                Flaw::DuplicateKey(path) => Error::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "duplicate_key",
                    &path,
                    format!("{path}: this key appears more than once in its object"),
                ),
                Flaw::Nul(path) => Error::invalid(
                    &path,
                    "nul_character",
                    format!("{path}: contains a NUL character (\\u0000), which cannot be stored"),
                ),
            })
        }
    }
}

/// The JSON path shown for `$` (the whole body).
fn shown(path: &str) -> String {
    if path.is_empty() {
        "$".to_owned()
    } else {
        path.to_owned()
    }
}

/// A value at `path`, read by [`strict_value`].
struct Strict<'a> {
    path: String,
    flaw: &'a RefCell<Option<Flaw>>,
}

impl Strict<'_> {
    fn fail<E: serde::de::Error>(&self, flaw: Flaw) -> E {
        *self.flaw.borrow_mut() = Some(flaw);
        E::custom("refused value")
    }

    fn string<E: serde::de::Error>(&self, s: &str) -> Result<Value, E> {
        if s.contains('\0') {
            return Err(self.fail(Flaw::Nul(shown(&self.path))));
        }
        Ok(Value::String(s.to_owned()))
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.string(v)
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.string(&v)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let item = Strict {
                path: format!("{}[{}]", self.path, items.len()),
                flaw: self.flaw,
            };
            match seq.next_element_seed(item)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let shown_key = key.replace('\0', "\\u0000");
            let path = if self.path.is_empty() {
                shown_key
            } else {
                format!("{}.{shown_key}", self.path)
            };
            if key.contains('\0') {
                return Err(self.fail(Flaw::Nul(path)));
            }
            if out.contains_key(&key) {
                return Err(self.fail(Flaw::DuplicateKey(path)));
            }
            let value = map.next_value_seed(Strict {
                path,
                flaw: self.flaw,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
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

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let e = parse::<WorkflowDef>(br#"{"name":"w","name":"v","nodes":[]}"#).unwrap_err();
        assert_eq!(e.code(), "duplicate_key");
        match e {
            Error::Refused { field, .. } => assert_eq!(field, "name"),
            other => panic!("{other:?}"),
        }
        let body = br#"{"name":"w","nodes":[{"id":"a","agent":"x","input":{"k":1,"k":2}}]}"#;
        match parse::<WorkflowDef>(body).unwrap_err() {
            Error::Refused { field, code, .. } => {
                assert_eq!(
                    (field.as_str(), code),
                    ("nodes[0].input.k", "duplicate_key")
                )
            }
            other => panic!("{other:?}"),
        }
        let e = parse::<WorkflowDef>(br#"{"name":"w","name":"v","nodes":["#).unwrap_err();
        assert_eq!(e.code(), "bad_json", "a syntax error still wins");
    }

    #[test]
    fn nul_characters_are_named_with_their_path() {
        let body =
            br#"{"name":"w","nodes":[{"id":"a","agent":"x","input":{"p":["ok","a\u0000b"]}}]}"#;
        let (field, code) = problem(parse::<WorkflowDef>(body).unwrap_err());
        assert_eq!(
            (field.as_str(), code),
            ("nodes[0].input.p[1]", "nul_character")
        );
        let body = br#"{"name":"w","nodes":[{"id":"a","agent":"x","input":{"k\u0000":1}}]}"#;
        let (field, code) = problem(parse::<WorkflowDef>(body).unwrap_err());
        assert_eq!(
            (field.as_str(), code),
            ("nodes[0].input.k\\u0000", "nul_character")
        );
        let e = parse::<WorkflowDef>(b"{\"name\":\"w\x00\",\"nodes\":[]}").unwrap_err();
        assert_eq!(e.code(), "bad_json", "a raw NUL byte is not JSON");
    }
}
