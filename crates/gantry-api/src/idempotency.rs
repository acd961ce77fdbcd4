//! `Idempotency-Key` handling for starting runs: the key's allowed form and
//! the request hash (hex SHA-256 of the workflow name, a newline and the
//! canonical JSON of the request body).

use crate::error::{Error, Result};
use axum::http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Header name (HTTP header names are case-insensitive).
pub(crate) const HEADER: &str = "idempotency-key";

/// Longest accepted key.
const MAX_KEY_LEN: usize = 255;

/// The key from `headers`, when present: 1..=255 visible ASCII characters.
pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad_key("must be sent once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(bad_key("must be 1 to 255 characters"));
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(bad_key("must be visible ascii characters"));
    }
    // Checked above: every byte is visible ASCII.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn bad_key(why: &str) -> Error {
    Error::invalid(
        "Idempotency-Key",
        "bad_value",
        format!("the Idempotency-Key header {why}"),
    )
}

/// Hex SHA-256 of `workflow`, `"\n"` and the canonical JSON of `body`.
pub(crate) fn request_hash(workflow: &str, body: &Value) -> String {
    let mut canon = String::new();
    canonical(body, &mut canon);
    let mut h = Sha256::new();
    h.update(workflow.as_bytes());
    h.update(b"\n");
    h.update(canon.as_bytes());
    hex::encode(h.finalize())
}

/// JSON with object keys sorted and no whitespace, whatever the map order
/// serde_json was built with.
pub(crate) fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_and_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{"input": {"b": 1, "a": [1, {"y": 2, "x": 3}]}}"#).unwrap();
        let b = json!({"input": {"a": [1, {"x": 3, "y": 2}], "b": 1}});
        assert_eq!(request_hash("wf", &a), request_hash("wf", &b));
        assert_ne!(request_hash("wf", &a), request_hash("wf2", &a));
        assert_ne!(
            request_hash("wf", &a),
            request_hash("wf", &json!({"input": {"b": 2}}))
        );
        let mut s = String::new();
        canonical(&b, &mut s);
        assert_eq!(s, r#"{"input":{"a":[1,{"x":3,"y":2}],"b":1}}"#);
        assert_eq!(request_hash("wf", &b).len(), 64);
    }

    #[test]
    fn key_must_be_short_visible_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(key(&h).unwrap(), None);
        h.insert(HEADER, HeaderValue::from_static("order-42"));
        assert_eq!(key(&h).unwrap().as_deref(), Some("order-42"));
        for bad in ["", "has space", &"k".repeat(256)] {
            h.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            assert_eq!(key(&h).unwrap_err().code(), "validation_failed", "{bad:?}");
        }
        h.insert(HEADER, HeaderValue::from_bytes(&[0xc3, 0xa9]).unwrap());
        assert!(key(&h).is_err());
        h.insert(HEADER, HeaderValue::from_str(&"k".repeat(255)).unwrap());
        assert!(key(&h).is_ok());
    }
}
