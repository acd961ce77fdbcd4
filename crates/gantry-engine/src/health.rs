//! Write health: whether this process's writes to Postgres keep failing.
//! Workers and coordinators report every write; `/readyz` turns red once
//! writes have failed for longer than a threshold in a row, and green again
//! at the next success.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shared by every part of a process that writes; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WriteHealth {
    /// When the current run of failures began; `None` after a success.
    failing_since: Arc<Mutex<Option<Instant>>>,
}

impl WriteHealth {
    /// A write succeeded: the failure streak (if any) is over.
    pub fn ok(&self) {
        *self.lock() = None;
    }

    /// A write failed: starts a failure streak unless one is running.
    pub fn failed(&self) {
        self.lock().get_or_insert_with(Instant::now);
    }

    /// How long writes have failed in a row; `None` when the last write
    /// succeeded (or none was made).
    pub fn failing_for(&self) -> Option<Duration> {
        self.lock().map(|since| since.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_starts_at_the_first_failure_and_ends_at_a_success() {
        let h = WriteHealth::default();
        assert_eq!(h.failing_for(), None);
        h.failed();
        let first = h.failing_for().expect("failing");
        std::thread::sleep(Duration::from_millis(5));
        h.failed();
        assert!(
            h.failing_for().expect("still failing") > first,
            "the streak kept its start"
        );
        h.ok();
        assert_eq!(h.failing_for(), None);
    }
}
