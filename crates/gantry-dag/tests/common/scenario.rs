//! Scenarios for the simulator: node fates, generated cases, the oracle of
//! final statuses computed without the state machine, and the end checks.

use super::sim::Sim;
use super::{build, MAX_ATTEMPTS};
use gantry_dag::{
    Action, Event, NodeIdx, NodeStatus, RunState, RunStatus, Transition, ValidatedDag,
};

/// How a node behaves when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Ok,
    /// Fails retryably `fails` times (by lease expiry when `lease`), then succeeds.
    Flaky {
        fails: u32,
        lease: bool,
    },
    Permanent,
    /// Rejected at its approval gate (behaves as `Ok` without a gate).
    Reject,
}

#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) parents: Vec<Vec<usize>>,
    pub(crate) gated: Vec<bool>,
    pub(crate) fates: Vec<Fate>,
    pub(crate) seed: u64,
    /// Cancel the run at this step (if still running), then retry it.
    pub(crate) cancel_at: Option<u16>,
    /// After a failed run, make every node succeed and retry the run.
    pub(crate) fix_and_retry: bool,
}

/// Everything observable about a simulation, to compare full and partial runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Trace {
    pub(crate) log: Vec<(Event, Transition)>,
    pub(crate) state: RunState,
}

/// The final status each node must reach, computed without the state machine.
pub(crate) fn expected(dag: &ValidatedDag, gated: &[bool], fates: &[Fate]) -> Vec<NodeStatus> {
    let mut out = vec![NodeStatus::Pending; dag.len()];
    for &n in dag.topo() {
        let i = n as usize;
        out[i] = if dag
            .parents(n)
            .iter()
            .any(|p| out[*p as usize] != NodeStatus::Succeeded)
        {
            NodeStatus::Skipped
        } else {
            let fails = match fates[i] {
                Fate::Ok => false,
                Fate::Flaky { fails, .. } => fails >= MAX_ATTEMPTS,
                Fate::Permanent => true,
                Fate::Reject => gated[i],
            };
            if fails {
                NodeStatus::Failed
            } else {
                NodeStatus::Succeeded
            }
        };
    }
    out
}

/// Run a case through the simulator and check its end state.
pub(crate) fn run(case: &Case, partial: bool) -> Trace {
    let (dag, plan) = build(&case.parents, &case.gated);
    let (state, actions) = RunState::start(&dag, &plan);
    let mut enqueued = vec![0u32; dag.len()];
    for a in &actions {
        if let Action::Enqueue { node } = a {
            enqueued[*node as usize] += 1;
        }
    }
    let mut sim = Sim {
        dag: &dag,
        plan: &plan,
        fates: case.fates.clone(),
        partial,
        state,
        rng: case.seed,
        pool: Vec::new(),
        history: Vec::new(),
        enqueued,
        log: Vec::new(),
    };
    sim.drive(case.cancel_at);
    let want = expected(&dag, &case.gated, &case.fates);
    let got: Vec<NodeStatus> = sim.state.nodes.values().map(|n| n.status).collect();
    assert_eq!(got, want, "final node statuses");
    let any_failed = want.contains(&NodeStatus::Failed);
    let run_status = if any_failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    assert_eq!(sim.state.status, run_status);
    for (i, s) in want.iter().enumerate() {
        let times = sim.enqueued[i];
        match s {
            NodeStatus::Succeeded => assert_eq!(times, 1, "node {i} enqueued {times} times"),
            NodeStatus::Skipped => assert_eq!(times, 0, "skipped node {i} was enqueued"),
            _ => assert!(times <= 1),
        }
    }

    if case.fix_and_retry && any_failed {
        let kept: Vec<NodeIdx> = (0..dag.len() as NodeIdx)
            .filter(|n| sim.st(*n).status == NodeStatus::Succeeded)
            .collect();
        sim.fates = vec![Fate::Ok; dag.len()];
        let t = sim.apply(Event::Retry);
        assert!(!t.changed.is_empty());
        assert_eq!(sim.state.status, RunStatus::Running);
        for n in &kept {
            assert!(!t.changed.contains(n), "succeeded node {n} was reset");
        }
        sim.drive(None);
        assert_eq!(sim.state.status, RunStatus::Succeeded);
        assert!(sim
            .state
            .nodes
            .values()
            .all(|n| n.status == NodeStatus::Succeeded));
        for n in kept {
            assert_eq!(sim.enqueued[n as usize], 1, "succeeded node {n} ran again");
        }
    }
    Trace {
        log: sim.log,
        state: sim.state,
    }
}
