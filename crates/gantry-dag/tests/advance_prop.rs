//! Property tests of the state machine: random acyclic DAGs driven to the end
//! with shuffled, duplicated and stale events, through the full state and
//! through the coordinator's partial views, with identical results.

mod common;

use common::scenario::{run, Case, Fate};
use proptest::prelude::*;
use proptest::sample::Index;

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Ok),
        2 => (1u32..=3, any::<bool>()).prop_map(|(fails, lease)| Fate::Flaky { fails, lease }),
        1 => Just(Fate::Permanent),
        1 => Just(Fate::Reject),
    ]
}

fn case(max_nodes: usize, failures: bool) -> impl Strategy<Value = Case> {
    (1..=max_nodes).prop_flat_map(move |n| {
        let fates = if failures {
            proptest::collection::vec(fate(), n).boxed()
        } else {
            Just(vec![Fate::Ok; n]).boxed()
        };
        (
            proptest::collection::vec(proptest::collection::vec(any::<Index>(), 0..4), n),
            proptest::collection::vec(proptest::bool::weighted(0.15), n),
            fates,
            any::<u64>(),
            proptest::option::weighted(0.3, 0u16..150),
            any::<bool>(),
        )
            .prop_map(|(picks, gated, fates, seed, cancel_at, fix_and_retry)| {
                let parents = picks
                    .iter()
                    .enumerate()
                    .map(|(i, ps)| {
                        if i == 0 {
                            vec![]
                        } else {
                            ps.iter().map(|p| p.index(i)).collect()
                        }
                    })
                    .collect();
                Case {
                    parents,
                    gated,
                    fates,
                    seed,
                    cancel_at,
                    fix_and_retry,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_node_runs_once_when_all_succeed(case in case(40, false)) {
        let full = run(&case, false);
        let partial = run(&case, true);
        prop_assert_eq!(full, partial);
    }

    #[test]
    fn failures_skip_descendants_and_fail_the_run(case in case(40, true)) {
        let full = run(&case, false);
        let partial = run(&case, true);
        prop_assert_eq!(full, partial);
    }
}

/// Fixed scenarios through the same harness: a diamond whose join is gated,
/// a lease expiry followed by the zombie's late report, a cancel in the
/// middle and a retry after failure.
#[test]
fn pinned_diamond_with_lease_cancel_and_retry() {
    for seed in 0..50 {
        let case = Case {
            parents: vec![vec![], vec![0], vec![0, 0], vec![1, 2], vec![]],
            gated: vec![false, false, false, true, false],
            fates: vec![
                Fate::Flaky {
                    fails: 2,
                    lease: true,
                },
                Fate::Ok,
                Fate::Flaky {
                    fails: 1,
                    lease: false,
                },
                Fate::Ok,
                Fate::Permanent,
            ],
            seed,
            cancel_at: Some((seed % 7) as u16),
            fix_and_retry: true,
        };
        assert_eq!(run(&case, false), run(&case, true), "seed {seed}");
    }
}

#[test]
fn pinned_exhausted_retries_skip_a_long_chain() {
    let n = 40;
    let case = Case {
        parents: (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect(),
        gated: vec![false; n],
        fates: std::iter::once(Fate::Flaky {
            fails: 3,
            lease: true,
        })
        .chain(std::iter::repeat(Fate::Ok))
        .take(n)
        .collect(),
        seed: 7,
        cancel_at: None,
        fix_and_retry: true,
    };
    assert_eq!(run(&case, false), run(&case, true));
}
