//! Redis key names under a prefix, and the queue-name rule.

use crate::{Error, Result};

/// Consumer group every worker joins.
pub(crate) const GROUP: &str = "workers";

/// Builds every key from one prefix so a test (or a tenant) owns a disjoint
/// key space.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Set of every queue name that has had a job or a consumer.
    pub(crate) fn queues(&self) -> String {
        format!("{}:queues", self.prefix)
    }

    /// Stream of ready and in-flight entries.
    pub(crate) fn stream(&self, queue: &str) -> String {
        format!("{}:q:{queue}:stream", self.prefix)
    }

    /// Sorted set of delayed jobs, score = due time in unix ms.
    pub(crate) fn delayed(&self, queue: &str) -> String {
        format!("{}:q:{queue}:delayed", self.prefix)
    }

    /// Hash job id -> current location (stream entry id or "delayed").
    pub(crate) fn jobs(&self, queue: &str) -> String {
        format!("{}:q:{queue}:jobs", self.prefix)
    }

    /// Hash of dead jobs.
    pub(crate) fn dead(&self, queue: &str) -> String {
        format!("{}:q:{queue}:dead", self.prefix)
    }

    /// Set of worker ids that have sent a heartbeat.
    pub(crate) fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// One worker's presence (JSON, with a time to live).
    pub(crate) fn worker(&self, id: &str) -> String {
        format!("{}:worker:{id}", self.prefix)
    }

    /// Pub/sub channel for run cancellations.
    pub(crate) fn cancel(&self) -> String {
        format!("{}:cancel", self.prefix)
    }
}

/// Queue names follow the same rule as workflow names:
/// `^[a-z0-9][a-z0-9_-]{0,62}$`.
pub(crate) fn check_queue_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes[1.min(bytes.len())..]
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if first_ok && rest_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(Error::BadQueueName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_queue_name;

    #[test]
    fn queue_names() {
        for good in ["default", "a", "0", "gpu-2", "x_y", &"a".repeat(63)] {
            assert!(check_queue_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "_a", "A", "a b", "a:b", "é", &"a".repeat(64)] {
            assert!(check_queue_name(bad).is_err(), "{bad}");
        }
    }
}
