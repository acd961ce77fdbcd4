//! Loading what the pure state machine needs to apply a batch of events to
//! one run: the nodes of their views, the instances a map node may start
//! or gate,
//! and the facts that conditions and `for_each` templates read.

use crate::Result;
use gantry_dag::{Event, NodeIdx, Plan, RunState, ValidatedDag};
use gantry_store::{RunHead, RunTx};
use std::collections::BTreeSet;

/// The state `events` read, loaded under the run's lock in `tx`.
pub(crate) async fn state_for(
    tx: &mut RunTx<'_>,
    dag: &ValidatedDag,
    plan: &Plan,
    head: &RunHead,
    events: &[Event],
) -> Result<RunState> {
    let view = union_view(dag, events);
    let mut state = tx.load_state(head, view.as_deref()).await?;
    for wanted in RunState::instances_wanted(dag, plan, &state, events) {
        tx.load_instances(head.id, wanted, &mut state).await?;
    }
    // The run's id and input too: a condition may read only those. Loaded
    // only for a workflow with conditions or maps: no query on the hot path.
    if dag.needs_facts() {
        let facts: BTreeSet<NodeIdx> = events
            .iter()
            .flat_map(|e| RunState::facts_view(dag, e))
            .collect();
        let facts: Vec<NodeIdx> = facts.into_iter().collect();
        state.facts = tx.load_facts(head.id, &facts).await?;
    }
    Ok(state)
}

/// The union of the views the events need; `None` when any needs every node.
fn union_view(dag: &ValidatedDag, events: &[Event]) -> Option<Vec<NodeIdx>> {
    let mut all = BTreeSet::new();
    for e in events {
        all.extend(RunState::view(dag, e)?);
    }
    Some(all.into_iter().collect())
}
