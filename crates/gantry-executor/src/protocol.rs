//! The agent protocol shared by the `process` and `docker` runtimes: stdout
//! must hold exactly one JSON value (bounded), stderr is kept as a bounded
//! tail, and exit codes map to [`ErrorKind`]s (78 = permanent).

use crate::{ErrorKind, ExecOutcome};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// Exit code by which an agent says that retrying cannot help (`EX_CONFIG`).
pub const EXIT_PERMANENT: i32 = 78;

/// Longest protocol error message kept, so raw agent output never floods an error.
const MAX_ERROR_CHARS: usize = 200;

/// Protocol violations by an agent.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Stdout was empty, not JSON, or more than one value.
    #[error("agent stdout is not one JSON value: {0}")]
    BadOutput(String),
    /// Stdout grew past the limit.
    #[error("output exceeds {limit} bytes")]
    OutputTooLarge { limit: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The attempt failure kind this violation is reported as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadOutput(_) => ErrorKind::BadOutput,
            Self::OutputTooLarge { .. } => ErrorKind::OutputTooLarge,
        }
    }

    /// This error as a failed outcome.
    pub fn into_outcome(self) -> ExecOutcome {
        ExecOutcome::Failed {
            kind: self.kind(),
            error: self.to_string(),
        }
    }
}

/// Parses stdout bytes as exactly one JSON value; surrounding whitespace is fine.
pub fn parse_output(stdout: &[u8]) -> Result<Value> {
    serde_json::from_slice(stdout).map_err(|e| {
        // serde_json messages do not quote the input, but cap them anyway.
        Error::BadOutput(truncate_chars(&e.to_string(), MAX_ERROR_CHARS))
    })
}

/// Whether a NUL character (U+0000) appears anywhere in `value`, in a
/// string or an object key. Postgres cannot store one in `jsonb`, so such
/// an output fails its node (see [`nul_outcome`]) before any write.
pub fn contains_nul(value: &Value) -> bool {
    // Iterative: an output may nest as deep as the parser allows.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    if k.contains('\0') {
                        return true;
                    }
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    false
}

/// The permanent failure of an output holding a NUL character.
pub fn nul_outcome() -> ExecOutcome {
    ExecOutcome::Failed {
        kind: ErrorKind::BadOutput,
        error: "output contains a NUL character (\\u0000), which cannot be stored".to_owned(),
    }
}

/// `outcome`, or [`nul_outcome`] when it is a success whose output holds a NUL.
pub fn refuse_nul(outcome: ExecOutcome) -> ExecOutcome {
    match outcome {
        ExecOutcome::Succeeded(v) if contains_nul(&v) => nul_outcome(),
        other => other,
    }
}

/// The outcome of an agent that exited normally with `code` after writing `stdout`.
pub fn exit_outcome(code: i32, stdout: &[u8]) -> ExecOutcome {
    if code == 0 {
        return match parse_output(stdout) {
            Ok(value) => ExecOutcome::Succeeded(value),
            Err(e) => e.into_outcome(),
        };
    }
    let kind = if code == EXIT_PERMANENT {
        ErrorKind::Permanent
    } else {
        ErrorKind::Exit
    };
    ExecOutcome::Failed {
        kind,
        error: format!("agent exited with code {code}"),
    }
}

/// The outcome of an agent killed by signal `signal` (not by us).
pub fn signal_outcome(signal: i32) -> ExecOutcome {
    let error = match signal_name(signal) {
        Some(name) => format!("agent was killed by signal {name} ({signal})"),
        None => format!("agent was killed by signal {signal}"),
    };
    ExecOutcome::Failed {
        kind: ErrorKind::Exit,
        error,
    }
}

/// The outcome of an attempt stopped because it ran longer than `timeout`.
pub fn timeout_outcome(timeout: Duration) -> ExecOutcome {
    ExecOutcome::Failed {
        kind: ErrorKind::Timeout,
        error: format!("timed out after {}s", timeout.as_secs_f64()),
    }
}

/// The outcome of an attempt stopped by its cancellation token.
pub fn cancelled_outcome() -> ExecOutcome {
    ExecOutcome::Failed {
        kind: ErrorKind::Cancelled,
        error: "cancelled".to_owned(),
    }
}

/// The conventional name of a Linux signal number.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return None,
    })
}

/// Stdout collected up to a byte limit; never holds more than the limit.
#[derive(Debug)]
pub struct OutputBuffer {
    buf: Vec<u8>,
    limit: usize,
}

impl OutputBuffer {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Appends a chunk; fails (keeping nothing of it) once the total would pass the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if chunk.len() > self.limit - self.buf.len() {
            return Err(Error::OutputTooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The last `capacity` bytes of a stream (stderr), however much passes through.
#[derive(Debug)]
pub struct TailBuffer {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Bytes dropped from the front so far.
    dropped: u64,
}

impl TailBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        let keep = &chunk[chunk.len().saturating_sub(self.capacity)..];
        self.dropped += (chunk.len() - keep.len()) as u64;
        let overflow = (self.buf.len() + keep.len()).saturating_sub(self.capacity);
        self.buf.drain(..overflow);
        self.dropped += overflow as u64;
        self.buf.extend(keep);
    }

    /// Whether anything was dropped from the front.
    pub fn truncated(&self) -> bool {
        self.dropped > 0
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The tail as text of at most `capacity` bytes: a character cut in half at
    /// the front is dropped and invalid UTF-8 becomes U+FFFD.
    pub fn to_text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(self.buf.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let start = if self.truncated() {
            // Skip UTF-8 continuation bytes (0b10xx_xxxx) left from a split character.
            bytes
                .iter()
                .take(3)
                .take_while(|&&b| b & 0xC0 == 0x80)
                .count()
        } else {
            0
        };
        let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        keep_last_bytes(text, self.capacity)
    }
}

/// What a secret value in a log is replaced by.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of each non-empty secret value replaced by
/// [`REDACTED`], then cut to its last `max` bytes. A secret cut in half at the
/// very front of a tail is not recognised; callers wanting that too should
/// keep a margin of the longest secret's length before the cut.
pub fn redact(text: &str, secrets: &[&str], max: usize) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    keep_last_bytes(out, max)
}

/// Every form in which a secret value is hidden from logs: the value itself,
/// the value without surrounding whitespace (a file's trailing newline), and
/// the standard and URL-safe base64 encodings of both, padded and not.
pub fn secret_forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let mut forms: Vec<String> = Vec::new();
    for raw in [value, value.trim()] {
        // Whitespace alone is no secret worth hiding (it would blank the log).
        if raw.trim().is_empty() {
            continue;
        }
        forms.push(raw.to_owned());
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(raw.as_bytes()));
        }
    }
    sort_longest_first(&mut forms);
    forms
}

/// Longest first (so a shorter form never splits a longer one), without duplicates.
fn sort_longest_first(forms: &mut Vec<String>) {
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
}

/// Like [`redact`], but also hides the base64 encodings of each secret
/// (see [`secret_forms`]).
pub fn redact_encoded(text: &str, secrets: &[&str], max: usize) -> String {
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| secret_forms(s)).collect();
    sort_longest_first(&mut forms);
    let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
    redact(text, &refs, max)
}

/// Redacts, as [`redact_encoded`] does, every string (and object key) in an
/// agent's output, so a secret an agent echoes never reaches the database.
pub fn redact_output(value: &mut serde_json::Value, secrets: &[&str]) {
    use serde_json::Value;
    if secrets.iter().all(|s| s.trim().is_empty()) {
        return;
    }
    match value {
        Value::String(s) => {
            let clean = redact_encoded(s, secrets, usize::MAX);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_output(v, secrets)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                redact_output(&mut v, secrets);
                map.insert(redact_encoded(&k, secrets, usize::MAX), v);
            }
        }
        _ => {}
    }
}

/// Drops characters from the front of `text` until it fits in `max` bytes
/// (replacement characters can make lossy text longer than its bytes).
fn keep_last_bytes(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text[cut..].to_owned()
}

/// The first `max` characters of `s`, with an ellipsis when cut.
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
