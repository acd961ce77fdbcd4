//! Backoff arithmetic: `min(max_delay, initial_delay * multiplier^(tries-1))`,
//! scaled by `0.5 + 0.5 * jitter`.
//!
//! Why not backon's `ExponentialBuilder` here: its factor is an `f32` (our
//! stored multiplier is an `f64`, so delays would drift by float rounding),
//! and reaching the n-th delay means stepping its iterator n times, which is
//! unbounded work for a `u32` try count with a multiplier close to 1. The
//! closed form below is O(1) and saturates instead of overflowing. The tests
//! check that it yields the same sequence as backon for exactly representable
//! policies.

use crate::RetryPolicy;
use std::time::Duration;

/// The un-jittered delay in milliseconds after `tries` failed tries (1-based;
/// 0 is treated as 1). Never NaN, never above `max_delay_ms` nor
/// [`crate::limits::MAX_DELAY_MS`] (a policy stored before the bounds were
/// enforced may hold more).
pub(crate) fn base_delay_ms(p: &RetryPolicy, tries: u32) -> f64 {
    let max = crate::limits::clamp_delay_ms(p.max_delay_ms) as f64;
    if p.initial_delay_ms == 0 {
        return 0.0;
    }
    // A NaN or shrinking multiplier would make no sense as backoff; treat it
    // as constant. Validation rejects multipliers below 1 anyway.
    let multiplier = if p.multiplier >= 1.0 {
        p.multiplier
    } else {
        1.0
    };
    let exponent = i32::try_from(tries.saturating_sub(1)).unwrap_or(i32::MAX);
    // powi of a value >= 1 is >= 1 or +inf, never NaN; min caps +inf.
    let grown = p.initial_delay_ms as f64 * multiplier.powi(exponent);
    grown.min(max)
}

pub(crate) fn delay_after(p: &RetryPolicy, tries: u32, jitter: f64) -> Duration {
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let ms = base_delay_ms(p, tries) * (0.5 + 0.5 * jitter);
    // Whole milliseconds stay exact; `as` casts of a finite, non-negative
    // f64 saturate rather than wrap.
    let whole = ms.floor();
    let nanos = ((ms - whole) * 1e6).round() as u64;
    Duration::from_millis(whole as u64).saturating_add(Duration::from_nanos(nanos))
}
