//! The claim decision: which delivered nodes start an attempt, with which
//! attempt number, and why the others do not.

use gantry_dag::{
    claim, Claim, ClaimView, NodeState, NodeStatus, Refusal, RunStatus, RETRY_SKEW_MS,
};

fn view(status: NodeStatus) -> ClaimView {
    ClaimView {
        run: RunStatus::Running,
        status,
        attempt: 2,
        tries: 1,
        retry_at_ms: None,
        now_ms: 1_000_000,
    }
}

#[test]
fn a_queued_node_starts_the_next_attempt_and_spends_a_try() {
    assert_eq!(
        claim(&view(NodeStatus::Queued)),
        Ok(Claim {
            from: NodeStatus::Queued,
            from_attempt: 2,
            from_tries: 1,
            attempt: 3,
            tries: 2,
        })
    );
}

#[test]
fn a_retry_starts_once_due_allowing_for_clock_skew() {
    let at = |retry_at_ms| ClaimView {
        retry_at_ms: Some(retry_at_ms),
        ..view(NodeStatus::Retrying)
    };
    let now = view(NodeStatus::Retrying).now_ms;
    assert_eq!(claim(&at(now - 5)).map(|c| c.attempt), Ok(3));
    assert_eq!(claim(&at(now + RETRY_SKEW_MS)).map(|c| c.attempt), Ok(3));
    assert_eq!(
        claim(&at(now + RETRY_SKEW_MS + 40)),
        Err(Refusal::RetryNotDue(40))
    );
    assert_eq!(
        claim(&view(NodeStatus::Retrying)).map(|c| c.from),
        Ok(NodeStatus::Retrying)
    );
}

#[test]
fn nothing_starts_in_a_run_that_is_not_running() {
    for run in [
        RunStatus::Cancelled,
        RunStatus::Failed,
        RunStatus::Succeeded,
    ] {
        let v = ClaimView {
            run,
            ..view(NodeStatus::Queued)
        };
        assert_eq!(claim(&v), Err(Refusal::RunNotRunning(run)));
    }
}

#[test]
fn a_node_that_is_not_ready_is_refused_with_its_status() {
    for status in [
        NodeStatus::Pending,
        NodeStatus::WaitingApproval,
        NodeStatus::Running,
        NodeStatus::Succeeded,
        NodeStatus::Failed,
        NodeStatus::Skipped,
        NodeStatus::Cancelled,
    ] {
        assert_eq!(
            claim(&view(status)),
            Err(Refusal::NotReady(status)),
            "{status}"
        );
    }
}

#[test]
fn a_second_delivery_of_a_claimed_node_is_refused() {
    let mut node = NodeState::instance(NodeStatus::Queued);
    assert_eq!(node.claim(), Ok(1));
    assert_eq!(
        (node.status, node.attempt, node.tries),
        (NodeStatus::Running, 1, 1)
    );
    assert_eq!(node.claim(), Err(Refusal::NotReady(NodeStatus::Running)));
    assert_eq!(node.attempt, 1);
}

#[test]
fn what_a_queued_job_says_decides_like_the_row_it_describes() {
    let row = view(NodeStatus::Queued);
    assert_eq!(
        claim(&ClaimView::queued(row.attempt, row.tries)),
        claim(&row)
    );
}
