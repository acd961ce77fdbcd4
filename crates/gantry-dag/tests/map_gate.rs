//! Approval of `for_each` instances in the pure state machine (SPEC 2.1:
//! each instance has its own approval): instances park as they start,
//! approving one queues it alone, approving the node queues every waiting
//! one, a rejection fails the node and cancels the instances still
//! waiting, and `max_parallel` counts waiting instances.

mod common;

use common::map_sim::{fin, Sim, JOIN, MAP};
use common::{FATAL, OK};
use gantry_dag::{instance_slot, Event, NodeFailure, NodeStatus, RunStatus};
use serde_json::json;

fn slot(i: u32) -> u32 {
    instance_slot(MAP, i)
}

#[test]
fn each_instance_waits_for_its_own_approval() {
    let mut sim = Sim::gated(None, "all_succeeded");
    sim.source(json!(["a", "b", "c"]));
    assert_eq!(sim.parked, vec![slot(0), slot(1), slot(2)]);
    assert!(
        sim.queued_instances().is_empty(),
        "nothing queued before approval"
    );
    assert_eq!(sim.status(MAP), NodeStatus::WaitingApproval);

    assert!(sim.apply(Event::Approved { node: slot(1) }));
    assert_eq!(sim.queued_instances(), vec![slot(1)]);
    assert_eq!(sim.status(slot(0)), NodeStatus::WaitingApproval);
    assert_eq!(sim.status(MAP), NodeStatus::Running, "one instance queued");
    // Approving it again changes nothing.
    assert!(!sim.apply(Event::Approved { node: slot(1) }));
    let a = sim.claim(slot(1));
    sim.apply(fin(slot(1), a, OK));
    assert_eq!(
        sim.status(MAP),
        NodeStatus::WaitingApproval,
        "the rest wait"
    );

    // Approving the node approves every instance still waiting.
    assert!(sim.apply(Event::Approved { node: MAP }));
    assert_eq!(sim.queued_instances(), vec![slot(0), slot(2)]);
    assert!(!sim.apply(Event::Approved { node: MAP }), "none waits now");
    for i in [0, 2] {
        let a = sim.claim(slot(i));
        sim.apply(fin(slot(i), a, OK));
    }
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
    assert_eq!(sim.status(JOIN), NodeStatus::Queued);
}

#[test]
fn rejecting_one_instance_fails_the_node_and_cancels_the_waiting_ones() {
    let mut sim = Sim::gated(None, "one_failed");
    sim.source(json!([1, 2, 3]));
    sim.apply(Event::Approved { node: slot(0) });
    let a = sim.claim(slot(0));
    assert!(sim.apply(Event::Rejected { node: slot(2) }));
    assert_eq!(sim.status(slot(2)), NodeStatus::Failed);
    assert_eq!(
        sim.status(slot(1)),
        NodeStatus::Cancelled,
        "no new instance starts"
    );
    assert_eq!(
        sim.status(MAP),
        NodeStatus::Running,
        "instance 0 still runs"
    );
    sim.apply(fin(slot(0), a, OK));
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert_eq!(
        sim.failures,
        vec![(MAP, NodeFailure::Instance { index: 2 })]
    );
    assert_eq!(sim.status(JOIN), NodeStatus::Queued, "one_failed runs");
}

#[test]
fn rejecting_the_node_rejects_every_waiting_instance() {
    let mut sim = Sim::gated(None, "all_succeeded");
    sim.source(json!([1, 2]));
    assert!(sim.apply(Event::Rejected { node: MAP }));
    assert_eq!(sim.status(slot(0)), NodeStatus::Failed);
    assert_eq!(sim.status(slot(1)), NodeStatus::Failed);
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert_eq!(
        sim.failures,
        vec![(MAP, NodeFailure::Instance { index: 0 })]
    );
    assert_eq!(sim.status(JOIN), NodeStatus::Skipped);
    assert_eq!(sim.state.status, RunStatus::Failed);
}

#[test]
fn an_instance_that_fails_for_good_cancels_the_waiting_ones() {
    let mut sim = Sim::gated(None, "all_done");
    sim.source(json!([1, 2, 3]));
    sim.apply(Event::Approved { node: slot(1) });
    let a = sim.claim(slot(1));
    sim.apply(fin(slot(1), a, FATAL));
    assert_eq!(sim.status(slot(0)), NodeStatus::Cancelled);
    assert_eq!(sim.status(slot(2)), NodeStatus::Cancelled);
    assert_eq!(sim.status(MAP), NodeStatus::Failed);
    assert_eq!(
        sim.failures,
        vec![(MAP, NodeFailure::Instance { index: 1 })]
    );
    assert_eq!(sim.status(JOIN), NodeStatus::Queued, "all_done runs");
}

#[test]
fn max_parallel_counts_the_instances_that_wait_for_approval() {
    let mut sim = Sim::gated(Some(2), "all_succeeded");
    sim.source(json!([0, 1, 2, 3]));
    assert_eq!(sim.parked, vec![slot(0), slot(1)], "two slots, both parked");
    sim.apply(Event::Approved { node: MAP });
    for i in [0, 1] {
        let a = sim.claim(slot(i));
        sim.apply(fin(slot(i), a, OK));
    }
    // Each finished instance let the next one start, parked in turn.
    assert_eq!(sim.parked, vec![slot(0), slot(1), slot(2), slot(3)]);
    assert_eq!(sim.status(MAP), NodeStatus::WaitingApproval);
    sim.apply(Event::Approved { node: slot(3) });
    sim.apply(Event::Approved { node: slot(2) });
    for i in [3, 2] {
        let a = sim.claim(slot(i));
        sim.apply(fin(slot(i), a, OK));
    }
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
}

#[test]
fn an_index_past_the_items_is_not_waiting() {
    let mut sim = Sim::gated(None, "all_succeeded");
    sim.source(json!([1]));
    assert!(!sim.apply(Event::Approved { node: slot(5) }));
    assert!(!sim.apply(Event::Rejected { node: slot(5) }));
    assert_eq!(sim.status(slot(0)), NodeStatus::WaitingApproval);
}

#[test]
fn a_map_over_no_items_succeeds_without_a_gate() {
    let mut sim = Sim::gated(None, "all_succeeded");
    sim.source(json!([]));
    assert!(sim.parked.is_empty());
    assert_eq!(sim.status(MAP), NodeStatus::Succeeded);
}
