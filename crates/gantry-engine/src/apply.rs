//! Applying recorded results to runs locked in a transaction: the step the
//! coordinator loop repeats, that a worker does inline for its own results,
//! and that a child-run start does for slots it could not start.

use crate::after::Applied;
use crate::{Engine, Result};
use gantry_dag::{advance, Action, Event, NodeIdx, Transition};
use gantry_store::PendingResult;

/// Apply the pending results of runs locked in `tx`.
pub(crate) async fn advance_heads(
    engine: &Engine,
    tx: &mut gantry_store::RunTx<'_>,
    heads: &[gantry_store::RunHead],
) -> Result<Applied> {
    advance_heads_with(engine, tx, heads, &[]).await
}

/// [`advance_heads`] with, besides the flagged results, `mine`: results
/// this transaction recorded unflagged for runs it holds (after the
/// flagged ones, which were recorded earlier).
pub(crate) async fn advance_heads_with(
    engine: &Engine,
    tx: &mut gantry_store::RunTx<'_>,
    heads: &[gantry_store::RunHead],
    mine: &[(uuid::Uuid, PendingResult)],
) -> Result<Applied> {
    let mut out = Applied::default();
    for head in heads {
        let dag = engine.cache.dag(&engine.store, head.workflow_id).await?;
        let plan = engine.cache.plan(&engine.store, &head.plan_hash).await?;
        let mut results = tx.pending_results(head.id).await?;
        results.extend(
            mine.iter()
                .filter(|(run, _)| *run == head.id)
                .map(|(_, r)| *r),
        );
        if results.is_empty() {
            continue;
        }
        let events: Vec<Event> = results.iter().map(PendingResult::event).collect();
        let mut state = crate::load::state_for(tx, &dag, &plan, head, &events).await?;
        let mut t = Transition::default();
        for event in events {
            t.absorb(advance(&dag, &plan, &mut state, event, rand::random()));
        }
        if t.actions.iter().any(|a| matches!(a, Action::Stop { .. })) {
            out.stops.push(head.id);
        }
        out.observed.note(head, &dag, &plan, &t.actions);
        let processed: Vec<NodeIdx> = results.iter().map(|r| r.node).collect();
        out.dispatches
            .extend(tx.save((head, &dag, &plan), &state, &t, &processed).await?);
        for &action in &t.actions {
            if let Action::Bury { node } = action {
                let tries = state.nodes.get(&node).map_or(0, |n| n.tries);
                let dispatch = gantry_store::Dispatch::of(head, &plan, node, None, None);
                out.dead.push((dispatch, tries));
            }
        }
    }
    Ok(out)
}
