//! Approval timeouts (SPEC section 3): what a gate that nobody answered
//! within its node's `approval_timeout_s` decides, as the event the state
//! machine then applies like a person's answer.

use crate::{Event, NodeIdx, OnApprovalTimeout, Plan};

/// Who decided an approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// Someone, through the API or the dashboard.
    Api,
    /// The gate's `approval_timeout_s` ran out.
    Timeout,
}

impl Decider {
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::Api => "api",
            Decider::Timeout => "timeout",
        }
    }
}

/// The event that decides the gate of `slot` (a node, or an instance of a
/// `for_each` node) whose approval timed out: its `on_approval_timeout`.
pub fn approval_timed_out(plan: &Plan, slot: NodeIdx) -> Event {
    match plan.node(slot).on_approval_timeout {
        OnApprovalTimeout::Approve => Event::Approved { node: slot },
        OnApprovalTimeout::Reject => Event::Rejected { node: slot },
    }
}
