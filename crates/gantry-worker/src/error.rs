//! The worker's error type.

/// Errors that stop a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] gantry_store::Error),
    #[error(transparent)]
    Queue(#[from] gantry_queue::Error),
    #[error(transparent)]
    Engine(#[from] gantry_engine::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
