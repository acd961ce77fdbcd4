//! The pure state machine that advances a run:
//! `advance(&dag, &plan, &mut state, event, jitter) -> Transition`.
//! The coordinator loads a [`RunState`] (possibly a partial view, see
//! [`RunState::view`]), applies one or more events, and writes the changed
//! nodes and the actions in one Postgres transaction.

use crate::plan::Plan;
use crate::status::{NodeStatus, RunStatus, SkipReason};
use crate::validate::ValidatedDag;
use crate::{MapState, NodeIdx};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the store keeps of one node for the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeState {
    pub status: NodeStatus,
    /// Number of the latest attempt (0 before the first). The worker's claim
    /// increments it; it fences late completions.
    pub attempt: u32,
    /// Attempts spent against the retry budget since the run started or was
    /// last retried by hand. The claim increments it too.
    pub tries: u32,
    /// Parents that have not finished yet (succeeded, failed or skipped).
    pub waiting_on: u32,
    /// Finished parents that failed.
    pub failed_parents: u32,
    /// Finished parents that were skipped.
    pub skipped_parents: u32,
    /// Why the node was skipped, when it was.
    pub skip_reason: Option<SkipReason>,
    /// A map node's progress over its instances, once it expanded.
    pub map: Option<MapState>,
}

impl NodeState {
    /// A node of a new run, waiting for `parents`.
    pub fn pending(parents: u32) -> Self {
        Self {
            status: NodeStatus::Pending,
            attempt: 0,
            tries: 0,
            waiting_on: parents,
            failed_parents: 0,
            skipped_parents: 0,
            skip_reason: None,
            map: None,
        }
    }

    /// An instance of a map node in `status` that has not run yet.
    pub fn instance(status: NodeStatus) -> Self {
        Self {
            status,
            ..Self::pending(0)
        }
    }
}

/// What a node's `when` may read of one ancestor: its status as stored
/// (a node in the loaded view reads as its current status instead), its
/// output (read only if it succeeded) and its error (only if it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub status: NodeStatus,
    pub output: serde_json::Value,
    pub error: Option<String>,
}

/// What `when` conditions read: the run's id and input, and the facts of
/// the nodes [`RunState::facts_view`] named. Empty for a workflow without
/// conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub run_id: String,
    pub input: serde_json::Value,
    pub nodes: BTreeMap<NodeIdx, Fact>,
}

impl Facts {
    /// The facts [`Event::Begin`] reads: the run's id and input, and every
    /// node a condition or `for_each` reads, pending and without output.
    pub fn of_new_run(dag: &ValidatedDag, run_id: String, input: serde_json::Value) -> Self {
        let nodes = RunState::facts_view(dag, &Event::Begin)
            .into_iter()
            .map(|i| {
                let fact = Fact {
                    status: NodeStatus::Pending,
                    output: serde_json::Value::Null,
                    error: None,
                };
                (i, fact)
            })
            .collect();
        Self {
            run_id,
            input,
            nodes,
        }
    }
}

/// What the store keeps of one run for the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub status: RunStatus,
    /// Nodes not in a terminal status.
    pub remaining: u32,
    /// Nodes in status `failed`.
    pub failed: u32,
    /// The loaded nodes: all of them, or the view an event needs.
    pub nodes: BTreeMap<NodeIdx, NodeState>,
    /// What conditions read (see [`RunState::facts_view`]).
    pub facts: Facts,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// `retryable: false` for exit 78, bad output, a missing template path,
    /// and anything else that can never succeed by trying again.
    Failed {
        retryable: bool,
    },
    /// The attempt's lease ran out: its worker died or hung. Retried like a
    /// retryable failure; a node that runs out of tries this way fails and
    /// is buried ([`Action::Bury`]).
    Lost,
    /// A `wait` node's `timeout_s` ran out before its event came: it fails
    /// or is skipped, as its `on_timeout` says.
    TimedOut,
}

impl Outcome {
    /// The error stored on an attempt that ended this way without its worker
    /// saying why (only a lost attempt); `None` when the worker reports it.
    pub fn stored_error(self) -> Option<&'static str> {
        match self {
            Outcome::Lost => Some("lease expired"),
            Outcome::Succeeded | Outcome::Failed { .. } | Outcome::TimedOut => None,
        }
    }
}

/// Something that happened to a run. A node's events may name an
/// instance's slot (see [`crate::Slot`]) instead of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The run was just created with every node pending: decide the roots.
    Begin,
    /// A worker recorded the result of `attempt` of `node`.
    Finished {
        node: NodeIdx,
        attempt: u32,
        outcome: Outcome,
    },
    /// The lease of `attempt` ran out ([`Outcome::Lost`]): retried like a
    /// retryable failure, buried when it was the last try.
    LeaseExpired {
        node: NodeIdx,
        attempt: u32,
    },
    /// Approve the node, or the instance whose slot it names. Approving a
    /// map node approves every instance of it that waits.
    Approved {
        node: NodeIdx,
    },
    /// Reject the node or instance (it fails); rejecting a map node rejects
    /// every instance of it that waits.
    Rejected {
        node: NodeIdx,
    },
    Cancel,
    /// Re-run failed, cancelled and skipped nodes; keep succeeded ones.
    Retry,
}

/// Side effects the caller performs after committing the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The node became `queued`: deliver it to its queue now.
    Enqueue { node: NodeIdx },
    /// The node became `retrying`: deliver it after `delay`.
    Schedule { node: NodeIdx, delay: Duration },
    /// The node (or instance) became `waiting_approval`.
    Park { node: NodeIdx },
    /// The node was running and is now cancelled: stop its execution.
    Stop { node: NodeIdx },
    /// The run reached a terminal status.
    FinishRun { status: RunStatus },
    /// The node (or instance) failed for good because every try of it was
    /// lost ([`Outcome::Lost`]): the job kills or hangs its workers, and goes
    /// to its queue's dead list.
    Bury { node: NodeIdx },
}

/// Why the state machine itself failed a node (not an attempt's result).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeFailure {
    /// Its `when` did not evaluate to a bool.
    #[error("{0}")]
    Condition(#[from] crate::EvalError),
    /// Its `for_each` template could not be resolved.
    #[error("for_each: {0}")]
    ForEachPath(crate::TemplateError),
    /// Its `for_each` resolved to something other than an array.
    #[error("for_each resolved to {got}, not an array")]
    NotAnArray { got: &'static str },
    /// Its `for_each` array is longer than `max_items`.
    #[error("for_each resolved to {items} items, more than max_items ({max})")]
    TooManyItems { items: usize, max: u32 },
    /// An instance failed for good (the store adds that instance's error).
    #[error("instance {index} failed")]
    Instance { index: u32 },
    /// A wait node's key template could not be resolved.
    #[error("wait key: {0}")]
    WaitKeyPath(crate::TemplateError),
    /// A wait node's key resolved to something other than text.
    #[error("wait key resolved to {got}, not a string")]
    WaitKeyNotText { got: &'static str },
    /// A wait node's key is longer than an event's key may be.
    #[error("wait key is {bytes} bytes, more than {max}", max = crate::MAX_EVENT_KEY_BYTES)]
    WaitKeyTooLong { bytes: usize },
}

/// A map node expanded: one instance per item, the first `queued` of them
/// ready (queued, or waiting for approval when `parked`) and the rest
/// pending. The store inserts the instances' rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub node: NodeIdx,
    pub items: Vec<serde_json::Value>,
    pub queued: u32,
    /// The node's agent needs approval: each ready instance waits for its own.
    pub parked: bool,
}

/// Instances to load for a batch of events (see
/// [`RunState::instances_wanted`]): up to `limit` of the slots in
/// `from..to` in `status`, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub from: NodeIdx,
    pub to: NodeIdx,
    pub status: NodeStatus,
    pub limit: u32,
}

/// The result of applying one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transition {
    /// Nodes whose [`NodeState`] changed (their new state is in the `RunState`).
    pub changed: Vec<NodeIdx>,
    pub actions: Vec<Action>,
    /// Nodes this transition failed by itself, with the cause (their error).
    pub failures: Vec<(NodeIdx, NodeFailure)>,
    /// Map nodes that expanded into instances.
    pub expansions: Vec<Expansion>,
    /// Wait nodes that began to wait.
    pub waits: Vec<crate::WaitStart>,
}

impl Transition {
    /// Add what applying a later event produced (several events applied to
    /// one state in a row are saved as one transition).
    pub fn absorb(&mut self, later: Transition) {
        self.changed.extend(later.changed);
        self.changed.sort_unstable();
        self.changed.dedup();
        self.actions.extend(later.actions);
        self.failures.extend(later.failures);
        self.expansions.extend(later.expansions);
        self.waits.extend(later.waits);
    }
}

impl RunState {
    /// A new run as the store first writes it: every node pending. Applying
    /// [`Event::Begin`] then decides the roots.
    pub fn new(dag: &ValidatedDag) -> Self {
        crate::advance_impl::new_run(dag)
    }

    /// [`RunState::new`] with [`Event::Begin`] applied and no facts (no run
    /// input): roots ready (queued, or parked when their agent needs
    /// approval), everything else pending. Returns the Begin actions.
    pub fn start(dag: &ValidatedDag, plan: &Plan) -> (Self, Vec<Action>) {
        let mut state = Self::new(dag);
        state.facts = Facts::of_new_run(dag, String::new(), serde_json::json!({}));
        let t = advance(dag, plan, &mut state, Event::Begin, 0.0);
        (state, t.actions)
    }

    /// The instances a batch of `events` may start or settle, to load
    /// after the nodes of the view: for each map node with a `max_parallel`
    /// that an instance event names, up to that many of its pending
    /// instances from its `next` item on; and for a gated map node that an
    /// approval, a rejection or an instance's failure names, every instance
    /// waiting for approval (approving or rejecting the node gates them all;
    /// a failure cancels them).
    pub fn instances_wanted(
        dag: &ValidatedDag,
        plan: &Plan,
        state: &RunState,
        events: &[Event],
    ) -> Vec<Wanted> {
        crate::map::instances_wanted(dag, plan, state, events)
    }

    /// The nodes `event` reads or may change; the store loads exactly these.
    /// `None` means every node.
    pub fn view(dag: &ValidatedDag, event: &Event) -> Option<Vec<NodeIdx>> {
        crate::advance_impl::view(dag, event)
    }

    /// The nodes whose [`Fact`]s the conditions that `event` may decide
    /// read (empty when there are none); the store loads them into
    /// [`RunState::facts`] with the run's id and input.
    pub fn facts_view(dag: &ValidatedDag, event: &Event) -> Vec<NodeIdx> {
        crate::advance_impl::facts_view(dag, event)
    }
}

/// Apply `event` to `state`. Pure and deterministic: `jitter` in `[0, 1)` is
/// the randomness used for retry backoff. An event that does not apply (a
/// stale attempt, a replayed completion, a node already terminal, a run
/// already finished) changes nothing and yields no action.
pub fn advance(
    dag: &ValidatedDag,
    plan: &Plan,
    state: &mut RunState,
    event: Event,
    jitter: f64,
) -> Transition {
    crate::advance_impl::advance(dag, plan, state, event, jitter)
}
