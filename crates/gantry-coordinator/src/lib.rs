//! The coordinator role: the loop that applies recorded attempt results to
//! runs (through `gantry_engine`), and the reconciler that repairs what a
//! crash or a lost notification left behind.

mod isolate;
mod reconcile;
mod service;

pub use service::{drain, run, Config};
