//! Redis is delivery: ready jobs on a stream per queue read through a consumer
//! group (XREADGROUP BLOCK wakes a worker as soon as a job lands), delayed
//! jobs in a sorted set, in-flight jobs in the group's pending list, dead jobs
//! in a hash. Jobs are opaque to this crate: an id, a queue and a payload.

mod cancel;
mod consumer;
mod inspect;
mod keys;
mod queue;
mod scripts;
mod workers;

pub use consumer::Consumer;
pub use inspect::{is_valid_cursor, unix_ms, JobPage, JobState, JobView};
pub use queue::Queue;
pub use workers::{BreakerInfo, WorkerInfo};

/// Errors from Redis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("bad queue name {0:?}")]
    BadQueueName(String),
}

impl Error {
    /// Connection failures (and a server still starting or failing over)
    /// that a caller may retry after a backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                    // A restarted or failing-over server answers these until it is ready.
                    || matches!(
                        e.code(),
                        Some("LOADING" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN")
                    )
            }
            Error::BadQueueName(_) => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A job to deliver. One id may be delivered more than once (the consumer's
/// claim in Postgres dedupes); `id` is stable per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub queue: String,
    pub payload: String,
}

/// A job handed to a consumer, in flight until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub queue: String,
    pub payload: String,
    /// Stream entry id.
    pub entry: String,
    /// How many times this entry has been delivered (1 on first delivery).
    pub deliveries: u64,
}

/// Counts of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub ready: u64,
    pub delayed: u64,
    pub in_flight: u64,
    pub dead: u64,
}
