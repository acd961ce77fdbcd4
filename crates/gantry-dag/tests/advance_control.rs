//! State machine unit tests for control events: approval gates, cancel and
//! retry of a run.

mod common;

use common::{build, claim, fin, status, FATAL, OK};
use gantry_dag::{advance, Action, Event, NodeStatus, RunState, RunStatus, Transition};

#[test]
fn approval_gate_approve_and_reject() {
    let (dag, plan) = build(
        &[vec![], vec![0], vec![0], vec![2]],
        &[false, true, true, false],
    );
    let (mut s, _) = RunState::start(&dag, &plan);
    assert_eq!(
        advance(&dag, &plan, &mut s, Event::Approved { node: 1 }, 0.0),
        Transition::default(),
        "still pending"
    );
    let a = claim(&mut s, 0);
    let t = advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::Park { node: 1 }, Action::Park { node: 2 }]
    );
    let t = advance(&dag, &plan, &mut s, Event::Approved { node: 1 }, 0.0);
    assert_eq!(t.actions, vec![Action::Enqueue { node: 1 }]);
    assert_eq!(t.changed, vec![1]);
    assert_eq!(
        advance(&dag, &plan, &mut s, Event::Approved { node: 1 }, 0.0),
        Transition::default(),
        "replay"
    );
    assert_eq!(
        advance(&dag, &plan, &mut s, Event::Rejected { node: 1 }, 0.0),
        Transition::default(),
        "not waiting"
    );
    let t = advance(&dag, &plan, &mut s, Event::Rejected { node: 2 }, 0.0);
    assert_eq!(t.changed, vec![2, 3]);
    assert_eq!(
        (status(&s, 2), status(&s, 3)),
        (NodeStatus::Failed, NodeStatus::Skipped)
    );
    let a = claim(&mut s, 1);
    let t = advance(&dag, &plan, &mut s, fin(1, a, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Failed
        }]
    );
    assert_eq!((s.remaining, s.failed), (0, 1));
}

#[test]
fn cancel_stops_running_nodes_and_blocks_further_events() {
    let (dag, plan) = build(
        &[vec![], vec![], vec![0], vec![1]],
        &[false, false, false, true],
    );
    let (mut s, _) = RunState::start(&dag, &plan);
    let a0 = claim(&mut s, 0);
    let t = advance(&dag, &plan, &mut s, fin(0, a0, OK), 0.0);
    assert_eq!(t.actions, vec![Action::Enqueue { node: 2 }]);
    let a1 = claim(&mut s, 1);
    let t = advance(&dag, &plan, &mut s, Event::Cancel, 0.0);
    assert_eq!(
        t.actions,
        vec![
            Action::Stop { node: 1 },
            Action::FinishRun {
                status: RunStatus::Cancelled
            }
        ]
    );
    assert_eq!(t.changed, vec![1, 2, 3]);
    assert_eq!(status(&s, 0), NodeStatus::Succeeded);
    assert!((1..4).all(|n| status(&s, n) == NodeStatus::Cancelled));
    assert_eq!((s.status, s.remaining), (RunStatus::Cancelled, 0));
    let frozen = s.clone();
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(1, a1, OK), 0.0),
        Transition::default()
    );
    assert_eq!(
        advance(&dag, &plan, &mut s, Event::Cancel, 0.0),
        Transition::default()
    );
    assert_eq!(s, frozen);
}

#[test]
fn retry_reruns_failed_and_skipped_nodes_and_keeps_succeeded_ones() {
    let (dag, plan) = build(
        &[vec![], vec![0], vec![1], vec![], vec![3]],
        &[false, false, false, false, true],
    );
    let (mut s, _) = RunState::start(&dag, &plan);
    assert_eq!(
        advance(&dag, &plan, &mut s, Event::Retry, 0.0),
        Transition::default(),
        "run still running"
    );
    let a = claim(&mut s, 0);
    advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0);
    let a = claim(&mut s, 1);
    advance(&dag, &plan, &mut s, fin(1, a, FATAL), 0.0);
    let a3 = claim(&mut s, 3);
    let t = advance(&dag, &plan, &mut s, fin(3, a3, OK), 0.0);
    assert_eq!(t.actions, vec![Action::Park { node: 4 }]);
    let t = advance(&dag, &plan, &mut s, Event::Rejected { node: 4 }, 0.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Failed
        }]
    );
    assert_eq!(s.failed, 2);

    let t = advance(&dag, &plan, &mut s, Event::Retry, 0.0);
    assert_eq!(
        t.actions,
        vec![Action::Enqueue { node: 1 }, Action::Park { node: 4 }]
    );
    assert_eq!(t.changed, vec![1, 2, 4]);
    assert_eq!(
        (s.status, s.remaining, s.failed),
        (RunStatus::Running, 3, 0)
    );
    assert_eq!(status(&s, 0), NodeStatus::Succeeded);
    assert_eq!(status(&s, 2), NodeStatus::Pending);
    assert_eq!(s.nodes[&2].waiting_on, 1);
    assert_eq!(
        (s.nodes[&1].tries, s.nodes[&1].attempt),
        (0, 1),
        "budget reset, fence kept"
    );

    let a = claim(&mut s, 1);
    assert_eq!(a, 2);
    let t = advance(&dag, &plan, &mut s, fin(1, a, OK), 0.0);
    assert_eq!(t.actions, vec![Action::Enqueue { node: 2 }]);
    let a = claim(&mut s, 2);
    advance(&dag, &plan, &mut s, fin(2, a, OK), 0.0);
    advance(&dag, &plan, &mut s, Event::Approved { node: 4 }, 0.0);
    let a = claim(&mut s, 4);
    let t = advance(&dag, &plan, &mut s, fin(4, a, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Succeeded
        }]
    );
}

#[test]
fn retry_after_cancel_requeues_cancelled_nodes() {
    let (dag, plan) = build(&[vec![], vec![0]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    let a = claim(&mut s, 0);
    advance(&dag, &plan, &mut s, Event::Cancel, 0.0);
    let t = advance(&dag, &plan, &mut s, Event::Retry, 0.0);
    assert_eq!(t.actions, vec![Action::Enqueue { node: 0 }]);
    assert_eq!(t.changed, vec![0, 1]);
    // The cancelled attempt's late report does not count.
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0),
        Transition::default()
    );
    assert_eq!(status(&s, 0), NodeStatus::Queued);
}
