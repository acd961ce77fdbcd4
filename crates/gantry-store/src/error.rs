//! The store's error type.

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored document no longer parses (a bug or a manual edit).
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

impl Error {
    /// Connection-level failures a caller may retry after a backoff; also
    /// `25006` (the database is read-only, as a standby is until promoted
    /// in a failover): retrying later can succeed, giving work up cannot.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| {
                        c.starts_with("08")
                            || c == "40001"
                            || c == "40P01"
                            || c == "57P01"
                            || c == "25006"
                    })
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
