//! The coordinator's error type.

/// Errors from the engine and the coordinator loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] gantry_store::Error),
    #[error(transparent)]
    Queue(#[from] gantry_queue::Error),
    #[error("run {0} not found")]
    RunNotFound(uuid::Uuid),
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    #[error("workflow {0:?} not found")]
    WorkflowNotFound(String),
    /// The request does not apply to the run or node in its current state.
    #[error("{0}")]
    Conflict(String),
    /// The workflow cannot start (an agent disappeared since registration).
    #[error("invalid workflow")]
    Invalid(Vec<gantry_dag::Problem>),
    #[error("corrupt {0}")]
    Corrupt(String),
    /// A queue the run would use holds at least the configured depth of
    /// waiting jobs; nothing was written.
    #[error("queue {queue:?} is full ({depth} jobs waiting, limit {limit})")]
    QueueFull {
        queue: String,
        depth: u64,
        limit: u64,
    },
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Queue(e) => e.is_retryable(),
            Error::QueueFull { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
