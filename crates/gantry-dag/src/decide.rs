//! Deciding nodes whose parents have all finished: the trigger rule, then
//! the `when`, and the walk down through what that decision finishes (see
//! `advance.rs` for the contract).

use crate::advance_impl::Tx;
use crate::*;
use std::collections::BTreeMap;

impl Tx<'_> {
    /// `idx` failed for good: count it, then decide its children.
    pub(crate) fn fail(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        mut ns: NodeState,
    ) {
        ns.status = NodeStatus::Failed;
        self.set(idx, ns);
        self.state.remaining = self.state.remaining.saturating_sub(1);
        self.state.failed = self.state.failed.saturating_add(1);
        self.settle(dag, plan, idx);
    }

    /// `idx` just finished (succeeded, failed or skipped): tell each
    /// pending child, and decide every child whose parents have now all
    /// finished, by its trigger rule and then its `when`. A child that is
    /// skipped or fails here finishes too, so the decision walks on down.
    pub(crate) fn settle(&mut self, dag: &ValidatedDag, plan: &Plan, idx: NodeIdx) {
        let mut finished = vec![idx];
        while let Some(n) = finished.pop() {
            let Some(status) = self.get(n).map(|s| s.status) else {
                continue;
            };
            for &c in dag.children(n) {
                let Some(mut cs) = self.get(c) else { continue };
                if cs.status != NodeStatus::Pending {
                    continue;
                }
                cs.waiting_on = cs.waiting_on.saturating_sub(1);
                match status {
                    NodeStatus::Failed => cs.failed_parents = cs.failed_parents.saturating_add(1),
                    NodeStatus::Skipped => {
                        cs.skipped_parents = cs.skipped_parents.saturating_add(1);
                    }
                    _ => {}
                }
                if cs.waiting_on > 0 {
                    self.set(c, cs);
                    continue;
                }
                if self.decide(dag, plan, c, cs) {
                    finished.push(c);
                }
            }
        }
    }

    /// Decide a pending node whose parents have all finished: queue it,
    /// skip it or fail it. Returns whether it finished (skipped or failed).
    pub(crate) fn decide(
        &mut self,
        dag: &ValidatedDag,
        plan: &Plan,
        idx: NodeIdx,
        mut ns: NodeState,
    ) -> bool {
        let decision = match rule_verdict(dag.node(idx).trigger_rule, &ns) {
            Some(reason) => Decision::Skip(reason),
            None => match dag.condition(idx) {
                None => Decision::Run,
                Some(cond) => match cond.eval(
                    &self.state.facts.input,
                    &self.state.facts.run_id,
                    &self.condition_facts(dag, cond),
                ) {
                    Ok(true) => Decision::Run,
                    Ok(false) => Decision::Skip(SkipReason::ConditionFalse),
                    Err(e) => Decision::Fail(e.into()),
                },
            },
        };
        match decision {
            Decision::Run => self.make_ready(dag, plan, idx, ns),
            Decision::Skip(reason) => {
                ns.status = NodeStatus::Skipped;
                ns.skip_reason = Some(reason);
                self.set(idx, ns);
                self.state.remaining = self.state.remaining.saturating_sub(1);
                true
            }
            Decision::Fail(why) => {
                self.fail_node(idx, ns, why);
                true
            }
        }
    }

    /// The facts a condition reads, each with the node's current status.
    fn condition_facts(&self, dag: &ValidatedDag, cond: &Condition) -> BTreeMap<String, NodeFacts> {
        cond.nodes()
            .filter_map(|id| {
                let idx = dag.idx(id)?;
                let fact = self.state.facts.nodes.get(&idx);
                debug_assert!(fact.is_some(), "facts of node {idx} missing from the view");
                let status = match self.state.nodes.get(&idx) {
                    Some(ns) => ns.status,
                    None => fact?.status,
                };
                let output = match (status, fact) {
                    (NodeStatus::Succeeded, Some(f)) => f.output.clone(),
                    _ => serde_json::Value::Null,
                };
                let error = match status {
                    NodeStatus::Failed => fact.and_then(|f| f.error.clone()),
                    _ => None,
                };
                let facts = NodeFacts {
                    status: status.as_str().to_owned(),
                    output,
                    error,
                };
                Some((id.to_owned(), facts))
            })
            .collect()
    }
}

enum Decision {
    Run,
    Skip(SkipReason),
    Fail(NodeFailure),
}

/// `None` when `rule` lets the node go on to its `when`; else why it is
/// skipped.
fn rule_verdict(rule: TriggerRule, ns: &NodeState) -> Option<SkipReason> {
    let (failed, skipped) = (ns.failed_parents > 0, ns.skipped_parents > 0);
    match rule {
        TriggerRule::AllSucceeded if failed => Some(SkipReason::UpstreamFailed),
        TriggerRule::AllSucceeded if skipped => Some(SkipReason::UpstreamSkipped),
        TriggerRule::NoneFailed if failed => Some(SkipReason::UpstreamFailed),
        TriggerRule::OneFailed if !failed && skipped => Some(SkipReason::UpstreamSkipped),
        TriggerRule::OneFailed if !failed => Some(SkipReason::ConditionFalse),
        _ => None,
    }
}
