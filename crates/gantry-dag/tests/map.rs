//! `for_each` in the pure state machine: expansion, `max_parallel`, the
//! fan-in, a failing instance, retry of only the failed instances, and a
//! property test over random sizes, outcomes, approval gates and event
//! orders (shuffled and duplicated) against an oracle that knows only the
//! items' fates.

mod common;

use common::map_sim::{fin, Sim, JOIN, MAP};
use common::{FATAL, FLAKY, MAX_ATTEMPTS, OK};
use gantry_dag::{
    instance_slot, Event, NodeFailure, NodeIdx, NodeStatus, Outcome, RunStatus, Slot,
};
use proptest::prelude::*;
use serde_json::{json, Value};

#[test]
fn every_instance_runs_then_the_node_succeeds_and_the_join_is_queued() {
    let mut sim = Sim::new(None, "all_succeeded");
    sim.source(json!(["a", "b", "c"]));
    assert_eq!(sim.status(MAP), NodeStatus::Running);
    let slots = sim.queued_instances();
    assert_eq!(
        slots,
        (0..3).map(|i| instance_slot(MAP, i)).collect::<Vec<_>>()
    );
    for &s in slots.iter().rev() {
        assert_eq!(sim.status(JOIN), NodeStatus::Pending);
        let a = sim.claim(s);
        assert!(sim.apply(fin(s, a, OK)));
    }
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
    assert_eq!(sim.status(JOIN), NodeStatus::Queued);
    assert_eq!(sim.state.remaining, 1);
}

#[test]
fn an_empty_array_succeeds_at_once_and_a_non_array_or_too_long_one_fails() {
    let mut sim = Sim::new(None, "all_succeeded");
    sim.source(json!([]));
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
    assert_eq!(sim.status(JOIN), NodeStatus::Queued);

    let mut sim = Sim::new(None, "all_done");
    sim.source(json!({"not": "an array"}));
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert!(matches!(
        sim.failures[..],
        [(MAP, NodeFailure::NotAnArray { got: "an object" })]
    ));
    assert_eq!(sim.status(JOIN), NodeStatus::Queued);

    let mut sim = Sim::new(None, "all_succeeded");
    sim.source(Value::Array(vec![json!(1); 1001]));
    assert!(matches!(
        sim.failures[..],
        [(
            MAP,
            NodeFailure::TooManyItems {
                items: 1001,
                max: 1000
            }
        )]
    ));
    assert_eq!(sim.status(JOIN), NodeStatus::Skipped);
    assert_eq!(sim.state.status, RunStatus::Failed);
}

#[test]
fn max_parallel_bounds_active_instances_and_a_failure_stops_new_ones() {
    let mut sim = Sim::new(Some(2), "one_failed");
    sim.source(json!([0, 1, 2, 3, 4, 5]));
    assert_eq!(sim.queued_instances().len(), 2);
    // Instance 0 succeeds: instance 2 starts.
    let a = sim.claim(instance_slot(MAP, 0));
    sim.apply(fin(instance_slot(MAP, 0), a, OK));
    assert_eq!(
        sim.queued_instances(),
        vec![instance_slot(MAP, 1), instance_slot(MAP, 2)]
    );
    // Instance 1 fails for good: nothing new starts; 2 finishes; the node
    // fails naming instance 1, and the on-failure join runs.
    let a1 = sim.claim(instance_slot(MAP, 1));
    let a2 = sim.claim(instance_slot(MAP, 2));
    sim.apply(fin(instance_slot(MAP, 1), a1, FATAL));
    assert!(sim.queued_instances().is_empty());
    assert_eq!(sim.status(MAP), NodeStatus::Running);
    sim.apply(fin(instance_slot(MAP, 2), a2, OK));
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert!(matches!(
        sim.failures[..],
        [(MAP, NodeFailure::Instance { index: 1 })]
    ));
    assert_eq!(sim.status(JOIN), NodeStatus::Queued);
    assert_eq!(sim.peak, 2);
    let a = sim.claim(JOIN);
    sim.apply(fin(JOIN, a, OK));
    assert_eq!(sim.state.status, RunStatus::Failed);

    // Retry: only instance 1 and those never started run, two at a time.
    sim.enqueued.clear();
    sim.apply(Event::Retry);
    assert_eq!(sim.state.status, RunStatus::Running);
    assert_eq!(
        sim.queued_instances(),
        vec![instance_slot(MAP, 1), instance_slot(MAP, 3)]
    );
    for _ in 0..10 {
        let Some(&s) = sim.queued_instances().first() else {
            break;
        };
        let a = sim.claim(s);
        sim.apply(fin(s, a, OK));
    }
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
    let rerun: Vec<u32> = sim
        .enqueued
        .iter()
        .filter_map(|&i| Slot::of(i).item())
        .collect();
    assert_eq!(rerun, vec![1, 3, 4, 5]);
    assert_eq!(sim.peak, 2);
}

#[test]
fn a_flaky_instance_retries_on_its_own_budget() {
    let mut sim = Sim::new(None, "all_succeeded");
    sim.source(json!(["x", "y"]));
    let s = instance_slot(MAP, 1);
    for _ in 1..MAX_ATTEMPTS {
        let a = sim.claim(s);
        sim.apply(fin(s, a, FLAKY));
        assert_eq!(sim.status(s), NodeStatus::Retrying);
    }
    let a = sim.claim(s);
    sim.apply(fin(s, a, FLAKY));
    assert_eq!(sim.status(s), NodeStatus::Failed);
    let a0 = sim.claim(instance_slot(MAP, 0));
    sim.apply(fin(instance_slot(MAP, 0), a0, OK));
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert!(matches!(
        sim.failures[..],
        [(MAP, NodeFailure::Instance { index: 1 })]
    ));
}

/// How an item's attempts go: `flakes` retryable failures, then success
/// or a permanent failure.
#[derive(Debug, Clone, Copy)]
struct Fate {
    flakes: u32,
    fatal: bool,
}

impl Fate {
    fn fails(self) -> bool {
        self.fatal || self.flakes >= MAX_ATTEMPTS
    }
    fn outcome(self, attempt: u32) -> Outcome {
        if attempt <= self.flakes {
            FLAKY
        } else if self.fatal {
            FATAL
        } else {
            OK
        }
    }
}

fn fates() -> impl Strategy<Value = Vec<Fate>> {
    prop::collection::vec(
        (0u32..4, prop::bool::weighted(0.08)).prop_map(|(flakes, fatal)| Fate {
            flakes: if flakes == 3 { 0 } else { flakes },
            fatal,
        }),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn maps_of_random_sizes_end_as_their_items_imply(
        fates in fates(),
        parallel in prop::option::of(1u32..6),
        gated in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut sim = if gated {
            Sim::gated(parallel, "all_done")
        } else {
            Sim::new(parallel, "all_done")
        };
        let n = fates.len();
        sim.source(Value::Array((0..n).map(|i| json!(i)).collect()));
        let mut rng = seed;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) as usize
        };
        let mut done_events: Vec<Event> = Vec::new();
        let mut failed_seen = false;
        for _ in 0..(n * 8 + 8) {
            // A gated map parks each instance it starts: approve the node
            // (every waiting one) or one instance at random.
            let waiting: Vec<NodeIdx> = (0..n as u32)
                .map(|i| instance_slot(MAP, i))
                .filter(|s| sim.state.nodes.get(s).is_some_and(|x| x.status == NodeStatus::WaitingApproval))
                .collect();
            if !waiting.is_empty() {
                prop_assert!(gated, "an ungated instance waits for approval");
                if next() % 2 == 0 {
                    let all = Event::Approved { node: MAP };
                    prop_assert!(sim.apply(all), "approving the node");
                } else {
                    let e = Event::Approved { node: waiting[next() % waiting.len()] };
                    prop_assert!(sim.apply(e), "approving an instance");
                    done_events.push(e);
                }
            }
            let queued = sim.queued_instances();
            if queued.is_empty() {
                break;
            }
            // Claim a random queued instance and finish it; sometimes
            // replay an old completion too (a duplicated delivery).
            let s = queued[next() % queued.len()];
            let a = sim.claim(s);
            let item = Slot::of(s).item().unwrap() as usize;
            let instances = |sim: &Sim| sim.enqueued.iter().filter(|&&i| i != JOIN).count();
            let before = instances(&sim);
            let e = fin(s, a, fates[item].outcome(a));
            sim.apply(e);
            done_events.push(e);
            if sim.status(s) == NodeStatus::Failed {
                failed_seen = true;
            }
            if failed_seen {
                // After a failure for good, no new instance starts (retries
                // of active ones are schedules, not enqueues).
                prop_assert_eq!(instances(&sim), before);
            }
            if next() % 4 == 0 {
                let old = done_events[next() % done_events.len()];
                prop_assert!(!sim.apply(old), "a replayed event changed the run: {:?}", old);
            }
        }
        if let Some(p) = parallel {
            prop_assert!(sim.peak <= p, "peak {} over max_parallel {}", sim.peak, p);
        }
        let any_fails = fates.iter().any(|f| f.fails());
        if any_fails {
            prop_assert_eq!(sim.status(MAP), NodeStatus::Failed);
            let index = match sim.failures[..] {
                [(MAP, NodeFailure::Instance { index })] => index as usize,
                ref other => panic!("unexpected failures {other:?}"),
            };
            prop_assert!(fates[index].fails());
        } else {
            prop_assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
            for i in 0..n {
                prop_assert_eq!(
                    sim.status(instance_slot(MAP, i as u32)),
                    NodeStatus::Succeeded
                );
            }
        }
        // The join runs either way (all_done), exactly once.
        prop_assert_eq!(sim.enqueued.iter().filter(|&&i| i == JOIN).count(), 1);
    }
}
