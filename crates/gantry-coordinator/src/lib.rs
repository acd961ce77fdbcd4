//! The coordinator role: the loop that applies recorded attempt results to
//! runs (through `gantry_engine`), the reconciler that repairs what a
//! crash or a lost notification left behind, and the cron scheduler.

mod isolate;
mod reconcile;
mod scheduler;
mod service;

pub use service::{drain, run, Config};
