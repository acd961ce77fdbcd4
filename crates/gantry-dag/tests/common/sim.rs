//! A simulated cluster driving the state machine: claims nodes, delivers
//! completions in random order, replays and fences stale events, approves or
//! rejects gates, optionally cancels and retries, and checks invariants after
//! every event. Used by the property tests and their pinned regressions.

use super::scenario::Fate;
use gantry_dag::{
    advance, Action, Event, NodeIdx, NodeStatus, Outcome, Plan, RunState, RunStatus, Transition,
    ValidatedDag,
};

pub(crate) struct Pending {
    event: Event,
    /// Must be a no-op when delivered (a zombie's late report).
    stale: bool,
}

/// The simulated cluster around one run.
pub(crate) struct Sim<'a> {
    pub(crate) dag: &'a ValidatedDag,
    pub(crate) plan: &'a Plan,
    pub(crate) fates: Vec<Fate>,
    pub(crate) partial: bool,
    pub(crate) state: RunState,
    pub(crate) rng: u64,
    pub(crate) pool: Vec<Pending>,
    pub(crate) history: Vec<Event>,
    pub(crate) enqueued: Vec<u32>,
    pub(crate) log: Vec<(Event, Transition)>,
}

const MAX_STEPS: usize = 20_000;

impl Sim<'_> {
    fn rand(&mut self, n: usize) -> usize {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n.max(1) as u64) as usize
    }

    pub(crate) fn st(&self, n: NodeIdx) -> gantry_dag::NodeState {
        self.state.nodes[&n]
    }

    /// Apply through a partial view (like the coordinator) or the full state.
    fn step(&mut self, event: Event) -> Transition {
        let jitter = 0.5;
        if !self.partial {
            return advance(self.dag, self.plan, &mut self.state, event, jitter);
        }
        let Some(ids) = RunState::view(self.dag, &event) else {
            return advance(self.dag, self.plan, &mut self.state, event, jitter);
        };
        let mut scratch = RunState {
            status: self.state.status,
            remaining: self.state.remaining,
            failed: self.state.failed,
            nodes: ids.iter().map(|i| (*i, self.state.nodes[i])).collect(),
            facts: self.state.facts.clone(),
        };
        let t = advance(self.dag, self.plan, &mut scratch, event, jitter);
        for i in &t.changed {
            assert!(ids.contains(i), "changed node {i} outside the view");
        }
        self.state.status = scratch.status;
        self.state.remaining = scratch.remaining;
        self.state.failed = scratch.failed;
        self.state.nodes.extend(scratch.nodes);
        t
    }

    pub(crate) fn apply(&mut self, event: Event) -> Transition {
        let before = self.state.clone();
        let t = self.step(event);
        let diff: Vec<NodeIdx> = self
            .state
            .nodes
            .iter()
            .filter(|(i, ns)| before.nodes[i] != **ns)
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(t.changed, diff, "changed list for {event:?}");
        let live = self
            .state
            .nodes
            .values()
            .filter(|n| !n.status.is_terminal())
            .count();
        let failed = self
            .state
            .nodes
            .values()
            .filter(|n| n.status == NodeStatus::Failed)
            .count();
        assert_eq!(
            self.state.remaining as usize, live,
            "remaining after {event:?}"
        );
        assert_eq!(self.state.failed as usize, failed, "failed after {event:?}");
        if event == Event::Retry && !t.changed.is_empty() {
            for (i, ns) in &before.nodes {
                if matches!(
                    ns.status,
                    NodeStatus::Failed | NodeStatus::Cancelled | NodeStatus::Skipped
                ) {
                    self.enqueued[*i as usize] = 0;
                }
            }
        }
        for a in &t.actions {
            match *a {
                Action::Enqueue { node } | Action::Park { node } => {
                    for p in self.dag.parents(node) {
                        assert_eq!(
                            self.st(*p).status,
                            NodeStatus::Succeeded,
                            "{a:?} before parent {p}"
                        );
                    }
                    let want = if matches!(a, Action::Enqueue { .. }) {
                        NodeStatus::Queued
                    } else {
                        NodeStatus::WaitingApproval
                    };
                    assert_eq!(self.st(node).status, want);
                    if let Action::Enqueue { .. } = a {
                        self.enqueued[node as usize] += 1;
                        assert_eq!(
                            self.enqueued[node as usize], 1,
                            "node {node} enqueued twice"
                        );
                    }
                }
                Action::Schedule { node, delay } => {
                    assert_eq!(self.st(node).status, NodeStatus::Retrying);
                    assert!(delay.as_millis() <= 1_000);
                }
                Action::Bury { node } => {
                    assert_eq!(self.st(node).status, NodeStatus::Failed);
                    assert!(
                        matches!(event, Event::LeaseExpired { .. }),
                        "{node} buried after {event:?}"
                    );
                }
                Action::Stop { node } => {
                    assert_eq!(before.nodes[&node].status, NodeStatus::Running);
                    assert_eq!(self.st(node).status, NodeStatus::Cancelled);
                }
                Action::FinishRun { status } => {
                    assert_eq!(self.state.status, status);
                    assert_eq!(self.state.remaining, 0);
                    let any_failed = self.state.failed > 0;
                    if status != RunStatus::Cancelled {
                        assert_eq!(status == RunStatus::Failed, any_failed);
                    }
                }
            }
        }
        if t.changed.is_empty() {
            assert!(
                t.actions.is_empty(),
                "actions without changes for {event:?}"
            );
            assert_eq!(self.state, before);
        }
        // Replays come from events that applied; a Retry starts a new epoch
        // in which old approvals may legitimately apply again.
        if event == Event::Retry && !t.changed.is_empty() {
            self.history.clear();
        } else if !t.changed.is_empty() {
            self.history.push(event);
        }
        self.log.push((event, t.clone()));
        t
    }

    fn noop(&mut self, event: Event) {
        let before = self.state.clone();
        let t = self.apply(event);
        assert_eq!(t, Transition::default(), "{event:?} should not apply");
        assert_eq!(self.state, before);
    }

    /// What the worker's claim does, then the event its attempt will produce.
    fn claim(&mut self, n: NodeIdx) {
        let ns = self.state.nodes.get_mut(&n).unwrap();
        let attempt = ns.claim().expect("a delivered node is claimable");
        let tries = ns.tries;
        let event = match self.fates[n as usize] {
            Fate::Ok | Fate::Reject => Event::Finished {
                node: n,
                attempt,
                outcome: Outcome::Succeeded,
            },
            Fate::Flaky { fails, lease } if tries <= fails => {
                if lease {
                    Event::LeaseExpired { node: n, attempt }
                } else {
                    Event::Finished {
                        node: n,
                        attempt,
                        outcome: Outcome::Failed { retryable: true },
                    }
                }
            }
            Fate::Flaky { .. } => Event::Finished {
                node: n,
                attempt,
                outcome: Outcome::Succeeded,
            },
            Fate::Permanent => Event::Finished {
                node: n,
                attempt,
                outcome: Outcome::Failed { retryable: false },
            },
        };
        self.pool.push(Pending {
            event,
            stale: false,
        });
    }

    fn stale_event(&mut self) {
        let n = self.rand(self.dag.len()) as NodeIdx;
        let ns = self.st(n);
        let event = match (ns.status, self.rand(3)) {
            (NodeStatus::Running, 0) => Event::Finished {
                node: n,
                attempt: ns.attempt + 1,
                outcome: Outcome::Succeeded,
            },
            (NodeStatus::Running, _) => Event::LeaseExpired {
                node: n,
                attempt: ns.attempt.wrapping_sub(1),
            },
            (NodeStatus::WaitingApproval, _) => return,
            (_, 0) => Event::Approved { node: n },
            (_, 1) => Event::Rejected { node: n },
            _ => Event::Finished {
                node: n,
                attempt: ns.attempt,
                outcome: Outcome::Succeeded,
            },
        };
        self.noop(event);
    }

    pub(crate) fn drive(&mut self, cancel_at: Option<u16>) {
        for step in 0..MAX_STEPS {
            let running = self.state.status == RunStatus::Running;
            if !running && self.pool.is_empty() {
                return;
            }
            if running && cancel_at == Some(step as u16) {
                let t = self.apply(Event::Cancel);
                assert_eq!(self.state.status, RunStatus::Cancelled);
                assert!(self.state.nodes.values().all(|n| n.status.is_terminal()));
                assert_eq!(
                    t.actions.last(),
                    Some(&Action::FinishRun {
                        status: RunStatus::Cancelled
                    })
                );
                for p in &mut self.pool {
                    p.stale = true;
                }
                self.noop(Event::Cancel);
                self.apply(Event::Retry);
                continue;
            }
            let dice = self.rand(100);
            if dice < 10 && !self.history.is_empty() {
                let i = self.rand(self.history.len());
                let event = self.history[i];
                if !matches!(event, Event::Cancel | Event::Retry) {
                    self.noop(event);
                }
                continue;
            }
            if dice < 18 {
                self.stale_event();
                continue;
            }
            let ready: Vec<NodeIdx> = if running {
                self.state
                    .nodes
                    .iter()
                    .filter(|(_, s)| {
                        matches!(
                            s.status,
                            NodeStatus::Queued | NodeStatus::Retrying | NodeStatus::WaitingApproval
                        )
                    })
                    .map(|(i, _)| *i)
                    .collect()
            } else {
                Vec::new()
            };
            let options = ready.len() + self.pool.len();
            assert!(options > 0, "run stuck: {:?}", self.state);
            let pick = self.rand(options);
            if let Some(&n) = ready.get(pick) {
                if self.st(n).status == NodeStatus::WaitingApproval {
                    if self.fates[n as usize] == Fate::Reject {
                        self.apply(Event::Rejected { node: n });
                    } else {
                        self.apply(Event::Approved { node: n });
                    }
                } else {
                    self.claim(n);
                }
                continue;
            }
            let p = self.pool.swap_remove(pick - ready.len());
            if p.stale || !running {
                self.noop(p.event);
                continue;
            }
            let t = self.apply(p.event);
            assert!(
                !t.changed.is_empty(),
                "a live completion must apply: {:?}",
                p.event
            );
            if let Event::LeaseExpired { node, attempt } = p.event {
                // The worker whose lease ran out reports late.
                let zombie = Event::Finished {
                    node,
                    attempt,
                    outcome: Outcome::Succeeded,
                };
                self.pool.push(Pending {
                    event: zombie,
                    stale: true,
                });
            }
        }
        panic!("simulation did not finish within {MAX_STEPS} steps");
    }
}
