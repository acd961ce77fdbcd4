//! Approval gates of `for_each` instances (SPEC 2.1: each instance has its
//! own approval). A gated map node parks each instance it starts; approving
//! or rejecting an instance decides it, approving or rejecting the node
//! decides every instance that waits, and after an instance fails for good
//! the waiting ones are cancelled.

use crate::advance_impl::Tx;
use crate::*;

impl Tx<'_> {
    /// Approve or reject instance `slot`, which waits for approval.
    pub(crate) fn instance_gate(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        slot: NodeIdx,
        approve: bool,
    ) -> bool {
        let node = owner(slot);
        if dag.for_each(node).is_none() {
            return false;
        }
        // An approval may name an index past the node's items: no row.
        let is = self.state.nodes.get(&slot).copied();
        let (Some(is), Some(ns)) = (is, self.get(node)) else {
            return false;
        };
        let Some(mut map) = ns.map else {
            return false;
        };
        if is.status != NodeStatus::WaitingApproval || !is_open(ns) {
            return false;
        }
        self.gate(node, &mut map, &[(slot, is)], approve);
        if self.map_settled(node, ns, map) {
            self.settle(dag, plan, node);
        }
        true
    }

    /// Approve or reject every loaded instance of map node `node` that
    /// waits for approval (the store loads them all, see
    /// [`RunState::instances_wanted`]). Returns false when none waits.
    pub(crate) fn node_gate(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        node: NodeIdx,
        approve: bool,
    ) -> bool {
        let Some(ns) = self.get(node) else {
            return false;
        };
        let Some(mut map) = ns.map else {
            return false;
        };
        if !is_open(ns) {
            return false;
        }
        let parked = self.parked_of(node, map);
        if parked.is_empty() {
            return false;
        }
        self.gate(node, &mut map, &parked, approve);
        if self.map_settled(node, ns, map) {
            self.settle(dag, plan, node);
        }
        true
    }

    /// Decide the gates of `parked` instances of `node`: approved ones are
    /// queued; rejected ones fail, and then every other waiting one is
    /// cancelled (no new instance starts after a failure).
    fn gate(
        &mut self,
        node: NodeIdx,
        map: &mut MapState,
        parked: &[(NodeIdx, NodeState)],
        approve: bool,
    ) {
        for &(slot, mut is) in parked {
            map.parked = map.parked.saturating_sub(1);
            if approve {
                is.status = NodeStatus::Queued;
                self.out.actions.push(Action::Enqueue { node: slot });
            } else {
                is.status = NodeStatus::Failed;
                map.active = map.active.saturating_sub(1);
                map.fail_item(Slot::of(slot).item().unwrap_or(0));
            }
            self.set(slot, is);
        }
        if !approve {
            self.cancel_parked(node, map);
        }
    }

    /// The loaded instances of `node` that wait for approval, in item order.
    fn parked_of(&self, node: NodeIdx, map: MapState) -> Vec<(NodeIdx, NodeState)> {
        let lo = instance_slot(node, 0);
        let hi = instance_slot(node, map.items);
        self.state
            .nodes
            .range(lo..hi)
            .filter(|(_, s)| s.status == NodeStatus::WaitingApproval)
            .map(|(&i, &s)| (i, s))
            .collect()
    }

    /// Cancel the loaded instances of `node` that wait for approval.
    pub(crate) fn cancel_parked(&mut self, node: NodeIdx, map: &mut MapState) {
        if map.parked == 0 {
            return;
        }
        let parked = self.parked_of(node, *map);
        for (slot, mut is) in parked {
            is.status = NodeStatus::Cancelled;
            self.set(slot, is);
            map.active = map.active.saturating_sub(1);
            map.parked = map.parked.saturating_sub(1);
        }
    }
}

/// Whether a map node's instances may still change it: it is running or
/// waiting for approval of some of them.
pub(crate) fn is_open(ns: NodeState) -> bool {
    matches!(ns.status, NodeStatus::Running | NodeStatus::WaitingApproval)
}
