//! Runs set aside: a run whose advance fails on its own (a corrupt row, a
//! value Postgres refuses) is left out of the coordinator's batches for a
//! while, with a growing pause, so it can never hold up other runs'
//! advances. Bounded in size and in the pause.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// First pause of a run set aside; doubles on each further failure.
const FIRST_PAUSE: Duration = Duration::from_secs(5);
/// Longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Most runs remembered; past it, the oldest entries are forgotten.
const MAX_RUNS: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct SetAside {
    runs: HashMap<Uuid, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Instant,
    failures: u32,
}

impl SetAside {
    /// Runs to leave out of batches at `now`.
    pub(crate) fn active(&self, now: Instant) -> Vec<Uuid> {
        self.runs
            .iter()
            .filter(|(_, e)| e.until > now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// `run` failed to advance on its own at `now`; returns its pause.
    pub(crate) fn fail(&mut self, run: Uuid, now: Instant) -> Duration {
        if self.runs.len() >= MAX_RUNS {
            // Forget those whose pause is over first, then the oldest.
            self.runs.retain(|_, e| e.until > now);
            if self.runs.len() >= MAX_RUNS {
                if let Some(oldest) = self.runs.iter().min_by_key(|(_, e)| e.until) {
                    let oldest = *oldest.0;
                    self.runs.remove(&oldest);
                }
            }
        }
        let failures = self.runs.get(&run).map_or(0, |e| e.failures) + 1;
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_PAUSE);
        self.runs.insert(
            run,
            Entry {
                until: now + pause,
                failures,
            },
        );
        pause
    }

    /// `run` advanced: it is no longer set aside.
    pub(crate) fn clear(&mut self, run: Uuid) {
        self.runs.remove(&run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_are_capped_and_expire() {
        let mut s = SetAside::default();
        let run = Uuid::new_v4();
        let t0 = Instant::now();
        assert_eq!(s.fail(run, t0), FIRST_PAUSE);
        assert_eq!(s.fail(run, t0), FIRST_PAUSE * 2);
        for _ in 0..40 {
            s.fail(run, t0);
        }
        assert_eq!(s.fail(run, t0), MAX_PAUSE);
        assert_eq!(s.active(t0), vec![run]);
        assert!(s.active(t0 + MAX_PAUSE).is_empty());
        s.clear(run);
        assert_eq!(s.fail(run, t0), FIRST_PAUSE);
    }

    #[test]
    fn memory_is_bounded() {
        let mut s = SetAside::default();
        let t0 = Instant::now();
        for _ in 0..MAX_RUNS + 10 {
            s.fail(Uuid::new_v4(), t0);
        }
        assert!(s.runs.len() <= MAX_RUNS);
    }
}
