//! The Gantry agent SDK: read the input JSON from stdin, call the agent, write exactly one JSON
//! value to stdout and map the result to the exit codes of the agent protocol (SPEC section 3).
//!
//! ```no_run
//! use gantry_agent::{AgentError, Context};
//!
//! #[derive(serde::Deserialize)]
//! struct Input { name: String }
//!
//! fn main() -> std::process::ExitCode {
//!     gantry_agent::run(|input: Input, _ctx: &Context| -> Result<_, AgentError> {
//!         Ok(serde_json::json!({"greeting": format!("hello {}", input.name)}))
//!     })
//! }
//! ```

mod context;
pub mod files;

pub use context::{Context, DEFAULT_SECRETS_PATH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io::{Read, Write};
use std::process::ExitCode;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failure that retrying cannot fix (`EX_CONFIG` from sysexits.h).
pub const EXIT_PERMANENT: u8 = 78;
/// Exit code for a failure the worker may retry by the node's policy.
pub const EXIT_RETRYABLE: u8 = 1;
/// Largest input read from stdin; more is a permanent failure rather than unbounded memory.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Why an agent failed, which decides whether the worker retries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// Bad input or a condition no retry can fix: exit 78, never retried.
    Permanent(String),
    /// A transient problem (network, a busy dependency): exit 1, retried by policy.
    Retryable(String),
}

impl AgentError {
    /// A permanent failure with `msg`.
    pub fn permanent(msg: impl Into<String>) -> Self {
        Self::Permanent(msg.into())
    }

    /// A retryable failure with `msg`.
    pub fn retryable(msg: impl Into<String>) -> Self {
        Self::Retryable(msg.into())
    }

    /// The process exit code this failure maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Permanent(_) => EXIT_PERMANENT,
            Self::Retryable(_) => EXIT_RETRYABLE,
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Permanent(msg) => write!(f, "permanent failure: {msg}"),
            Self::Retryable(msg) => write!(f, "retryable failure: {msg}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// Runs `agent` against the real stdin, stdout, stderr and environment; use it as `main`'s
/// return value.
pub fn run<I, O, F>(agent: F) -> ExitCode
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I, &Context) -> Result<O, AgentError>,
{
    let ctx = Context::from_env();
    let code = run_with(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        std::io::stderr().lock(),
        &ctx,
        agent,
    );
    ExitCode::from(code)
}

/// The testable core of [`run`]: explicit streams and context, returns the exit code.
///
/// On success exactly one JSON value and a newline go to `stdout`; on failure `stdout` stays
/// empty and the message goes to `stderr`.
pub fn run_with<I, O, F, R, W, E>(
    stdin: R,
    mut stdout: W,
    mut stderr: E,
    ctx: &Context,
    agent: F,
) -> u8
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I, &Context) -> Result<O, AgentError>,
    R: Read,
    W: Write,
    E: Write,
{
    let result = read_input(stdin)
        .and_then(|input| agent(input, ctx))
        .and_then(|output| {
            // Serialize fully before writing so a failure never leaves half a value on stdout.
            serde_json::to_vec(&output)
                .map_err(|e| AgentError::permanent(format!("cannot serialize output: {e}")))
        });
    match result {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    let _ = writeln!(stderr, "retryable failure: cannot write output: {e}");
                    EXIT_RETRYABLE
                }
            }
        }
        Err(err) => {
            let _ = writeln!(stderr, "{err}");
            let _ = stderr.flush();
            err.exit_code()
        }
    }
}

fn read_input<I: DeserializeOwned, R: Read>(stdin: R) -> Result<I, AgentError> {
    let mut buf = Vec::new();
    stdin
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| AgentError::retryable(format!("cannot read stdin: {e}")))?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(AgentError::permanent(format!(
            "input is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(&buf);
    let input = I::deserialize(&mut de)
        .map_err(|e| AgentError::permanent(format!("invalid input: {e}")))?;
    de.end()
        .map_err(|e| AgentError::permanent(format!("invalid input: {e}")))?;
    Ok(input)
}

#[cfg(test)]
mod tests;
