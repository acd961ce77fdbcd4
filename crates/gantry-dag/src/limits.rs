//! The documented maximum of every number in an agent or node definition.
//! Validation refuses a value past its bound with a 422 (see
//! `docs/agents.md`), and the executor clamps to the same bounds, so no
//! value can overflow into "no limit" or an out-of-range interval.

/// `timeout_s` (agent or node): at most 7 days.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
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
