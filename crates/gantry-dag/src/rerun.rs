//! Re-running a finished run from chosen nodes (SPEC section 4): every
//! node that is neither one of them nor downstream of them, and that
//! succeeded, is reused (kept with its output, no attempt); the rest run
//! again. The new run's state is built here as if every node to run again
//! had failed, so that [`crate::Event::Retry`] decides them through the
//! same path a retry does.

use crate::{Facts, NodeIdx, NodeState, NodeStatus, RunState, RunStatus, ValidatedDag};
use std::collections::BTreeMap;

/// The state of a re-run before [`crate::Event::Retry`] is applied to it:
/// reused nodes `succeeded`, the others `failed`. `old` is each node's
/// status in the old run (by index); `from` the nodes to run again (with
/// everything downstream of them). Returns the state and which nodes are
/// reused.
pub fn rerun_state(
    dag: &ValidatedDag,
    old: &[NodeStatus],
    from: &[NodeIdx],
) -> (RunState, Vec<bool>) {
    let mut again = vec![false; dag.len()];
    for &f in from {
        if let Some(a) = again.get_mut(f as usize) {
            *a = true;
        }
        for d in dag.descendants(f) {
            again[d as usize] = true;
        }
    }
    let reused: Vec<bool> = (0..dag.len())
        .map(|i| !again[i] && old.get(i) == Some(&NodeStatus::Succeeded))
        .collect();
    let nodes: BTreeMap<NodeIdx, NodeState> = reused
        .iter()
        .enumerate()
        .map(|(i, &kept)| {
            let status = if kept {
                NodeStatus::Succeeded
            } else {
                NodeStatus::Failed
            };
            (i as NodeIdx, NodeState::instance(status))
        })
        .collect();
    let failed = reused.iter().filter(|r| !**r).count();
    let state = RunState {
        status: RunStatus::Failed,
        remaining: 0,
        failed: u32::try_from(failed).unwrap_or(u32::MAX),
        nodes,
        facts: Facts::default(),
    };
    (state, reused)
}
