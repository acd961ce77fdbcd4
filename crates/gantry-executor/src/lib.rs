//! Agent runtimes behind one [`Runtime`] trait: `builtin` (in-process noop,
//! echo, sleep, fail), `process` (a local executable speaking the stdin/stdout
//! protocol) and `docker` (a hardened container per attempt, via bollard).
//! The protocol rules (one JSON value on stdout, stderr as a capped log, exit
//! 78 permanent) live once, in [`protocol`], for every runtime that runs an
//! external agent. The [`Executor`] is the one step every attempt passes:
//! it enforces secret bindings, stages the bound secrets, clamps the
//! timeout, checks outputs against `output_schema` and redacts secrets from
//! logs, errors and outputs.

mod bindings;
mod builtin;
pub mod docker;
mod executor;
mod mounts;
mod process;
pub mod protocol;
mod schema;
mod secrets;

pub use bindings::{BindingError, SecretBindings};
pub use builtin::BuiltinRuntime;
pub use docker::{DockerConfig, DockerRuntime};
pub use executor::Executor;
pub use process::{
    make_non_dumpable, ConfigError as ProcessConfigError, ProcessConfig, ProcessRuntime,
    ProcessUser,
};
pub use protocol::{Error, Result};

use gantry_dag::AgentDef;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why an attempt failed, for errors and metrics (`gantry_agent_errors_total{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Non-zero exit other than 78.
    Exit,
    /// Exit 78: the agent says trying again cannot help.
    Permanent,
    Timeout,
    Oom,
    /// Stdout was not exactly one JSON value.
    BadOutput,
    OutputTooLarge,
    /// The runtime could not start or talk to the agent.
    Runtime,
    Cancelled,
    /// The output does not match the agent's `output_schema`.
    SchemaViolation,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Permanent => "permanent",
            Self::Timeout => "timeout",
            Self::Oom => "oom",
            Self::BadOutput => "bad_output",
            Self::OutputTooLarge => "output_too_large",
            Self::Runtime => "runtime",
            Self::Cancelled => "cancelled",
            Self::SchemaViolation => "schema_violation",
        }
    }

    /// Whether the node's retry policy applies.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Exit | Self::Timeout | Self::Oom | Self::Runtime)
    }
}

/// Identity of one attempt, passed to the agent as `GANTRY_*` variables.
#[derive(Debug, Clone)]
pub struct AttemptEnv {
    pub run_id: String,
    pub node_id: String,
    pub attempt: u32,
    pub worker_id: String,
    /// The index of a `for_each` instance (`GANTRY_ITEM_INDEX`).
    pub item_index: Option<u32>,
}

impl AttemptEnv {
    /// `GANTRY_IDEMPOTENCY_KEY`: run id + node id (+ the index of an
    /// instance), the same on every attempt.
    pub fn idempotency_key(&self) -> String {
        match self.item_index {
            None => format!("{}:{}", self.run_id, self.node_id),
            Some(i) => format!("{}:{}:{i}", self.run_id, self.node_id),
        }
    }

    /// The `GANTRY_*` variables an agent gets (SPEC section 3).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("GANTRY_RUN_ID", self.run_id.clone()),
            ("GANTRY_NODE_ID", self.node_id.clone()),
            ("GANTRY_ATTEMPT", self.attempt.to_string()),
            ("GANTRY_IDEMPOTENCY_KEY", self.idempotency_key()),
        ];
        if let Some(i) = self.item_index {
            vars.push(("GANTRY_ITEM_INDEX", i.to_string()));
        }
        vars
    }
}

/// Everything needed to execute one attempt.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub agent: AgentDef,
    pub input: Value,
    pub env: AttemptEnv,
    pub timeout: Duration,
    /// Fired when the run is cancelled or the worker gives the job back.
    pub cancel: CancellationToken,
    /// Set by the [`Executor`]; callers leave it empty.
    pub secrets: SecretFiles,
}

/// The secrets the [`Executor`] staged for one attempt.
#[derive(Debug, Clone, Default)]
pub struct SecretFiles {
    /// A directory of one file per bound secret name (`None`: no secrets).
    pub dir: Option<std::path::PathBuf>,
    /// Extra stderr bytes a runtime keeps beyond the log limit, so that a
    /// secret cut at the front of the tail is still redacted.
    pub log_margin: usize,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecOutcome {
    Succeeded(Value),
    Failed { kind: ErrorKind, error: String },
}

/// Result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecResult {
    pub outcome: ExecOutcome,
    pub exit_code: Option<i32>,
    /// The last bytes of stderr (secrets redacted), at most the log limit.
    pub log_tail: String,
}

/// Limits every runtime applies.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    /// Bytes of stdout accepted (default 1 MiB).
    pub max_output_bytes: usize,
    /// Bytes of stderr tail kept (default 64 KiB).
    pub max_log_bytes: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            max_output_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
        }
    }
}

/// One way of executing agents.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    async fn execute(&self, req: ExecRequest) -> ExecResult;
}

impl ExecResult {
    /// A success with no exit code or log (in-process agents have neither).
    pub fn succeeded(output: Value) -> Self {
        Self::from_outcome(ExecOutcome::Succeeded(output))
    }

    /// A failure with no exit code or log.
    pub fn failed(kind: ErrorKind, error: impl Into<String>) -> Self {
        Self::from_outcome(ExecOutcome::Failed {
            kind,
            error: error.into(),
        })
    }

    pub fn from_outcome(outcome: ExecOutcome) -> Self {
        Self {
            outcome,
            exit_code: None,
            log_tail: String::new(),
        }
    }
}
