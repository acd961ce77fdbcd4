//! Run tags (SPEC section 4.1): at most [`MAX_TAGS`] per run, keys that
//! follow the name rule, string values of at most [`MAX_TAG_VALUE_BYTES`].
//! Checked when a run starts; a child run inherits its parent's.

use crate::validate::{is_valid_name, Problem};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most tags one run may carry.
pub const MAX_TAGS: usize = 16;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 128;

/// A run's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// `tags` as sent (a JSON object) checked into [`Tags`], or every
/// problem with its field (`tags`, `tags.KEY`).
pub fn parse_tags(tags: &Map<String, Value>) -> Result<Tags, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = Tags::new();
    if tags.len() > MAX_TAGS {
        problems.push(Problem {
            field: "tags".to_owned(),
            code: "bad_value",
            message: format!("a run has at most {MAX_TAGS} tags, got {}", tags.len()),
        });
    }
    for (key, value) in tags {
        let field = format!("tags.{key}");
        if !is_valid_name(key) {
            problems.push(Problem {
                field: field.clone(),
                code: "bad_name",
                message: format!("tag key {key:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$"),
            });
        }
        match value {
            Value::String(v) if v.len() <= MAX_TAG_VALUE_BYTES => {
                out.insert(key.clone(), v.clone());
            }
            Value::String(v) => problems.push(Problem {
                field,
                code: "bad_value",
                message: format!(
                    "tag {key:?} is {} bytes, more than {MAX_TAG_VALUE_BYTES}",
                    v.len()
                ),
            }),
            _ => problems.push(Problem {
                field,
                code: "bad_value",
                message: format!("tag {key:?} must be a string"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A `KEY:VALUE` tag filter (`GET /v1/runs?tag=`), split at the first `:`.
pub fn parse_tag_filter(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once(':')?;
    (is_valid_name(k) && v.len() <= MAX_TAG_VALUE_BYTES).then(|| (k.to_owned(), v.to_owned()))
}
