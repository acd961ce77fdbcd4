//! The one after-commit path: whatever a committed transition must do next
//! (count it, list dead jobs, deliver ready nodes, start child runs, tell
//! workers to stop, cancel child runs) is collected as data while the
//! transaction runs and carried out here once it has committed.

use crate::observe::Observed;
use crate::Engine;
use gantry_store::Dispatch;
use uuid::Uuid;

/// What applying events produced, to act on after commit (the caller
/// commits, then calls [`Applied::deliver`]).
#[derive(Default)]
pub struct Applied {
    pub(crate) dispatches: Vec<Dispatch>,
    /// Runs with attempts to stop (cancelled): workers are told, and their
    /// running child runs are cancelled in turn.
    pub(crate) stops: Vec<Uuid>,
    pub(crate) observed: Observed,
    /// Nodes whose every try died with its worker: listed as dead jobs.
    pub(crate) dead: Vec<(Dispatch, u32)>,
}

impl Applied {
    /// Carry it out; call only after the transaction committed.
    pub async fn deliver(self, engine: &Engine) {
        self.observed.emit();
        engine.bury_lost(&self.dead).await;
        engine.deliver(self.dispatches).await;
        for run in self.stops {
            if let Err(e) = engine.queue.publish_cancel(&run.to_string()).await {
                tracing::warn!(%run, error = %e, "could not tell workers to stop; their results will be ignored");
            }
            engine.cancel_children(run).await;
        }
    }
}
