//! The coordinator role: the loop that applies recorded attempt results to
//! runs (through `gantry_engine`), the reconciler that repairs what a
//! crash or a lost notification left behind, the cron scheduler, and
//! retention.

mod isolate;
mod reconcile;
mod retention;
mod scheduler;
mod service;

pub use service::{drain, run, Config};
