//! The coordinator: applies recorded attempt results to runs through the pure
//! state machine, delivers ready nodes to Redis, and reconciles what a crash
//! or a lost notification left behind. [`Engine`] is also what the API uses
//! to start, cancel, retry and approve runs, so every state change goes
//! through one code path.

mod after;
mod cache;
mod children;
mod engine;
mod error;
mod health;
mod isolate;
mod load;
mod observe;
mod reconcile;
mod service;

pub use cache::Cache;
pub use engine::{Engine, Started};
pub use error::{Error, Result};
pub use health::WriteHealth;
pub use service::{drain, run, Config};
