//! State machine unit tests: start, completion, retries, failures, approval,
//! cancel, retry of a run, views, and replays.

mod common;

use common::{build, claim, fin, status, FATAL, FLAKY, OK};
use gantry_dag::{advance, Action, Event, NodeStatus, RunState, RunStatus, Transition};
use std::time::Duration;

#[test]
fn start_queues_roots_and_parks_gated_roots() {
    let (dag, plan) = build(
        &[vec![], vec![], vec![0, 1], vec![2]],
        &[false, true, false, false],
    );
    let (state, actions) = RunState::start(&dag, &plan);
    assert_eq!(
        actions,
        vec![Action::Enqueue { node: 0 }, Action::Park { node: 1 }]
    );
    assert_eq!(state.status, RunStatus::Running);
    assert_eq!((state.remaining, state.failed), (4, 0));
    assert_eq!(status(&state, 0), NodeStatus::Queued);
    assert_eq!(status(&state, 1), NodeStatus::WaitingApproval);
    assert_eq!(state.nodes[&2].waiting_on, 2);
    assert_eq!(state.nodes[&3].waiting_on, 1);
    assert_eq!((state.nodes[&3].attempt, state.nodes[&3].tries), (0, 0));
}

#[test]
fn diamond_join_waits_for_both_parents_then_run_succeeds() {
    let (dag, plan) = build(&[vec![], vec![0], vec![0], vec![1, 2]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    let a = claim(&mut s, 0);
    let t = advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::Enqueue { node: 1 }, Action::Enqueue { node: 2 }]
    );
    assert_eq!(t.changed, vec![0, 1, 2]);
    let a1 = claim(&mut s, 1);
    let a2 = claim(&mut s, 2);
    let t = advance(&dag, &plan, &mut s, fin(2, a2, OK), 0.0);
    assert!(t.actions.is_empty(), "join must wait for its other parent");
    assert_eq!(s.nodes[&3].waiting_on, 1);
    let t = advance(&dag, &plan, &mut s, fin(1, a1, OK), 0.0);
    assert_eq!(t.actions, vec![Action::Enqueue { node: 3 }]);
    let a3 = claim(&mut s, 3);
    let t = advance(&dag, &plan, &mut s, fin(3, a3, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Succeeded
        }]
    );
    assert_eq!(
        (s.status, s.remaining, s.failed),
        (RunStatus::Succeeded, 0, 0)
    );
}

#[test]
fn replayed_stale_and_unclaimed_completions_change_nothing() {
    let (dag, plan) = build(&[vec![], vec![0]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    let before = s.clone();
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, 0, OK), 0.0),
        Transition::default(),
        "queued, not running"
    );
    let a = claim(&mut s, 0);
    let claimed = s.clone();
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a + 1, OK), 0.0),
        Transition::default()
    );
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a - 1, OK), 0.0),
        Transition::default()
    );
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(7, 1, OK), 0.0),
        Transition::default(),
        "unknown node"
    );
    assert_eq!(s, claimed);
    assert_ne!(s, before);
    advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0);
    let done = s.clone();
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0),
        Transition::default()
    );
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a, FATAL), 0.0),
        Transition::default()
    );
    assert_eq!(s, done);
}

#[test]
fn retryable_failure_schedules_until_budget_is_spent() {
    let (dag, plan) = build(&[vec![], vec![0], vec![1], vec![]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    // tries 1 and 2 are retried with the policy's backoff (100ms, 200ms at jitter 1).
    for (tries, want) in [(1, 100), (2, 200)] {
        let a = claim(&mut s, 0);
        let t = advance(&dag, &plan, &mut s, fin(0, a, FLAKY), 1.0);
        assert_eq!(
            t.actions,
            vec![Action::Schedule {
                node: 0,
                delay: Duration::from_millis(want)
            }],
            "try {tries}"
        );
        assert_eq!(t.changed, vec![0]);
        assert_eq!(status(&s, 0), NodeStatus::Retrying);
        assert_eq!(s.remaining, 4);
    }
    // Try 3 of 3: failed for good; descendants skipped, the other root runs on.
    let a = claim(&mut s, 0);
    assert_eq!(a, 3);
    let t = advance(&dag, &plan, &mut s, fin(0, a, FLAKY), 1.0);
    assert!(t.actions.is_empty(), "{t:?}");
    assert_eq!(t.changed, vec![0, 1, 2]);
    assert_eq!(status(&s, 0), NodeStatus::Failed);
    assert_eq!(status(&s, 1), NodeStatus::Skipped);
    assert_eq!(status(&s, 2), NodeStatus::Skipped);
    assert_eq!(
        (s.remaining, s.failed, s.status),
        (1, 1, RunStatus::Running)
    );
    let a = claim(&mut s, 3);
    let t = advance(&dag, &plan, &mut s, fin(3, a, OK), 1.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Failed
        }]
    );
    assert_eq!(s.status, RunStatus::Failed);
}

#[test]
fn permanent_failure_is_never_retried() {
    let (dag, plan) = build(&[vec![], vec![0]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    let a = claim(&mut s, 0);
    let t = advance(&dag, &plan, &mut s, fin(0, a, FATAL), 0.5);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Failed
        }]
    );
    assert_eq!(t.changed, vec![0, 1]);
    assert_eq!(
        (status(&s, 0), status(&s, 1)),
        (NodeStatus::Failed, NodeStatus::Skipped)
    );
    assert_eq!((s.remaining, s.failed), (0, 1));
}

/// A node whose every try is lost fails and is buried (its job goes to the
/// dead list); one that failed for another cause is not.
#[test]
fn a_node_lost_on_every_try_fails_and_is_buried() {
    let (dag, plan) = build(&[vec![], vec![]], &[]);
    let tries = plan.node(0).retry.clamped().max_attempts;
    let (mut s, _) = RunState::start(&dag, &plan);
    let lose = |s: &mut RunState| {
        let attempt = claim(s, 0);
        advance(
            &dag,
            &plan,
            s,
            Event::LeaseExpired { node: 0, attempt },
            0.0,
        )
    };
    for _ in 1..tries {
        let t = lose(&mut s);
        assert!(
            matches!(t.actions[..], [Action::Schedule { node: 0, .. }]),
            "{t:?}"
        );
    }
    let t = lose(&mut s);
    assert_eq!(t.actions, vec![Action::Bury { node: 0 }]);
    assert_eq!(status(&s, 0), NodeStatus::Failed);
    let b = claim(&mut s, 1);
    let t = advance(&dag, &plan, &mut s, fin(1, b, FATAL), 0.0);
    assert!(
        !t.actions.iter().any(|a| matches!(a, Action::Bury { .. })),
        "{t:?}"
    );
    assert_eq!(status(&s, 1), NodeStatus::Failed);
}

#[test]
fn lease_expiry_is_a_retryable_failure_and_fences_the_late_completion() {
    let (dag, plan) = build(&[vec![]], &[]);
    let (mut s, _) = RunState::start(&dag, &plan);
    let a = claim(&mut s, 0);
    let t = advance(
        &dag,
        &plan,
        &mut s,
        Event::LeaseExpired {
            node: 0,
            attempt: a,
        },
        0.0,
    );
    assert_eq!(
        t.actions,
        vec![Action::Schedule {
            node: 0,
            delay: Duration::from_millis(50)
        }]
    );
    let b = claim(&mut s, 0);
    // The first worker's late report is rejected by the attempt fence.
    assert_eq!(
        advance(&dag, &plan, &mut s, fin(0, a, OK), 0.0),
        Transition::default()
    );
    assert_eq!(
        advance(
            &dag,
            &plan,
            &mut s,
            Event::LeaseExpired {
                node: 0,
                attempt: a
            },
            0.0
        ),
        Transition::default()
    );
    let t = advance(&dag, &plan, &mut s, fin(0, b, OK), 0.0);
    assert_eq!(
        t.actions,
        vec![Action::FinishRun {
            status: RunStatus::Succeeded
        }]
    );
}

#[test]
fn views_cover_what_each_event_touches() {
    let (dag, _) = build(&[vec![], vec![0], vec![1], vec![0], vec![]], &[]);
    assert_eq!(RunState::view(&dag, &fin(0, 1, OK)), Some(vec![0, 1, 3]));
    assert_eq!(
        RunState::view(&dag, &fin(0, 1, FLAKY)),
        Some(vec![0, 1, 2, 3])
    );
    assert_eq!(
        RunState::view(
            &dag,
            &Event::LeaseExpired {
                node: 1,
                attempt: 1
            }
        ),
        Some(vec![1, 2])
    );
    assert_eq!(
        // Approval queues the node; nothing below it is decided.
        RunState::view(&dag, &Event::Approved { node: 0 }),
        Some(vec![0])
    );
    assert_eq!(
        RunState::view(&dag, &Event::Rejected { node: 0 }),
        Some(vec![0, 1, 2, 3])
    );
    assert_eq!(
        RunState::view(&dag, &Event::Rejected { node: 4 }),
        Some(vec![4])
    );
    assert_eq!(RunState::view(&dag, &Event::Cancel), None);
    assert_eq!(RunState::view(&dag, &Event::Retry), None);
}
