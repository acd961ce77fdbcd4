//! An event sent to Gantry from outside (SPEC section 9): its shape and the
//! bounds every field is checked against before anything is stored. What an
//! event matches (waits, triggers) is decided elsewhere; this is the input.

use crate::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest event name.
pub const MAX_EVENT_NAME_LEN: usize = 128;
/// Longest event key, in bytes.
pub const MAX_EVENT_KEY_BYTES: usize = 256;
/// Largest event `data`, as compact JSON.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;
/// Longest event `id` (the sender's idempotency id).
pub const MAX_EVENT_ID_LEN: usize = 255;

/// `POST /v1/events`: `{"name", "key", "data", "id"}`, all but `name` optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub name: String,
    /// Which waits it is for (a run id, a commit); empty by default.
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub data: Value,
    /// Sent again with the same `id`, the event has no new effect.
    #[serde(default)]
    pub id: Option<String>,
}

/// `^[a-z0-9][a-z0-9._-]{0,127}$`.
pub fn is_valid_event_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_EVENT_NAME_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

impl NewEvent {
    /// Every field that is out of bounds, each with its JSON path.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |field: &str, code: &'static str, message: String| {
            out.push(Problem {
                field: field.to_owned(),
                code,
                message,
            })
        };
        if !is_valid_event_name(&self.name) {
            bad(
                "name",
                "bad_name",
                format!(
                    "event name {:?} must match ^[a-z0-9][a-z0-9._-]{{0,127}}$",
                    clip(&self.name)
                ),
            );
        }
        if self.key.len() > MAX_EVENT_KEY_BYTES {
            bad(
                "key",
                "bad_value",
                format!(
                    "key is {} bytes, more than {MAX_EVENT_KEY_BYTES}",
                    self.key.len()
                ),
            );
        }
        let data_len = serde_json::to_string(&self.data).map_or(usize::MAX, |s| s.len());
        if data_len > MAX_EVENT_DATA_BYTES {
            bad(
                "data",
                "too_large",
                format!("data is {data_len} bytes of json, more than {MAX_EVENT_DATA_BYTES}"),
            );
        }
        if let Some(id) = &self.id {
            let visible = id.bytes().all(|b| (0x21..=0x7e).contains(&b));
            if id.is_empty() || id.len() > MAX_EVENT_ID_LEN || !visible {
                bad(
                    "id",
                    "bad_value",
                    format!(
                        "id must be 1 to {MAX_EVENT_ID_LEN} visible ascii characters, got {:?}",
                        clip(id)
                    ),
                );
            }
        }
        out
    }
}

/// At most 64 characters of `s`, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
