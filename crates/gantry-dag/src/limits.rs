//! The documented maximum of every number in an agent or node definition.
//! Validation refuses a value past its bound with a 422 (see
//! `docs/agents.md`), and the executor clamps to the same bounds, so no
//! value can overflow into "no limit" or an out-of-range interval.

/// `timeout_s` (agent or node): at most 7 days.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
/// `approval_timeout_s` (agent or node): at most 30 days.
pub const MAX_APPROVAL_TIMEOUT_S: u64 = 30 * 24 * 3600;
/// Longest `wait.timeout_s` (30 days, like an approval timeout).
pub const MAX_WAIT_TIMEOUT_S: u64 = 30 * 24 * 3600;
/// Longest `retention_days` (100 years).
pub const MAX_RETENTION_DAYS: u64 = 36_500;
/// `retry.max_attempts`.
pub const MAX_ATTEMPTS: u32 = 100;
/// `retry.initial_delay_ms` and `retry.max_delay_ms`: at most 1 day.
pub const MAX_DELAY_MS: u64 = 24 * 3600 * 1000;
/// `retry.multiplier`: finite, from 1.0 up to this.
pub const MAX_MULTIPLIER: f64 = 100.0;
/// `limits.memory_mb`: from [`MIN_MEMORY_MB`] (Docker's floor is 6 MiB) up
/// to 1 TiB.
pub const MIN_MEMORY_MB: u64 = 6;
pub const MAX_MEMORY_MB: u64 = 1 << 20;
/// `limits.cpus`: more than 0, at most this.
pub const MAX_CPUS: f64 = 1024.0;
/// `limits.pids`: at least 1, at most this.
pub const MAX_PIDS: u64 = 1 << 22;
/// `rate_limit.per_second` and `rate_limit.burst`.
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;
pub const MAX_BURST: u32 = 1_000_000;

use crate::model::{Limits, RetryPolicy};

impl RetryPolicy {
    /// This policy with every number inside its bound: what the engine acts
    /// on, so a policy stored before the bounds were enforced can never
    /// overflow a delay or retry without end.
    pub fn clamped(&self) -> RetryPolicy {
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.clamp(1.0, MAX_MULTIPLIER)
        } else {
            1.0
        };
        RetryPolicy {
            max_attempts: self.max_attempts.clamp(1, MAX_ATTEMPTS),
            initial_delay_ms: self.initial_delay_ms.min(MAX_DELAY_MS),
            max_delay_ms: self.max_delay_ms.min(MAX_DELAY_MS),
            multiplier,
        }
    }
}

impl Limits {
    /// These limits inside their bounds (a NaN or infinite `cpus` becomes
    /// 1.0): what a runtime enforces, never "no limit".
    pub fn clamped(&self) -> Limits {
        let cpus = if self.cpus.is_finite() && self.cpus > 0.0 {
            self.cpus.min(MAX_CPUS)
        } else {
            1.0
        };
        Limits {
            memory_mb: self.memory_mb.clamp(MIN_MEMORY_MB, MAX_MEMORY_MB),
            cpus,
            pids: self.pids.clamp(1, MAX_PIDS),
        }
    }
}

/// A `timeout_s` inside `1..=MAX_TIMEOUT_S`.
pub fn clamp_timeout_s(timeout_s: u64) -> u64 {
    timeout_s.clamp(1, MAX_TIMEOUT_S)
}

/// A retry delay in milliseconds inside `0..=MAX_DELAY_MS`.
pub fn clamp_delay_ms(ms: u64) -> u64 {
    ms.min(MAX_DELAY_MS)
}

/// How deep child runs nest (SPEC 2.1): a top-level run is at depth 0, so
/// a `workflow` node of a run at this depth fails instead of starting one.
pub const MAX_DEPTH: u32 = 8;
