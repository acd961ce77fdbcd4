//! Backoff tests: growth, cap, jitter bounds, saturation, and agreement with
//! backon's exponential sequence.

use backon::{BackoffBuilder, ExponentialBuilder};
use gantry_dag::{Backoff, RetryPolicy};
use std::time::Duration;

fn policy(max_attempts: u32, initial: u64, max: u64, multiplier: f64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay_ms: initial,
        max_delay_ms: max,
        multiplier,
    }
}

#[test]
fn grows_exponentially_up_to_max() {
    let p = policy(10, 500, 30_000, 2.0);
    // jitter 1.0 scales by exactly 1.
    let got: Vec<u64> = (1..=9)
        .map(|t| Backoff::delay_after(&p, t, 1.0).as_millis() as u64)
        .collect();
    assert_eq!(
        got,
        vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    );
    assert_eq!(Backoff::delay_after(&p, 0, 1.0), Duration::from_millis(500));
}

#[test]
fn monotone_for_any_jitter() {
    for multiplier in [1.0, 1.1, 1.5, 2.0, 10.0] {
        let p = policy(100, 100, 60_000, multiplier);
        for jitter in [0.0, 0.3, 0.999] {
            let mut last = Duration::ZERO;
            for tries in 1..200 {
                let d = Backoff::delay_after(&p, tries, jitter);
                assert!(d >= last, "m={multiplier} j={jitter} tries={tries}");
                assert!(d <= Duration::from_millis(60_000));
                last = d;
            }
        }
    }
}

#[test]
fn jitter_scales_into_half_to_full() {
    let p = policy(5, 1_000, 60_000, 2.0);
    assert_eq!(
        Backoff::delay_after(&p, 3, 0.0),
        Duration::from_millis(2_000)
    );
    assert_eq!(
        Backoff::delay_after(&p, 3, 0.5),
        Duration::from_millis(3_000)
    );
    for i in 0..1_000 {
        let jitter = i as f64 / 1_000.0;
        let d = Backoff::delay_after(&p, 3, jitter);
        assert!(
            d >= Duration::from_millis(2_000) && d < Duration::from_millis(4_000),
            "{jitter}: {d:?}"
        );
    }
    // Out-of-range and NaN jitter are clamped.
    assert_eq!(
        Backoff::delay_after(&p, 3, -5.0),
        Duration::from_millis(2_000)
    );
    assert_eq!(
        Backoff::delay_after(&p, 3, 7.0),
        Duration::from_millis(4_000)
    );
    assert_eq!(
        Backoff::delay_after(&p, 3, f64::NAN),
        Duration::from_millis(2_000)
    );
}

#[test]
fn saturates_for_huge_tries_and_multipliers() {
    let cases = [
        policy(u32::MAX, 1_000, 60_000, 2.0),
        policy(3, 1_000, 60_000, 1e300),
        policy(3, 1_000, 60_000, f64::INFINITY),
        policy(3, u64::MAX, u64::MAX, f64::MAX),
        policy(3, 1_000, 60_000, f64::NAN),
        policy(3, 1_000, 60_000, 0.1),
    ];
    for p in cases {
        for tries in [1, 2, 64, 1_000_000, u32::MAX] {
            let d = Backoff::delay_after(&p, tries, 1.0);
            assert!(
                d <= Duration::from_millis(p.max_delay_ms),
                "{p:?} {tries}: {d:?}"
            );
        }
    }
    let p = policy(3, 1_000, 60_000, 2.0);
    assert_eq!(
        Backoff::delay_after(&p, u32::MAX, 1.0),
        Duration::from_millis(60_000)
    );
    // NaN or shrinking multipliers act as constant delays.
    let p = policy(3, 1_000, 60_000, f64::NAN);
    assert_eq!(
        Backoff::delay_after(&p, 50, 1.0),
        Duration::from_millis(1_000)
    );
    assert_eq!(
        Backoff::delay_after(&policy(3, 0, 10, 2.0), 9, 1.0),
        Duration::ZERO
    );
}

#[test]
fn iterator_yields_one_delay_per_retry() {
    let p = policy(4, 100, 60_000, 3.0);
    let got: Vec<Duration> = Backoff::new(p, 1.0).collect();
    assert_eq!(got, [100, 300, 900].map(Duration::from_millis).to_vec());
    assert_eq!(Backoff::new(policy(1, 100, 1_000, 2.0), 0.0).count(), 0);
}

#[test]
fn matches_backon_for_representable_policies() {
    for (initial, max, factor) in [
        (1_000u64, 60_000u64, 2.0f32),
        (500, 30_000, 1.5),
        (250, 100_000, 4.0),
    ] {
        let ours = policy(12, initial, max, f64::from(factor));
        let theirs: Vec<Duration> = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(initial))
            .with_max_delay(Duration::from_millis(max))
            .with_factor(factor)
            .with_max_times(11)
            .build()
            .collect();
        let mine: Vec<Duration> = Backoff::new(ours, 1.0).collect();
        assert_eq!(mine.len(), theirs.len());
        for (a, b) in mine.iter().zip(&theirs) {
            let diff = a.as_secs_f64() - b.as_secs_f64();
            assert!(diff.abs() < 1e-3, "{a:?} vs backon {b:?}");
        }
    }
}
